"""Reclassification API: batches, their groups and proposals, decisions, apply and undo (managers and admins)."""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.models import Category, CategorySource
from core.api import JOB_FIELDS, RequiredPermission
from core.errors import ApplicationError, NotFoundError
from core.http import signed_in
from core.jobs import job_cancel
from labeling import selectors
from labeling.estimates import Estimate, Verdicts
from labeling.exports import reclassification_csv
from labeling.models import (
    AuditAudience,
    ProposalAudit,
    ProposalKind,
    ProposalState,
    ReclassificationBatch,
    ReclassificationJob,
)
from labeling.services.proposal_audits import audit_answer, audit_start
from labeling.services.reclassification import (
    DECISIONS,
    proposal_group_clean,
    proposals_decide,
    reclassification_apply_start,
    reclassification_rebuild_start,
    reclassification_undo_start,
)

APPLY_PERM = "labeling.apply_reclassificationbatch"


def _estimate(estimate: Estimate | Verdicts | None) -> dict[str, Any] | None:
    if estimate is None:
        return None
    low, high = estimate.interval
    out: dict[str, Any] = {"precision": estimate.precision, "interval_95": [low, high]}
    if isinstance(estimate, Verdicts):
        out.update(correct=estimate.correct, wrong=estimate.wrong, unsure=estimate.unsure, waiting=estimate.waiting)
    else:
        out.update(n=estimate.n, hits=estimate.hits)
    return out


class BatchSerializer(serializers.ModelSerializer[ReclassificationBatch]):
    model_version = serializers.CharField(source="model_version.label", read_only=True, allow_null=True, default=None)
    counts = serializers.SerializerMethodField()
    promise = serializers.SerializerMethodField()

    class Meta:
        model = ReclassificationBatch
        fields = [
            "id",
            "source",
            "reason",
            "model_version",
            "threshold",
            "created_at",
            "superseded_at",
            "counts",
            "promise",
            "explorer",
        ]

    def get_counts(self, batch: Any) -> dict[str, int]:
        return {"total": batch.n_total, **{state: getattr(batch, f"n_{state}") for state in ProposalState.values}}

    def get_promise(self, batch: ReclassificationBatch) -> dict[str, Any] | None:
        """The version's precision on its frozen test items at or above the batch's threshold (with its n)."""
        return _estimate(selectors.batch_promise(batch))


class CategoryRefSerializer(serializers.ModelSerializer[Category]):
    class Meta:
        model = Category
        fields = ["id", "external_id", "full_path_en"]


class GroupSerializer(serializers.Serializer[Any]):
    kind = serializers.CharField()
    from_category = CategoryRefSerializer(allow_null=True)
    to_category = CategoryRefSerializer()
    n = serializers.IntegerField()
    mean_confidence = serializers.FloatField()
    low_confidence = serializers.FloatField()
    estimated_precision = serializers.FloatField(allow_null=True)
    crosses_vertical = serializers.BooleanField()
    needs_second = serializers.BooleanField()
    below_promise = serializers.BooleanField()
    audit = serializers.SerializerMethodField()
    samples = serializers.ListField(child=serializers.CharField())
    states = serializers.SerializerMethodField()

    def get_states(self, group: dict[str, Any]) -> dict[str, int]:
        return {state: group[f"n_{state}"] for state in ProposalState.values}

    def get_audit(self, group: dict[str, Any]) -> dict[str, Any] | None:
        return _estimate(group["audit"])


class ProposalSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    product = serializers.IntegerField(source="product_id")
    sku = serializers.CharField(source="product.sku")
    title = serializers.CharField(source="product.title")
    kind = serializers.CharField()
    from_category = CategoryRefSerializer(allow_null=True)
    to_category = CategoryRefSerializer()
    confidence = serializers.FloatField()
    top = serializers.JSONField()
    product_version = serializers.IntegerField()
    crosses_vertical = serializers.BooleanField()
    state = serializers.CharField()
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)
    confirmed_by = serializers.CharField(source="confirmed_by.username", allow_null=True, default=None)
    note = serializers.CharField()


class DecisionSerializer(serializers.Serializer[Any]):
    decision = serializers.ChoiceField(choices=[*DECISIONS, "confirm"])
    ids = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=100_000)
    group = serializers.DictField(required=False)
    filter = serializers.DictField(
        required=False, help_text="kind, state, subtree, min_confidence, max_confidence, source (as the proposals list)"
    )


class RebuildSerializer(serializers.Serializer[Any]):
    threshold = serializers.FloatField(min_value=0.0, max_value=1.0)


class AuditCreateSerializer(serializers.Serializer[Any]):
    group = serializers.DictField()
    audience = serializers.ChoiceField(choices=AuditAudience.values, default=AuditAudience.MANAGER)
    size = serializers.IntegerField(min_value=1, max_value=500, required=False)


