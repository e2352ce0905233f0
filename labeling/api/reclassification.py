"""Reclassification API: batches, their groups and proposals, decisions, apply and undo (managers and admins)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.models import Category
from core.api import JOB_FIELDS, RequiredPermission
from core.errors import ApplicationError
from core.http import signed_in
from core.jobs import job_cancel
from labeling import selectors
from labeling.models import ProposalKind, ProposalState, ReclassificationBatch, ReclassificationJob
from labeling.services.reclassification import (
    DECISIONS,
    proposal_group_clean,
    proposals_decide,
    reclassification_apply_start,
    reclassification_undo_start,
)

APPLY_PERM = "labeling.apply_reclassificationbatch"


class BatchSerializer(serializers.ModelSerializer[ReclassificationBatch]):
    model_version = serializers.CharField(source="model_version.label", read_only=True)
    counts = serializers.SerializerMethodField()

    class Meta:
        model = ReclassificationBatch
        fields = ["id", "model_version", "threshold", "created_at", "superseded_at", "counts"]

    def get_counts(self, batch: Any) -> dict[str, int]:
        return {"total": batch.n_total, **{state: getattr(batch, f"n_{state}") for state in ProposalState.values}}


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
    crosses_vertical = serializers.BooleanField()
    samples = serializers.ListField(child=serializers.CharField())
    states = serializers.SerializerMethodField()

    def get_states(self, group: dict[str, Any]) -> dict[str, int]:
        return {state: group[f"n_{state}"] for state in ProposalState.values}


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
    state = serializers.CharField()
    note = serializers.CharField()


class DecisionSerializer(serializers.Serializer[Any]):
    decision = serializers.ChoiceField(choices=list(DECISIONS))
    ids = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=100_000)
    group = serializers.DictField(required=False)


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
    params = request.query_params
    subtree = None
    if params.get("subtree"):
        subtree = Category.objects.filter(pk=params["subtree"]).first() if params["subtree"].isdigit() else None
        if subtree is None:
            raise ApplicationError(f"No category with id {params['subtree']}.")
    if params.get("kind") and params["kind"] not in ProposalKind.values:
        raise ApplicationError(f"Unknown kind '{params['kind']}': use fill, refine or change.")
    if params.get("state") and params["state"] not in ProposalState.values:
        raise ApplicationError(f"Unknown state '{params['state']}'.")

    def number(name: str) -> float | None:
        if not params.get(name):
            return None
        try:
            return float(params[name])
        except ValueError:
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

    @extend_schema(responses=GroupSerializer(many=True))
    @action(detail=True, methods=["get"])
    def groups(self, request: Request, pk: str | None = None) -> Response:
        """Proposals grouped by kind and from -> to; `order` size|confidence|lowest; the proposal filters apply."""
        rows = selectors.reclassification_groups(
            batch=self.get_object(), filters=_filters(request), order=request.query_params.get("order", "size")
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
        )
        return Response({"changed": changed})

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
