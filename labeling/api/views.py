from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.api.serializers import ProductSerializer
from core.api import RequiredPermission
from core.errors import NotFoundError
from core.http import signed_in
from labeling.models import Annotation, LabelingQueue, ReviewItem
from labeling.services.annotations import annotation_flag, annotation_skip, annotation_submit, annotation_undo
from labeling.services.queue import queue_next
from labeling.services.reviews import review_resolve
from mlcore.api.serializers import SuggestionSerializer
from mlcore.selectors import product_suggestions


class AnnotationSerializer(serializers.ModelSerializer[Annotation]):
    class Meta:
        model = Annotation
        fields = [
            "id",
            "product",
            "annotator",
            "kind",
            "category",
            "reason",
            "client_key",
            "strategy",
            "created_at",
            "undone_at",
        ]


class AnnotationCreateSerializer(serializers.Serializer[Any]):
    product = serializers.IntegerField()
    category = serializers.IntegerField(required=False)
    product_version = serializers.IntegerField(required=False, help_text="the version you were shown; stale -> 409")
    client_key = serializers.CharField(required=False, max_length=64, help_text="idempotency key for retries")
    reason = serializers.CharField(required=False, max_length=500)


class QueueItemSerializer(serializers.Serializer[Any]):
    product = ProductSerializer()
    strategy = serializers.CharField()
    expires_at = serializers.DateTimeField()
    suggestions = SuggestionSerializer(many=True)


class QueueNextView(APIView):
    permission_classes = [RequiredPermission]
    read_perm = "labeling.add_annotation"
    write_perm = "labeling.add_annotation"

    @extend_schema(responses={200: QueueItemSerializer, 204: None})
    def get(self, request: Request) -> Response:
        """Your current item, or the next one under a fresh lease; 204 when the queue is empty. `?ahead=1`: the item
        after it (leased too), for a client that prepares the next item while the annotator works."""
        queue_id = request.query_params.get("queue")
        scope = None
        if queue_id:
            scope = LabelingQueue.objects.filter(pk=int(queue_id) if queue_id.isdigit() else 0, is_active=True).first()
            if scope is None:
                raise NotFoundError(f"No active queue with id {queue_id}.")
        position = 1 if request.query_params.get("ahead") in ("1", "true") else 0
        lease = queue_next(annotator=signed_in(request), scope=scope, position=position)
        if lease is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        data = {
            "product": lease.product,
            "strategy": lease.strategy,
            "expires_at": lease.expires_at,
            "suggestions": product_suggestions(product=lease.product, language=getattr(request, "LANGUAGE_CODE", None)),
        }
        return Response(QueueItemSerializer(data).data)


class AnnotationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Annotation]):
    serializer_class = AnnotationSerializer
    queryset = Annotation.objects.all()
    permission_classes = [RequiredPermission]
    read_perm = "labeling.add_annotation"
    write_perm = "labeling.add_annotation"
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        annotations = Annotation.objects.order_by("-created_at")
        # Annotators see their own answers; reviewers see everyone's.
        if not self.request.user.has_perm("labeling.change_reviewitem"):
            annotations = annotations.filter(annotator=signed_in(self.request))
        return annotations

    def _incoming(self, request: Request) -> dict[str, Any]:
        incoming = AnnotationCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        return dict(incoming.validated_data)

    @extend_schema(request=AnnotationCreateSerializer, responses={201: AnnotationSerializer, 409: None})
    def create(self, request: Request) -> Response:
        """Label an item (`category`); a repeated `client_key` returns the first answer, not a second one."""
        data = self._incoming(request)
        if "category" not in data:
            return Response({"detail": "category is required.", "code": "invalid"}, status=400)
        annotation = annotation_submit(
            annotator=signed_in(request),
            product_id=data["product"],
            category_id=data["category"],
            product_version=data.get("product_version"),
            client_key=data.get("client_key"),
        )
        return Response(AnnotationSerializer(annotation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AnnotationCreateSerializer, responses={201: AnnotationSerializer})
    @action(detail=False, methods=["post"])
    def skip(self, request: Request) -> Response:
        data = self._incoming(request)
        annotation = annotation_skip(
            annotator=signed_in(request), product_id=data["product"], client_key=data.get("client_key")
        )
        return Response(AnnotationSerializer(annotation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AnnotationCreateSerializer, responses={201: AnnotationSerializer})
    @action(detail=False, methods=["post"])
    def flag(self, request: Request) -> Response:
        data = self._incoming(request)
        annotation = annotation_flag(
            annotator=signed_in(request),
            product_id=data["product"],
            reason=data.get("reason", ""),
            client_key=data.get("client_key"),
        )
        return Response(AnnotationSerializer(annotation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: AnnotationSerializer})
    @action(detail=False, methods=["post"])
    def undo(self, request: Request) -> Response:
        """Take back your last answer; the item comes back to you."""
        return Response(AnnotationSerializer(annotation_undo(annotator=signed_in(request))).data)


class ReviewItemSerializer(serializers.ModelSerializer[ReviewItem]):
    product = ProductSerializer(read_only=True)

    class Meta:
        model = ReviewItem
        fields = ["id", "product", "reason", "note", "created_at", "resolved_at", "resolved_by", "resolved_category"]


class ReviewResolveSerializer(serializers.Serializer[Any]):
    category = serializers.IntegerField()
    product_version = serializers.IntegerField(required=False)


class ReviewItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[ReviewItem]):
    """Open review items, oldest first (disagreements and flags); reviewers resolve or dismiss them."""

    serializer_class = ReviewItemSerializer
    queryset = (
        ReviewItem.objects.filter(resolved_at__isnull=True)
        .select_related("product", "product__category")
        .order_by("created_at")
    )
    permission_classes = [RequiredPermission]
    read_perm = "labeling.view_reviewitem"
    write_perm = "labeling.change_reviewitem"
    filter_backends: list[Any] = []

    @extend_schema(request=ReviewResolveSerializer, responses={200: ReviewItemSerializer, 409: None})
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        incoming = ReviewResolveSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        item = review_resolve(
            item_id=self.get_object().pk,
            reviewer=signed_in(request),
            category_id=incoming.validated_data["category"],
            product_version=incoming.validated_data.get("product_version"),
        )
        return Response(ReviewItemSerializer(item).data)

    @extend_schema(request=None, responses={200: ReviewItemSerializer})
    @action(detail=True, methods=["post"])
    def dismiss(self, request: Request, pk: str | None = None) -> Response:
        item = review_resolve(item_id=self.get_object().pk, reviewer=signed_in(request), category_id=None)
        return Response(ReviewItemSerializer(item).data)


class LabelingQueueSerializer(serializers.ModelSerializer[LabelingQueue]):
    class Meta:
        model = LabelingQueue
        fields = ["id", "name", "category", "import_batch", "is_active", "created_by", "created_at"]
        read_only_fields = ["created_by", "created_at"]


class LabelingQueueViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[LabelingQueue],
):
    """Scoped queues: a category subtree and/or an import batch. Everyone labelling sees them; managers edit them.
    Use one with GET /api/v1/queue/next?queue=<id>."""

    serializer_class = LabelingQueueSerializer
    queryset = LabelingQueue.objects.select_related("category").order_by("name")
    permission_classes = [RequiredPermission]
    read_perm = "labeling.view_labelingqueue"
    write_perm = "labeling.change_labelingqueue"
    filter_backends: list[Any] = []

    def perform_create(self, serializer: Any) -> None:
        serializer.save(created_by=signed_in(self.request))
