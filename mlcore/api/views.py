from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.selectors import product_get
from core.api import RequiredPermission
from core.http import signed_in
from mlcore.api.serializers import (
    LabelAuditSerializer,
    LabelIssueSerializer,
    ModelVersionSerializer,
    RescoreJobSerializer,
    SuggestionSerializer,
    TrainingRunCreateSerializer,
    TrainingRunSerializer,
)
from mlcore.models import LabelAudit, LabelIssue, ModelVersion, RescoreJob, TrainingRun
from mlcore.selectors import VERSION_HEAVY, product_suggestions, version_training_counts
from mlcore.services.label_audit import label_audit_cancel, label_audit_start
from mlcore.services.policy import fast_version_request
from mlcore.services.registry import model_version_activate
from mlcore.services.rescoring import rescore_job_cancel, rescore_job_start
from mlcore.services.training import training_run_cancel, training_run_start


class ActivateSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ModelVersionViewSet(viewsets.ReadOnlyModelViewSet[ModelVersion]):
    serializer_class = ModelVersionSerializer
    permission_classes = [RequiredPermission]
    read_perm = "mlcore.view_modelversion"
    write_perm = "mlcore.change_modelversion"
    queryset = ModelVersion.objects.defer("metrics", "data_snapshot")
    filter_backends: list[Any] = []

    @action(detail=True, methods=["get"])
    def metrics(self, request: Request, pk: str | None = None) -> Response:
        """Every metric of the version: test set (accuracy, P/R/F1, per class, confusion, per level, ECE, coverage)
        and validation, plus its data snapshot's counts per category."""
        version = self.get_object()
        return Response({**version.metrics, "counts": version_training_counts(version_id=version.pk)})

    @extend_schema(request=ActivateSerializer, responses=ModelVersionSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        """Make this version active (admins): an earlier one is a rollback (its stored predictions serve at once when
        they cover the catalog). A version the gate held back needs `?force=true` and a `reason`, recorded apart."""
        incoming = ActivateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        version = model_version_activate(
            version_id=self.get_object().pk,
            user=signed_in(request),
            force=request.query_params.get("force") == "true",
            reason=incoming.validated_data.get("reason", ""),
        )
        return Response(ModelVersionSerializer(version).data)

    @extend_schema(request=None, responses={202: None})
    @action(detail=False, methods=["post"])
    def fast(self, request: Request) -> Response:
        """Fit a fast head now (admins): class centroids of the verified products' stored embeddings, registered as
        a version of method `fast` in a few seconds on the `scoring` queue; the gate decides whether it serves. It
        also follows every MLCORE_FAST_HEAD_EVERY new labels by itself."""
        fast_version_request()
        return Response({"detail": "A fast head is being fitted."}, status=202)


class TrainingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[TrainingRun]):
    serializer_class = TrainingRunSerializer
    permission_classes = [RequiredPermission]
    read_perm = "mlcore.view_trainingrun"
    write_perm = "mlcore.add_trainingrun"
    queryset = TrainingRun.objects.select_related("model_version").defer(*VERSION_HEAVY)
    filter_backends: list[Any] = []

    @extend_schema(request=TrainingRunCreateSerializer, responses={202: TrainingRunSerializer})
    def create(self, request: Request) -> Response:
        incoming = TrainingRunCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        run = training_run_start(user=signed_in(request), **incoming.validated_data)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=TrainingRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        run = training_run_cancel(run_id=self.get_object().pk)
        return Response(TrainingRunSerializer(run).data)


class RescoreJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[RescoreJob]):
    serializer_class = RescoreJobSerializer
    permission_classes = [RequiredPermission]
    read_perm = "mlcore.view_rescorejob"
    write_perm = "mlcore.add_rescorejob"
    queryset = RescoreJob.objects.select_related("model_version").defer(*VERSION_HEAVY)
    filter_backends: list[Any] = []

    @extend_schema(request=None, responses={202: RescoreJobSerializer})
    def create(self, request: Request) -> Response:
        """Re-score the catalog with `?version=<id>` (default: zero-shot)."""
        version = request.query_params.get("version")
        job = rescore_job_start(version_id=int(version) if version and version.isdigit() else None)
        return Response(RescoreJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=RescoreJobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Ends at once: chunks being scored write nothing more; suggestions do not switch."""
        return Response(RescoreJobSerializer(rescore_job_cancel(job_id=self.get_object().pk)).data)


class LabelAuditViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[LabelAudit]):
    serializer_class = LabelAuditSerializer
    permission_classes = [RequiredPermission]
    read_perm = "mlcore.view_labelaudit"
    write_perm = "mlcore.add_labelaudit"
    queryset = LabelAudit.objects.all()
    filter_backends: list[Any] = []

    @extend_schema(request=None, responses={202: LabelAuditSerializer})
    def create(self, request: Request) -> Response:
        """Check every verified label for likely errors (returns the pending check if one is queued or running)."""
        audit = label_audit_start(user=signed_in(request))
        return Response(LabelAuditSerializer(audit).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=LabelAuditSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        return Response(LabelAuditSerializer(label_audit_cancel(audit_id=self.get_object().pk)).data)

    @extend_schema(responses=LabelIssueSerializer(many=True))
    @action(detail=True, methods=["get"])
    def issues(self, request: Request, pk: str | None = None) -> Response:
        """The likely label errors this check found, likeliest first."""
        rows = LabelIssue.objects.filter(audit=self.get_object()).select_related("product")
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(LabelIssueSerializer(page, many=True).data)


@extend_schema(responses=SuggestionSerializer(many=True))
@api_view(["GET"])
@permission_classes([RequiredPermission])
def suggestions(request: Request, product_id: int) -> Response:
    """The product's top categories, best first, with confidence and where they came from."""
    product = product_get(product_id=product_id)
    data = product_suggestions(product=product, language=getattr(request, "LANGUAGE_CODE", None), evidence=True)
    return Response(SuggestionSerializer(data, many=True).data)


suggestions.cls.read_perm = "catalog.view_product"  # type: ignore[attr-defined]
suggestions.cls.write_perm = "catalog.view_product"  # type: ignore[attr-defined]