class AuditSerializer(serializers.ModelSerializer[ProposalAudit]):
    measured = serializers.SerializerMethodField()
    items = serializers.SerializerMethodField()

    class Meta:
        model = ProposalAudit
        fields = ["id", "batch", "group", "audience", "created_at", "measured", "items"]

    def get_measured(self, audit: ProposalAudit) -> dict[str, Any] | None:
        return _estimate(next(iter(selectors.audit_verdicts(batch=audit.batch, audit=audit).values()), None))

    def get_items(self, audit: ProposalAudit) -> list[dict[str, Any]]:
        """Blind: the product, never the proposal."""
        return [
            {"id": pk, "product": product, "title": title, "answered": answered is not None}
            for pk, product, title, answered in audit.items.order_by("pk").values_list(
                "pk", "proposal__product_id", "proposal__product__title", "answered_at"
            )
        ]


class AuditAnswerSerializer(serializers.Serializer[Any]):
    item = serializers.IntegerField()
    category = serializers.IntegerField(allow_null=True, help_text="null: cannot tell")


class GroupScopeSerializer(serializers.Serializer[Any]):
    group = serializers.DictField(required=False)


class ReclassificationJobSerializer(serializers.ModelSerializer[ReclassificationJob]):
    class Meta:
        model = ReclassificationJob
        fields = ["id", "action", "batch", "group", "done", "total", "skipped", *JOB_FIELDS]


class ProposalPagination(CursorPagination):
    ordering = ("-confidence", "pk")
    page_size = 50


def _filters(request: Request) -> selectors.ProposalFilters:
    return _filters_from(request.query_params)


def _filters_from(params: Any) -> selectors.ProposalFilters:
    subtree = None
    if params.get("subtree"):
        raw = str(params["subtree"])
        subtree = Category.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
        if subtree is None:
            raise ApplicationError(f"No category with id {params['subtree']}.")
    if params.get("kind") and params["kind"] not in ProposalKind.values:
        raise ApplicationError(f"Unknown kind '{params['kind']}': use fill, refine or change.")
    if params.get("state") and params["state"] not in ProposalState.values:
        raise ApplicationError(f"Unknown state '{params['state']}'.")
    if params.get("source") and params["source"] not in CategorySource.values:
        raise ApplicationError(f"Unknown source '{params['source']}'.")

    def number(name: str) -> float | None:
        if not params.get(name):
            return None
        try:
            return float(params[name])
        except (TypeError, ValueError):
            raise ApplicationError(f"'{name}' must be a number.") from None

    return selectors.ProposalFilters(
        kind=params.get("kind", ""),
        state=params.get("state", ""),
        subtree=subtree,
        min_confidence=number("min_confidence"),
        max_confidence=number("max_confidence"),
        source=params.get("source", ""),
    )


def _group(request: Request) -> dict[str, Any] | None:
    params = request.query_params
    if not any(k in params for k in ("group_kind", "from", "to")):
        return None
    group: dict[str, Any] = {"kind": params.get("group_kind", "")}
    for key in ("from", "to"):
        if key in params:
            group[key] = None if params[key] in ("", "none") else params[key]
    return proposal_group_clean(group)


