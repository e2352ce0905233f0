from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.api import JOB_FIELDS
from mlcore.models import (
    TRAINABLE_METHODS,
    LabelAudit,
    LabelIssue,
    ModelVersion,
    RescoreJob,
    TrainingMethod,
    TrainingRun,
)


class ModelVersionSerializer(serializers.ModelSerializer[ModelVersion]):
    summary = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "number",
            "label",
            "status",
            "is_serving",
            "base_model",
            "method",
            "hyperparameters",
            "summary",
            "artifact_path",
            "warm_started_from",
            "created_by",
            "created_at",
            "activated_at",
            "activated_by",
            "activation_note",
            "held_back",
            "override_reason",
        ]

    def get_summary(self, version: ModelVersion) -> dict[str, Any]:
        return {key: value for key, value in version.headline.items() if key != "temperature"}


class TrainingRunSerializer(serializers.ModelSerializer[TrainingRun]):
    percent = serializers.IntegerField(read_only=True)
    model_version = ModelVersionSerializer(read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "step",
            "total_steps",
            "epoch",
            "losses",
            "evaluations",
            "device",
            "model_version",
            *JOB_FIELDS,
        ]


class TrainingRunCreateSerializer(serializers.Serializer[Any]):
    method = serializers.ChoiceField(choices=TRAINABLE_METHODS, default=TrainingMethod.FULL)
    base_model = serializers.CharField(
        required=False, default="", allow_blank=True, help_text="a name from MLCORE_BASE_MODELS, or 'default'"
    )
    lora_rank = serializers.IntegerField(required=False, default=16, min_value=1, max_value=256)
    warm_start = serializers.BooleanField(required=False, default=True)
    epochs = serializers.FloatField(required=False, default=3.0)
    learning_rate = serializers.FloatField(required=False, default=5e-5)
    max_length = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=8, max_value=512)
    batch_size = serializers.IntegerField(required=False, default=32, min_value=1, max_value=1024)


class RescoreJobSerializer(serializers.ModelSerializer[RescoreJob]):
    percent = serializers.IntegerField(read_only=True)
    # `source` shadows Field.source in the stubs; the API names the origin of a score so.
    source = serializers.SerializerMethodField()  # type: ignore[assignment]

    class Meta:
        model = RescoreJob
        fields = [
            "id",
            "model_version",
            "source",
            "chunks_total",
            "chunks_done",
            "products_total",
            "products_done",
            *JOB_FIELDS,
        ]

    def get_source(self, job: RescoreJob) -> str:
        return job.model_version.label if job.model_version else "zero-shot"


class EvidenceSerializer(serializers.Serializer[Any]):
    product_id = serializers.IntegerField()
    title = serializers.CharField()
    similarity = serializers.FloatField(help_text="cosine of the two products' stored embeddings")


class SuggestionSerializer(serializers.Serializer[Any]):
    category_id = serializers.IntegerField()
    external_id = serializers.CharField()
    path = serializers.CharField()
    confidence = serializers.FloatField()
    source = serializers.CharField(help_text="the model version (v3) or zero-shot")  # type: ignore[assignment]
    evidence = EvidenceSerializer(
        many=True, read_only=True, help_text="the verified products in this category nearest to the product (up to 3)"
    )


class LabelIssueSerializer(serializers.ModelSerializer[LabelIssue]):
    sku = serializers.CharField(source="product.sku", read_only=True)

    class Meta:
        model = LabelIssue
        fields = [
            "product",
            "sku",
            "given_category",
            "given_probability",
            "suggested_category",
            "suggested_probability",
        ]


class LabelAuditSerializer(serializers.ModelSerializer[LabelAudit]):
    class Meta:
        model = LabelAudit
        fields = [
            "id",
            "method",
            "labels_checked",
            "labels_skipped",
            "issues_found",
            "agreement",
            *JOB_FIELDS,
        ]
