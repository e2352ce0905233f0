from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ApplicationError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Turn ApplicationError (and Django's ValidationError) into a 4xx with a JSON body: {"detail", "code", ...}."""
    if isinstance(exc, ApplicationError):
        return Response({"detail": exc.message, "code": exc.code, **exc.extra}, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    return drf_exception_handler(exc, context)


# Every job's lifecycle, as each job kind's serializer shows it (core/models.py).
JOB_FIELDS = [
    "status",
    "percent",
    "attempts",
    "claimed_by",
    "heartbeat_at",
    "cancel_requested",
    "error",
    "created_at",
    "enqueued_at",
    "started_at",
    "finished_at",
]


class RequiredPermission(BasePermission):
    """Reads need the view's `read_perm`, writes its `write_perm` (role permissions, see accounts/roles.py)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        needed = view.read_perm if request.method in SAFE_METHODS else view.write_perm
        return bool(request.user.has_perm(needed))
