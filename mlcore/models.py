"""The model registry and its jobs: versions with honest metrics, training runs, re-scoring, stored predictions."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from catalog.models import Category, Product
from core.models import Job, Lease


class TrainingMethod(models.TextChoices):
    FULL = "full", _("full fine-tuning")
    LORA = "lora", _("LoRA")
    # Not a training run: class centroids of stored embeddings, fitted in seconds after every few new labels.
    FAST = "fast", _("fast head")


# What a training run can be asked for (the form, the API): a fast head is fitted by its own service.
TRAINABLE_METHODS = [
    (TrainingMethod.FULL.value, TrainingMethod.FULL.label),
    (TrainingMethod.LORA.value, TrainingMethod.LORA.label),
]


class ModelVersionStatus(models.TextChoices):
    TRAINING = "training", _("training")
    READY = "ready", _("ready")
    ACTIVE = "active", _("active")
    ARCHIVED = "archived", _("archived")
    FAILED = "failed", _("failed")


HEADLINE = (
    "n",
    "classes_evaluated",
    "accuracy",
    "accuracy_interval",
    "macro_f1",
    "macro_f1_interval",
    "weighted_f1",
    "ece",
    "ece_uncalibrated",
    "coverage_at_95",
    "coverage_at_99",
)


def headline_of(metrics: dict[str, Any]) -> dict[str, Any]:
    """A version's headline: the test metrics every list shows, and the calibration temperature."""
    test = (metrics or {}).get("test") or {}
    return {
        **{key: test[key] for key in HEADLINE if key in test},
        "temperature": (metrics or {}).get("temperature"),
    }


class ModelVersion(models.Model):
    number = models.PositiveIntegerField(unique=True)
    base_model = models.CharField(max_length=500)
    method = models.CharField(max_length=10, choices=TrainingMethod.choices, default=TrainingMethod.FULL)
    hyperparameters = models.JSONField(default=dict)
    # Counts per category and the product ids of each split, as trained: a version can always be explained.
    data_snapshot = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict, blank=True)
    # The few test metrics a list or a panel shows (HEADLINE), copied from `metrics` on every save: the stored
    # metrics of a 5,000-class version weigh a megabyte, and PostgreSQL reads all of it to pull one key out.
    headline = models.JSONField(default=dict, blank=True, editable=False)
    artifact_path = models.CharField(max_length=1000, blank=True)
    status = models.CharField(max_length=20, choices=ModelVersionStatus.choices, default=ModelVersionStatus.TRAINING)
    # Suggestions come from this version: set when its re-scoring job completes, never before.
    is_serving = models.BooleanField(default=False)
    warm_started_from = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Why it was (or was not) activated: the gate's comparison.
    activation_note = models.TextField(blank=True)
    # The gate held it back (worse macro-F1, or a class it forgot): activating it needs an admin and a reason.
    held_back = models.BooleanField(default=False)
    # The admin's reason for promoting a held-back version, kept apart from the gate's note.
    override_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["status"], condition=Q(status="active"), name="one_active_model_version"),
            # One training at a time: a second start is refused, a redelivered task finds the first.
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="training"), name="one_training_model_version"
            ),
            models.UniqueConstraint(
                fields=["is_serving"], condition=Q(is_serving=True), name="one_serving_model_version"
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.number} ({self.get_status_display()})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if "metrics" not in self.get_deferred_fields():
            self.headline = headline_of(self.metrics)
            fields = kwargs.get("update_fields")
            if fields is not None and "metrics" in fields:
                kwargs["update_fields"] = {*fields, "headline"}
        super().save(*args, **kwargs)

    @property
    def label(self) -> str:
        return f"v{self.number}"

    @property
    def is_fast(self) -> bool:
        return self.method == TrainingMethod.FAST


class TrainingRun(Job):
    """Trains one ModelVersion. Its checkpoints outlive a lost worker: the next claim resumes from the latest."""

    model_version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="training_run")
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    epoch = models.FloatField(default=0)
    losses = models.JSONField(default=list, blank=True)
    evaluations = models.JSONField(default=list, blank=True)
    device = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status"], name="trainingrun_status")]

    def __str__(self) -> str:
        return f"training of {self.model_version} ({self.status})"

    def progress(self) -> tuple[int, int]:
        return (self.step, self.total_steps)


class TestSetItem(models.Model):
    """A verified product held out for evaluation. Once chosen it stays test for every later version, so versions
    are compared on the same items."""

    product = models.OneToOneField(Product, on_delete=models.CASCADE, related_name="+")
    added_for = models.ForeignKey(ModelVersion, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"test item {self.product_id}"


class RescoreJob(Job):
    """Writes a prediction for every product. model_version null: zero-shot scores from the pretrained encoder.
    A chunked job: its chunks are claimed one by one (RescoreChunk), and its heartbeat is the last chunk's."""

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, null=True, blank=True, related_name="rescore_jobs"
    )
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    products_total = models.PositiveIntegerField(default=0)
    products_done = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"rescore {self.model_version or 'zero-shot'} ({self.status})"

    def progress(self) -> tuple[int, int]:
        return (self.products_done, self.products_total)


class RescoreChunk(Lease):
    """One id range of a re-scoring job, leased by the worker scoring it (a redelivered twin waits for it)."""

    job = models.ForeignKey(RescoreJob, on_delete=models.CASCADE, related_name="chunks")
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    done = models.BooleanField(default=False)
    products = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "first_id"], name="rescorechunk_unique_range")]
        indexes = [models.Index(fields=["job", "done"], name="rescorechunk_job_done")]

    def __str__(self) -> str:
        return f"{self.job_id}: {self.first_id}-{self.last_id}"


