"""Annotators' work: who holds which item (leases), what they answered (annotations), what needs a manager."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from catalog.models import Category, Product


class LabelingQueue(models.Model):
    """A queue restricted to a category subtree (the product's category or its top suggestion lies in it) and/or
    to one import batch. Managers create them; annotators choose one on the workspace."""

    name = models.CharField(_("name"), max_length=200)
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("category subtree")
    )
    import_batch = models.UUIDField(_("import batch"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Lease(models.Model):
    """An item handed to one annotator until it expires: never beyond the item's overlap, never twice to one."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    strategy = models.CharField(max_length=20)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["product", "annotator"], name="lease_product_annotator")]
        indexes = [
            models.Index(fields=["annotator", "expires_at"], name="lease_annotator_expiry"),
            models.Index(fields=["product", "expires_at"], name="lease_product_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} -> {self.annotator_id} until {self.expires_at:%H:%M}"


class AnnotationKind(models.TextChoices):
    LABEL = "label", _("label")
    SKIP = "skip", _("skip")
    FLAG = "flag", _("flag")


class Annotation(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=AnnotationKind.choices)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    reason = models.CharField(max_length=500, blank=True)
    # The client's idempotency key: a retried POST returns the first answer instead of writing a second.
    client_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # The audit row this annotation wrote when it settled the label of record (what `u` reverts).
    category_change_id = models.BigIntegerField(null=True, blank=True)
    strategy = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="label") | Q(category__isnull=False), name="annotation_label_has_category"
            ),
            # One live answer per annotator and item: an undo frees the slot for a new one.
            models.UniqueConstraint(
                fields=["product", "annotator"],
                condition=Q(undone_at__isnull=True),
                name="annotation_one_live_per_annotator",
            ),
        ]
        indexes = [
            models.Index(fields=["annotator", "-created_at"], name="annotation_annotator_time"),
            models.Index(fields=["product", "kind"], name="annotation_product_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} {self.kind} {self.product_id}"


class ReviewReason(models.TextChoices):
    DISAGREEMENT = "disagreement", _("annotators disagree")
    FLAG = "flag", _("flagged")
    # A verified label that a cross-validated model finds unlikely (mlcore's label audit, confident learning).
    LIKELY_LABEL_ERROR = "likely_label_error", _("likely label error")


class ReviewItem(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=20, choices=ReviewReason.choices)
    note = models.CharField(max_length=500, blank=True)
    # The category a check proposes instead of the current one (likely label errors); offered first on review.
    suggested_category = models.ForeignKey(Category, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The adjudicated category (null when the reviewer dismissed the item without a label).
    resolved_category = models.ForeignKey(Category, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["product", "reason"], condition=Q(resolved_at__isnull=True), name="review_one_open_per_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"review {self.product_id} ({self.reason})"
