"""Annotators' work: who holds which item (leases), what they answered (annotations), what needs a manager."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from catalog.models import Category, Product
from core.models import Job


class LabelingQueue(models.Model):
    """A queue restricted to a category subtree (the product's category or its top suggestion lies in it) and/or
    to one import batch. Managers create them; annotators choose one on the workspace."""

    name = models.CharField(_("name"), max_length=200)
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("category subtree")
    )
    import_batch = models.UUIDField(_("import batch"), null=True, blank=True)
    # A queue of a reclassification audit's products, or of the products a manager sent to annotators.
    audit = models.ForeignKey(
        "ProposalAudit", on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("audit")
    )
    sent_from = models.ForeignKey(
        "ReclassificationBatch",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("sent from reclassification batch"),
    )
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
    RETIRED_CATEGORY = "retired_category", _("its category was retired, with nowhere sure to go")


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


# --- Reclassification: what a new model version proposes to change in the catalog, and the manager's decisions ---


class BatchSource(models.TextChoices):
    MODEL = "model", _("a model version")
    TAXONOMY = "taxonomy", _("a taxonomy change")


class ReclassificationBatch(models.Model):
    """The proposals one model version makes, once its re-scoring has completed (a newer version's batch supersedes
    this one's open proposals), or those a taxonomy change makes for the products filed under retired categories."""

    source = models.CharField(max_length=10, choices=BatchSource.choices, default=BatchSource.MODEL)
    # The version whose predictions proposed (a taxonomy batch: the serving one, for categories with no mapping).
    model_version = models.ForeignKey(
        "mlcore.ModelVersion", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # Why a taxonomy batch exists ("merged 'A' into 'B'").
    reason = models.CharField(max_length=500, blank=True)
    # The rolled-up probability a proposal's category needs (default: the version's confidence for 99 % precision
    # on the frozen test set).
    threshold = models.FloatField()
    # What other thresholds would have given, counted while building: [{threshold, proposals, test_n, test_hits}]
    # (test_*: the version's frozen test items at or above it, and how many it got right).
    explorer = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("apply_reclassificationbatch", "Can apply and undo reclassifications")]

    def __str__(self) -> str:
        return f"reclassification batch {self.pk} ({self.origin})"

    @property
    def origin(self) -> str:
        """Where the proposals come from, for people: the model version, or the taxonomy change."""
        if self.source == BatchSource.TAXONOMY:
            return f"{_('taxonomy change')}: {self.reason}"
        return self.model_version.label if self.model_version else str(_("zero-shot"))


class ProposalKind(models.TextChoices):
    FILL = "fill", _("fill: no category yet")
    REFINE = "refine", _("refine: a deeper category")
    CHANGE = "change", _("change: another branch")


class ProposalState(models.TextChoices):
    PROPOSED = "proposed", _("proposed")
    APPROVED = "approved", _("approved")
    REJECTED = "rejected", _("rejected")
    APPLIED = "applied", _("applied")
    SKIPPED = "skipped", _("skipped: the product changed since")
    UNDONE = "undone", _("undone")
    SENT = "sent", _("sent to annotators")
    SUPERSEDED = "superseded", _("superseded by a newer version")


OPEN_PROPOSAL_STATES = (ProposalState.PROPOSED, ProposalState.APPROVED)


class ReclassificationProposal(models.Model):
    # batch and product are indexed by the composite indexes below, not again alone: a 100k-proposal apply updates
    # every index of every row it touches.
    batch = models.ForeignKey(ReclassificationBatch, on_delete=models.CASCADE, related_name="proposals", db_index=False)
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+", db_index=False)
    # The category of record when the proposal was made (null: the product had none).
    from_category = models.ForeignKey(Category, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    to_category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=ProposalKind.choices)
    # The rolled-up probability of to_category (the sum over its subtree of the model's top categories).
    confidence = models.FloatField()
    # The model's own top categories, [[category_id, probability], ...], best first.
    top = models.JSONField(default=list)
    # The product's version when proposed: applying to a product changed since is refused, never an overwrite.
    product_version = models.PositiveIntegerField()
    state = models.CharField(max_length=12, choices=ProposalState.choices, default=ProposalState.PROPOSED)
    # Moves a product across top-level categories (a toy into Apparel): with RECLASSIFY_TWO_PERSON, applying it
    # needs a second approver.
    crosses_vertical = models.BooleanField(default=False)
    # A taxonomy move to a mapped or merged category: a verified label stays verified (the same decision, renamed).
    keeps_verified = models.BooleanField(default=False)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    # The CategoryChange that applied it (what undo reverts). Not indexed: nothing looks a proposal up by its change
    # (audit rows are never deleted), and apply writes it on every row.
    change = models.ForeignKey(
        "catalog.CategoryChange", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["batch", "product"], name="proposal_batch_product")]
        indexes = [
            # With id last: apply and undo walk a batch's approved (applied) proposals by id, 2,000 at a time.
            models.Index(fields=["batch", "state", "id"], name="proposal_batch_state"),
            models.Index(fields=["batch", "kind", "from_category", "to_category"], name="proposal_batch_group"),
            models.Index(fields=["product", "state"], name="proposal_product_state"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.from_category_id} -> {self.to_category_id} ({self.state})"


class ReclassificationGroup(models.Model):
    """A batch's proposals of one kind and from -> to, summed up once when the batch is built (these figures never
    change: decisions change states, not confidences): the batch page sorts and pages these rows instead of grouping
    every proposal of a 100k batch on each request."""

    batch = models.ForeignKey(ReclassificationBatch, on_delete=models.CASCADE, related_name="groups")
    kind = models.CharField(max_length=10, choices=ProposalKind.choices)
    from_category = models.ForeignKey(Category, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    to_category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+")
    n = models.PositiveIntegerField()
    mean_confidence = models.FloatField()
    low_confidence = models.FloatField()
    estimated_precision = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["batch", "-n"], name="recgroup_size"),
            models.Index(fields=["batch", "-mean_confidence"], name="recgroup_confidence"),
            models.Index(fields=["batch", "low_confidence"], name="recgroup_lowest"),
            models.Index(fields=["batch", "estimated_precision"], name="recgroup_estimated"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.from_category_id} -> {self.to_category_id} ({self.n})"


class ReclassificationRejection(models.Model):
    """A manager said no to (product, from, to): not proposed again until the product changes."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    from_category = models.ForeignKey(Category, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    to_category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+")
    product_version = models.PositiveIntegerField()
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["product", "to_category"], name="rejection_product_to")]

    def __str__(self) -> str:
        return f"{self.product_id}: not {self.from_category_id} -> {self.to_category_id}"


class ReclassificationAction(models.TextChoices):
    BUILD = "build", _("build the proposals")
    APPLY = "apply", _("apply")
    UNDO = "undo", _("undo")


class ReclassificationJob(Job):
    """Building a batch, applying its approved proposals or undoing its applied ones, in the background (the core
    job lifecycle: a lost worker's job is resumed, each step being idempotent on the proposals' states)."""

    action = models.CharField(max_length=10, choices=ReclassificationAction.choices)
    model_version = models.ForeignKey(
        "mlcore.ModelVersion", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # A taxonomy build: {retired category id: replacement id or null} and why.
    moves = models.JSONField(default=dict, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    batch = models.ForeignKey(
        ReclassificationBatch, on_delete=models.CASCADE, null=True, blank=True, related_name="jobs"
    )
    # Apply/undo only these proposals' group (kind, from, to); empty: the whole batch.
    group = models.JSONField(default=dict, blank=True)
    # Build at this threshold instead of the version's default (the manager moved it).
    threshold = models.FloatField(null=True, blank=True)
    # Groups the CategoryChange rows this job wrote (an audit trail entry per product).
    change_batch = models.UUIDField(default=uuid.uuid4, editable=False)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"reclassification {self.action} #{self.pk} ({self.status})"

    def progress(self) -> tuple[int, int]:
        return (self.done, self.total)


class AuditAudience(models.TextChoices):
    MANAGER = "manager", _("me, blind")
    ANNOTATORS = "annotators", _("annotators, as a queue")


class ProposalAudit(models.Model):
    """k random proposals of one group, shown blind (the product, not the proposal) to the manager or to the
    annotators: the group's precision measured before it is applied."""

    batch = models.ForeignKey(ReclassificationBatch, on_delete=models.CASCADE, related_name="audits")
    # The group, as ReclassificationJob.group: {kind, from, to}.
    group = models.JSONField(default=dict)
    audience = models.CharField(max_length=12, choices=AuditAudience.choices, default=AuditAudience.MANAGER)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"audit {self.pk} of batch {self.batch_id} {self.group}"


class ProposalAuditItem(models.Model):
    audit = models.ForeignKey(ProposalAudit, on_delete=models.CASCADE, related_name="items")
    proposal = models.ForeignKey(ReclassificationProposal, on_delete=models.CASCADE, related_name="+")
    # The auditor's own answer, given without seeing the proposal; null with answered_at set: "cannot tell".
    answer = models.ForeignKey(Category, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["audit", "proposal"], name="audit_item_once")]

    def __str__(self) -> str:
        return f"audit {self.audit_id}: proposal {self.proposal_id}"