class Prediction(models.Model):
    """A product's top-k categories from one version (or zero-shot), best first, with margin and entropy."""

    # No single-column indexes on these two: the unique (product, model_version) and the (model_version, ...)
    # indexes below lead with them, and every index is one more write for each of the catalog's rows a re-scoring
    # job copies in.
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="predictions", db_index=False)
    # The version's foreign key has no constraint either: PostgreSQL checked it row by row, 10,000 times a chunk
    # for the same version (0.02-0.08 s of a 10,000-row write's 0.28-0.35 s; bench.rescore --fast). The app never
    # deletes a version; one deleted in the Django admin takes its predictions with it (Django cascades by query),
    # and rows a running chunk wrote after that query name a version that no reader asks for and predictions_prune
    # deletes at the next switch. The product's constraint stays: queues and pages join predictions to products.
    model_version = models.ForeignKey(
        ModelVersion,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="predictions",
        db_constraint=False,
        db_index=False,
    )
    # [[category_id, probability], ...] best first
    top = models.JSONField()
    # The best category and the back-off as columns for the queries that compare them, but without a foreign-key
    # constraint or an index: those doubled what PostgreSQL does for each of the rows a re-score copies in (10,000
    # rows: 0.58 s with them, 0.32 s without; bench.rescore --fast), and no query looks predictions up by category.
    # Integrity is the `top` list's, whose ids never had a constraint: readers skip an id whose category is gone
    # (product_suggestions, the reclassification's tree), and the app archives categories, never deletes them.
    category = models.ForeignKey(
        Category, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    confidence = models.FloatField()
    margin = models.FloatField()
    entropy = models.FloatField()
    # The deepest category whose rolled-up probability (the sum of its descendants') reaches
    # MLCORE_BACKOFF_THRESHOLD: "surely a refrigerator, maybe a fridge freezer". Null for zero-shot scores.
    backoff_category = models.ForeignKey(
        Category,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    backoff_confidence = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "model_version"], name="prediction_product_version"),
            models.UniqueConstraint(
                fields=["product"], condition=Q(model_version__isnull=True), name="prediction_product_zeroshot"
            ),
        ]
        indexes = [
            # The labeling queue's uncertainty strategy reads the smallest margins of one version.
            models.Index(fields=["model_version", "margin"], name="prediction_version_margin"),
            # The disagreement strategy walks a version's most confident predictions first: without this index
            # it sorted ~275k rows per request (bench/labeling.py: 674 ms p50 at 1.1M products).
            models.Index(fields=["model_version", "-confidence"], name="prediction_version_confidence"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.category_id} ({self.confidence:.2f})"


class LabelAudit(Job):
    """A confident-learning check of every verified label (mlcore/engine/label_audit.py). Its findings are
    LabelIssue rows; the labeling app turns them into review items (signal `label_issues_found`)."""

    method = models.CharField(max_length=500, blank=True)
    labels_checked = models.PositiveIntegerField(default=0)
    labels_skipped = models.PositiveIntegerField(default=0)
    issues_found = models.PositiveIntegerField(default=0)
    # Share of checked labels the held-out model agrees with: a low figure means the check itself is weak.
    agreement = models.FloatField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A second start while one waits gets that one (mlcore/services/label_audit.py), even at the same moment.
            models.UniqueConstraint(fields=["status"], condition=Q(status="queued"), name="one_queued_label_audit")
        ]

    def __str__(self) -> str:
        return f"label audit {self.pk} ({self.status})"


class LabelIssue(models.Model):
    """A verified label the cross-validated model finds unlikely, with the category it prefers."""

    audit = models.ForeignKey(LabelAudit, on_delete=models.CASCADE, related_name="issues")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    given_category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+")
    suggested_category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+")
    given_probability = models.FloatField()
    suggested_probability = models.FloatField()

    class Meta:
        ordering = ["given_probability"]
        constraints = [models.UniqueConstraint(fields=["audit", "product"], name="labelissue_audit_product")]

    def __str__(self) -> str:
        return f"{self.product_id}: {self.given_category_id} -> {self.suggested_category_id}?"


class ScoringBacklog(models.Model):
    """A product to (re)score with the serving version, or zero-shot before there is one: created, edited or
    imported since the last full re-score, or missed by it. Drained a few hundred at a time by the `scoring` queue
    (debounced after each change, and every minute by beat, so a lost message delays nothing for long)."""

    product = models.OneToOneField("catalog.Product", on_delete=models.CASCADE, primary_key=True, related_name="+")
    # Bumped when the product changes again: a drain deletes only the rows it scored, as they were when it read them.
    queued_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"score product {self.product_id}"


class ProductEmbedding(models.Model):
    """A product's text as the base encoder embeds it (L2-normalised, float16): what the fast head fits on and scores
    from, and what finds a suggestion's nearest verified products. Written whenever zero-shot or a fast version
    scores the product; re-embedded when its text or the encoder changes (the hash and the encoder's key say so)."""

    product = models.OneToOneField("catalog.Product", on_delete=models.CASCADE, primary_key=True, related_name="+")
    encoder = models.CharField(max_length=40)
    text_hash = models.CharField(max_length=16)
    vector = models.BinaryField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"embedding of product {self.product_id}"


class RetrainingPolicy(models.Model):
    """When a training run starts by itself (one row, edited on the dashboard by admins): after N new verified labels
    and/or daily at a time, never sooner than a minimum interval after the last run. One beat task applies it."""

    after_labels = models.PositiveIntegerField(
        help_text="new verified labels since the last run that start one (0: not by count)"
    )
    daily_at = models.TimeField(null=True, blank=True, help_text="start one daily at this time (empty: no schedule)")
    min_interval_minutes = models.PositiveIntegerField(default=60)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"retrain after {self.after_labels} labels, daily at {self.daily_at}"
