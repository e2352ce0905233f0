from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from labeling.models import LabelingQueue


@admin.register(LabelingQueue)
class LabelingQueueAdmin(admin.ModelAdmin[LabelingQueue]):
    """Managers and admins scope queues here (a category subtree and/or an import batch)."""

    list_display = ["name", "category", "import_batch", "is_active", "created_by", "created_at"]
    autocomplete_fields = ["category"]
    exclude = ["created_by"]

    def save_model(self, request: HttpRequest, obj: LabelingQueue, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
