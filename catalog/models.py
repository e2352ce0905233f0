"""The catalog: the category tree, products and the label of record for each product, with its audit trail.

Knows nothing of labeling or ML: they decide and learn from labels, the catalog records them.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from core.models import Job


def language_is_chinese(language: str | None = None) -> bool:
    return (language or get_language() or "en").lower().startswith("zh")


class Category(models.Model):
    """A node of the taxonomy. `path` holds the primary keys from the root down ("/3/17/240/") so a subtree is one
    indexed prefix match and the ancestors are a split, at 10k nodes or 100k."""

    external_id = models.CharField(_("external id"), max_length=100, unique=True)
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children", verbose_name=_("parent")
    )
    name_en = models.CharField(_("name (English)"), max_length=255)
    name_zh_hans = models.CharField(_("name (Chinese)"), max_length=255, blank=True)
    path = models.CharField(max_length=1024, db_index=False, editable=False)
    full_path_en = models.TextField(_("path (English)"), editable=False)
    full_path_zh_hans = models.TextField(_("path (Chinese)"), blank=True, editable=False)
    depth = models.PositiveSmallIntegerField(_("depth"), editable=False)
    has_children = models.BooleanField(default=False, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    taxonomy_release = models.CharField(_("taxonomy release"), max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["full_path_en"]
        indexes = [
            # LIKE 'prefix%' uses a btree only with the pattern opclass (non-C collations); ignored on SQLite.
            models.Index(fields=["path"], name="category_path_prefix", opclasses=["varchar_pattern_ops"]),
            models.Index(fields=["parent", "name_en"], name="category_children"),
            models.Index(fields=["depth"], name="category_depth"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(depth__gte=1), name="category_depth_positive"),
            models.CheckConstraint(
                condition=Q(parent__isnull=True, depth=1) | Q(parent__isnull=False, depth__gt=1),
                name="category_root_iff_depth_1",
            ),
        ]
        permissions = [("edit_taxonomy", "Can import and edit the category taxonomy")]

    def __str__(self) -> str:
        return self.display_path()

    def display_name(self, language: str | None = None) -> str:
        if language_is_chinese(language) and self.name_zh_hans:
            return self.name_zh_hans
        return self.name_en

    def display_path(self, language: str | None = None) -> str:
        if language_is_chinese(language) and self.full_path_zh_hans:
            return self.full_path_zh_hans
        return self.full_path_en

    @property
    def ancestor_ids(self) -> list[int]:
        return [int(part) for part in self.path.strip("/").split("/")[:-1] if part]


class CategorySource(models.TextChoices):
    IMPORT = "import", _("import")
    ANNOTATION = "annotation", _("annotation")
    RECLASSIFICATION = "reclassification", _("reclassification")
    MANUAL = "manual", _("manual")


class Product(models.Model):
    sku = models.CharField(_("SKU"), max_length=100, unique=True)
    title = models.CharField(_("title"), max_length=1000)
    description = models.TextField(_("description"), blank=True)
    brand = models.CharField(_("brand"), max_length=255, blank=True)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    # Not indexed alone: product_category_id (category, id) serves every lookup by category, and each index more is
    # written on every change of category (a 100k-product reclassification writes them all).
    category = models.ForeignKey(
        Category,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="products",
        verbose_name=_("category"),
        db_index=False,
    )
    category_source = models.CharField(
        _("category source"), max_length=20, choices=CategorySource.choices, blank=True, default=""
    )
    is_verified = models.BooleanField(_("verified"), default=False)
    # Not indexed: only deleting a user looks products up by it (rare; a scan then), and it is written with every
    # change of category.
    category_set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    category_set_at = models.DateTimeField(null=True, blank=True)
    # Bumped on every change; a write that carries an older version is refused (optimistic concurrency).
    version = models.PositiveIntegerField(default=1)
    # The import (ImportJob.batch) that last created or changed the product: queues can be scoped to one.
    import_batch = models.UUIDField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        indexes = [
            models.Index(fields=["category", "id"], name="product_category_id"),
            models.Index(fields=["category_source", "id"], name="product_source_id"),
            models.Index(fields=["is_verified", "id"], name="product_verified_id"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(category__isnull=True, category_source="", is_verified=False)
                | (Q(category__isnull=False) & ~Q(category_source="")),
                name="product_category_has_source",
            ),
            models.CheckConstraint(condition=~Q(sku=""), name="product_sku_not_empty"),
        ]
        permissions = [
            ("import_products", "Can import products"),
            ("export_products", "Can export products"),
        ]

    def __str__(self) -> str:
        return f"{self.sku}: {self.title}"


class CategoryChange(models.Model):
    """One row per change of a product's category of record, bulk changes included."""

    # Indexed by catchange_product_time (product, -created_at), not twice.
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="category_changes", db_index=False)
    from_category = models.ForeignKey(Category, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    to_category = models.ForeignKey(Category, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    source = models.CharField(max_length=20, choices=CategorySource.choices)
    verified = models.BooleanField(default=False)
    # What the change replaced, so that it can be undone exactly (an annotator's `u`).
    from_source = models.CharField(max_length=20, choices=CategorySource.choices, blank=True)
    from_verified = models.BooleanField(default=False)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    # Groups the rows of one bulk operation (an import, an approved reclassification batch).
    batch = models.UUIDField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("category change")
        indexes = [
            models.Index(fields=["product", "-created_at"], name="catchange_product_time"),
            models.Index(fields=["batch"], name="catchange_batch"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.from_category_id} -> {self.to_category_id} ({self.source})"


class TaxonomyChangeKind(models.TextChoices):
    MERGE = "merge", _("merged into another")
    ARCHIVE = "archive", _("archived")
    MAPPING = "mapping", _("replaced by a new release")


class TaxonomyChange(models.Model):
    """The audit trail of the taxonomy: a category merged, archived or mapped to a new release's. The products filed
    under it are not moved here: reclassification proposes their move, and a manager applies it."""

    kind = models.CharField(max_length=10, choices=TaxonomyChangeKind.choices)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="+")
    replacement = models.ForeignKey(Category, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    # Groups the rows of one operation (one merge with its subtree, one release's mapping file).
    batch = models.UUIDField(default=uuid.uuid4)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.category_id} -> {self.replacement_id}"


class ImportKind(models.TextChoices):
    TAXONOMY = "taxonomy", _("taxonomy")
    PRODUCTS = "products", _("products")


class ImportJob(Job):
    """An uploaded file and what importing it did. The worker reports progress here; the page polls it. Written
    in chunks: a worker lost mid-write is resumed from the chunks not written (`chunks_written` and the counts so far
    are saved with each chunk), so an import ends complete, never half-applied."""

    kind = models.CharField(max_length=20, choices=ImportKind.choices)
    file = models.FileField(upload_to="imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    file_format = models.CharField(max_length=20)
    options = models.JSONField(default=dict, blank=True)
    batch = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    phase = models.CharField(max_length=20, blank=True)
    bytes_total = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    rows_seen = models.PositiveIntegerField(default=0)
    rows_created = models.PositiveIntegerField(default=0)
    rows_updated = models.PositiveIntegerField(default=0)
    rows_unchanged = models.PositiveIntegerField(default=0)
    rows_invalid = models.PositiveIntegerField(default=0)
    # Rows whose category was left alone because a person had verified a different one.
    rows_kept_verified = models.PositiveIntegerField(default=0)
    categories_created = models.PositiveIntegerField(default=0)
    # Chunks of valid rows written so far (each in its own transaction, with these counts): where a resume starts.
    chunks_written = models.PositiveIntegerField(default=0)
    written = models.BooleanField(default=False)
    # The report's summary line ("3 invalid row(s): nothing was written"); `error` says why a job itself failed.
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "-created_at"], name="importjob_status_time")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} import #{self.pk} ({self.original_name})"

    def progress(self) -> tuple[int, int]:
        # Validation reads the file once and writing reads it again: each pass is half of the bar.
        if not self.bytes_total:
            return (0, 0)
        share = min(self.bytes_done / self.bytes_total, 1.0)
        return (int(50 * share) + (50 if self.phase == "writing" else 0), 100)


class ImportRowError(models.Model):
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    line = models.PositiveIntegerField()
    field = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=500)
    value = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["line", "id"]

    def __str__(self) -> str:
        return f"line {self.line}: {self.field} {self.reason}"
