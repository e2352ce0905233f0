from __future__ import annotations

from django.contrib import admin

from catalog.models import Category


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin[Category]):
    list_display = ["full_path_en", "external_id", "is_active", "taxonomy_release"]
    search_fields = ["full_path_en", "full_path_zh_hans", "external_id"]
    readonly_fields = ["path", "full_path_en", "full_path_zh_hans", "depth", "has_children"]