class ReclassificationBatchViewSet(viewsets.ReadOnlyModelViewSet[ReclassificationBatch]):
    serializer_class = BatchSerializer
    permission_classes = [RequiredPermission]
    read_perm = "labeling.view_reclassificationbatch"
    write_perm = "labeling.change_reclassificationbatch"
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        return selectors.reclassification_batches()

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.get_queryset()
        page = self.paginate_queryset(queryset)
        rows = selectors.batches_counted(page if page is not None else queryset)
        data = self.get_serializer(rows, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(self.get_serializer(selectors.batches_counted([self.get_object()])[0]).data)

    @extend_schema(responses=GroupSerializer(many=True))
    @action(detail=True, methods=["get"])
    def groups(self, request: Request, pk: str | None = None) -> Response:
        """Proposals grouped by kind and from -> to, a page of `limit` (default 50, at most 500) from `offset`;
        `order` size|confidence|lowest|estimated; the proposal filters apply."""
        params = request.query_params
        try:
            limit = min(max(int(params.get("limit", 50)), 1), 500)
            offset = max(int(params.get("offset", 0)), 0)
        except ValueError:
            raise ApplicationError("'limit' and 'offset' are whole numbers.") from None
        rows = selectors.reclassification_groups(
            batch=self.get_object(),
            filters=_filters(request),
            order=params.get("order", "size"),
            limit=limit,
            offset=offset,
        )
        return Response(GroupSerializer(rows, many=True).data)

    @extend_schema(responses=ProposalSerializer(many=True))
    @action(detail=True, methods=["get"])
    def proposals(self, request: Request, pk: str | None = None) -> Response:
        """Filters: kind, state, subtree, min_confidence, max_confidence, source; a group by group_kind, from, to."""
        rows = selectors.reclassification_proposals(
            batch=self.get_object(), filters=_filters(request), group=_group(request)
        )
        paginator = ProposalPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(ProposalSerializer(page, many=True).data)

    @extend_schema(request=DecisionSerializer, responses={200: dict})
    @action(detail=True, methods=["post"])
    def decisions(self, request: Request, pk: str | None = None) -> Response:
        """Approve, reject or reopen open proposals by `ids` or by `group` ({kind, from, to})."""
        incoming = DecisionSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        changed = proposals_decide(
            batch_id=self.get_object().pk,
            decision=data["decision"],
            user=signed_in(request),
            ids=data.get("ids"),
            group=data.get("group"),
            filters=_filters_from(data["filter"]) if "filter" in data else None,
        )
        return Response({"changed": changed})

    @extend_schema(request=RebuildSerializer, responses={202: ReclassificationJobSerializer})
    @action(detail=True, methods=["post"])
    def rebuild(self, request: Request, pk: str | None = None) -> Response:
        """Build the version's proposals again at another `threshold` (see the batch's `explorer`); the new batch
        supersedes this one and keeps the approvals of the same moves."""
        incoming = RebuildSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        job = reclassification_rebuild_start(
            batch_id=self.get_object().pk, threshold=incoming.validated_data["threshold"], user=signed_in(request)
        )
        return Response(ReclassificationJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=AuditCreateSerializer, responses={201: AuditSerializer})
    @action(detail=True, methods=["post"])
    def audits(self, request: Request, pk: str | None = None) -> Response:
        """Audit one group: `size` random products shown blind to the manager (answer them at
        /api/v1/reclassification-audits/{id}/answer/) or to the annotators as a queue."""
        incoming = AuditCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        audit = audit_start(
            batch_id=self.get_object().pk,
            group=data["group"],
            user=signed_in(request),
            audience=data["audience"],
            size=data.get("size"),
        )
        return Response(AuditSerializer(audit).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "text/csv"): str})
    @action(detail=True, methods=["get"])
    def export(self, request: Request, pk: str | None = None) -> StreamingHttpResponse:
        """The batch's proposals and decisions as CSV (formula-safe)."""
        batch = self.get_object()
        response = StreamingHttpResponse(reclassification_csv(batch=batch), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="reclassification-batch-{batch.pk}.csv"'
        return response

    def _job(self, request: Request, start: Any) -> Response:
        if not request.user.has_perm(APPLY_PERM):
            raise PermissionDenied("You may not apply or undo reclassifications.")
        incoming = GroupScopeSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        job = start(batch_id=self.get_object().pk, user=signed_in(request), group=incoming.validated_data.get("group"))
        return Response(ReclassificationJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=GroupScopeSerializer, responses={202: ReclassificationJobSerializer})
    @action(detail=True, methods=["post"])
    def apply(self, request: Request, pk: str | None = None) -> Response:
        """Apply the approved proposals (of one `group`, or all) in the background: poll the job."""
        return self._job(request, reclassification_apply_start)

    @extend_schema(request=GroupScopeSerializer, responses={202: ReclassificationJobSerializer})
    @action(detail=True, methods=["post"])
    def undo(self, request: Request, pk: str | None = None) -> Response:
        """Undo the applied proposals (of one `group`, or all) exactly; products changed since are skipped."""
        return self._job(request, reclassification_undo_start)


class ReclassificationAuditViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[ProposalAudit]
):
    serializer_class = AuditSerializer
    permission_classes = [RequiredPermission]
    read_perm = "labeling.view_reclassificationbatch"
    write_perm = "labeling.change_reclassificationbatch"
    queryset = ProposalAudit.objects.select_related("batch__model_version").order_by("-created_at")
    filter_backends: list[Any] = []

    @extend_schema(request=AuditAnswerSerializer, responses=AuditSerializer)
    @action(detail=True, methods=["post"])
    def answer(self, request: Request, pk: str | None = None) -> Response:
        """A blind answer for one of the audit's products: its category id, or null (cannot tell)."""
        audit = self.get_object()
        incoming = AuditAnswerSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        if not audit.items.filter(pk=data["item"]).exists():
            raise NotFoundError(f"Audit {audit.pk} has no item {data['item']}.")
        audit_answer(item_id=data["item"], user=signed_in(request), category_id=data["category"])
        return Response(AuditSerializer(audit).data)


class ReclassificationJobViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[ReclassificationJob]
):
    serializer_class = ReclassificationJobSerializer
    permission_classes = [RequiredPermission]
    read_perm = "labeling.view_reclassificationbatch"
    write_perm = APPLY_PERM
    queryset = ReclassificationJob.objects.all()
    filter_backends: list[Any] = []

    @extend_schema(request=None, responses=ReclassificationJobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        return Response(ReclassificationJobSerializer(job_cancel(ReclassificationJob, self.get_object().pk)).data)
