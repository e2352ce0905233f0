from __future__ import annotations

from typing import Any

from rest_framework import serializers

from catalog.models import Category, CategorySource, ImportJob, ImportKind, ImportRowError, Product
from core.api import JOB_FIELDS


class CategorySerializer(serializers.ModelSerializer[Category]):
    name = serializers.SerializerMethodField()
    path_display = serializers.SerializerMethodField()

    class Meta:
        model = Category
        fields = [
            "id",
            "external_id",
            "parent",
            "name",
            "name_en",
            "name_zh_hans",
            "path_display",
            "full_path_en",
            "full_path_zh_hans",
            "depth",
            "has_children",
            "is_active",
            "taxonomy_release",
        ]

    def _language(self) -> str | None:
        request = self.context.get("request")
        return getattr(request, "LANGUAGE_CODE", None)

    def get_name(self, category: Category) -> str:
        return category.display_name(self._language())

    def get_path_display(self, category: Category) -> str:
        return category.display_path(self._language())


class CategoryUpdateSerializer(serializers.Serializer[Any]):
    name_en = serializers.CharField(max_length=255, required=False)
    name_zh_hans = serializers.CharField(max_length=255, required=False, allow_blank=True)
    # `parent` shadows Field.parent in the stubs; it is the new parent category's id here.
    parent = serializers.IntegerField(required=False, allow_null=True)  # type: ignore[assignment]
    is_active = serializers.BooleanField(required=False)


class CategoryMergeSerializer(serializers.Serializer[Any]):
    into = serializers.IntegerField(help_text="the category that takes this one's place")


class CategoryBriefSerializer(serializers.ModelSerializer[Category]):
    class Meta:
        model = Category
        fields = ["id", "external_id", "full_path_en", "full_path_zh_hans"]


class ProductSerializer(serializers.ModelSerializer[Product]):
    # A product may have no category yet, and then no source: both are in the schema (schemathesis found them out).
    category = CategoryBriefSerializer(read_only=True, allow_null=True)
    category_source = serializers.ChoiceField(choices=[("", "none"), *CategorySource.choices], read_only=True)

    class Meta:
        model = Product
        fields = [
            "id",
            "sku",
            "title",
            "description",
            "brand",
            "attributes",
            "category",
            "category_source",
            "is_verified",
            "category_set_at",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ProductCreateSerializer(serializers.Serializer[Any]):
    sku = serializers.CharField(max_length=100)
    title = serializers.CharField(max_length=1000)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    brand = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)
    attributes = serializers.DictField(required=False, default=dict)
    category_id = serializers.IntegerField(required=False, allow_null=True, default=None)


class ProductUpdateSerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField(help_text="The version you read; a stale one is refused with 409.")
    title = serializers.CharField(max_length=1000, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    brand = serializers.CharField(required=False, allow_blank=True, max_length=255)
    attributes = serializers.DictField(required=False)
    category_id = serializers.IntegerField(required=False, allow_null=True)
    verified = serializers.BooleanField(required=False, default=True)


class ImportJobSerializer(serializers.ModelSerializer[ImportJob]):
    percent = serializers.IntegerField(read_only=True)
    error_count = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "kind",
            "original_name",
            "file_format",
            "options",
            "phase",
            "rows_seen",
            "rows_created",
            "rows_updated",
            "rows_unchanged",
            "rows_invalid",
            "rows_kept_verified",
            "error_count",
            "written",
            "message",
            *JOB_FIELDS,
        ]

    def get_error_count(self, job: ImportJob) -> int:
        return job.row_errors.count()


class ImportJobCreateSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=ImportKind.choices, default=ImportKind.PRODUCTS)
    file = serializers.FileField()
    file_format = serializers.ChoiceField(choices=["csv", "tsv", "jsonl", "json"], required=False, default="")
    dry_run = serializers.BooleanField(required=False, default=False)
    keep_valid = serializers.BooleanField(required=False, default=False)
    create_categories = serializers.BooleanField(required=False, default=False)
    archive_missing = serializers.BooleanField(required=False, default=False)
    language = serializers.ChoiceField(choices=["en", "zh-hans"], required=False, default="en")
    release = serializers.CharField(required=False, default="", max_length=32)


class ImportRowErrorSerializer(serializers.ModelSerializer[ImportRowError]):
    class Meta:
        model = ImportRowError
        fields = ["line", "field", "reason", "value"]
