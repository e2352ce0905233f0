from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import selectors
from catalog.api.serializers import (
    CategoryMergeSerializer,
    CategorySerializer,
    CategoryUpdateSerializer,
    ImportJobCreateSerializer,
    ImportJobSerializer,
    ImportRowErrorSerializer,
    ProductCreateSerializer,
    ProductSerializer,
    ProductUpdateSerializer,
)
from catalog.models import Category, CategorySource, ImportJob, Product
from catalog.services.jobs import import_job_cancel, import_job_create
from catalog.services.labels import product_category_set
from catalog.services.products import product_create, product_update
from catalog.services.taxonomy import category_merge, category_update
from core.api import RequiredPermission
from core.errors import ApplicationError
from core.http import signed_in


class ProductCursorPagination(CursorPagination):
    # Keyset pagination: page 20,000 of a 1M-product catalog costs what page 1 does.
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def _bool(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise ApplicationError(f"Expected true or false, got '{value}'.")


def _int(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)  # type: ignore[arg-type]
    except ValueError:
        raise ApplicationError(f"'{name}' must be an integer id, got '{value}'.") from None


@extend_schema(
    parameters=[
        OpenApiParameter("q", str, description="SKU, or words in the title, or the exact brand"),
        OpenApiParameter("category", int, description="A category id: its whole subtree"),
        OpenApiParameter("source", str, enum=CategorySource.values),
        OpenApiParameter("verified", bool),
        OpenApiParameter("uncategorised", bool),
    ]
)
class ProductViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[Product],
):
    serializer_class = ProductSerializer
    permission_classes = [RequiredPermission]
    pagination_class = ProductCursorPagination
    read_perm = "catalog.view_product"
    write_perm = "catalog.change_product"
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        params = self.request.query_params
        if self.action != "list":
            return Product.objects.select_related("category")
        filters = selectors.ProductFilters(
            q=params.get("q", ""),
            category_id=_int(params.get("category"), "category"),
            source=params.get("source", ""),
            verified=_bool(params.get("verified")),
            uncategorised=bool(_bool(params.get("uncategorised"))),
        )
        return selectors.product_list(filters=filters)

    @extend_schema(request=ProductCreateSerializer, responses={201: ProductSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = ProductCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        product = product_create(actor=signed_in(request), **incoming.validated_data)
        return Response(ProductSerializer(product).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ProductUpdateSerializer, responses={200: ProductSerializer, 409: None})
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        product = self.get_object()
        incoming = ProductUpdateSerializer(data=request.data, partial=True)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        if "version" not in data:
            raise ApplicationError("Send the version you read (optimistic concurrency).")
        version = data.pop("version")
        verified = data.pop("verified", True)
        has_category = "category_id" in data
        category_id = data.pop("category_id", None)
        if data:
            product = product_update(product_id=product.pk, expected_version=version, changes=data)
            version = product.version
        if has_category:
            product = product_category_set(
                product_id=product.pk,
                category_id=category_id,
                expected_version=version,
                source=CategorySource.MANUAL,
                actor=signed_in(request),
                verified=verified,
            )
        product.refresh_from_db()
        return Response(ProductSerializer(product).data)


@extend_schema(
    parameters=[
        OpenApiParameter("parent", str, description="A category id for its children, or 'root' for the top level"),
        OpenApiParameter("q", str, description="Words in the name or path (English or Chinese)"),
    ]
)
class CategoryViewSet(mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet[Category]):
    serializer_class = CategorySerializer
    permission_classes = [RequiredPermission]
    read_perm = "catalog.view_category"
    write_perm = "catalog.edit_taxonomy"
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        params = self.request.query_params
        if self.action != "list":
            return Category.objects.all()
        if params.get("q"):
            return selectors.category_search(query=params["q"], language=getattr(self.request, "LANGUAGE_CODE", None))
        parent = params.get("parent")
        if parent is not None:
            return selectors.category_children(parent_id=None if parent == "root" else _int(parent, "parent"))
        return Category.objects.order_by("full_path_en")

    @extend_schema(request=CategoryUpdateSerializer, responses=CategorySerializer)
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Rename, move (`parent`: an id, or null for a root) or archive (`is_active`: false) a category."""
        category = self.get_object()
        incoming = CategoryUpdateSerializer(data=request.data, partial=True)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        category = category_update(
            category_id=category.pk,
            name_en=data.get("name_en"),
            name_zh_hans=data.get("name_zh_hans"),
            parent_id=data.get("parent", "unchanged"),
            is_active=data.get("is_active"),
            actor=request.user,
        )
        return Response(CategorySerializer(category, context={"request": request}).data)

    @extend_schema(request=CategoryMergeSerializer, responses=CategorySerializer)
    @action(detail=True, methods=["post"])
    def merge(self, request: Request, pk: str | None = None) -> Response:
        """Merge this category (and its subtree) `into` another: archived and recorded; the products filed under
        it get reclassification proposals to the target, which a catalog manager reviews and applies."""
        incoming = CategoryMergeSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        category_merge(category_id=self.get_object().pk, into_id=incoming.validated_data["into"], actor=request.user)
        category = Category.objects.get(pk=incoming.validated_data["into"])
        return Response(CategorySerializer(category, context={"request": request}).data)

    @extend_schema(responses=CategorySerializer(many=True))
    @action(detail=True, methods=["get"])
    def path(self, request: Request, pk: str | None = None) -> Response:
        """The category's ancestors from the root down, itself last."""
        category = self.get_object()
        chain = [*selectors.category_ancestors(category=category), category]
        return Response(CategorySerializer(chain, many=True, context={"request": request}).data)


class ImportJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[ImportJob]):
    serializer_class = ImportJobSerializer
    permission_classes = [RequiredPermission]
    parser_classes = [MultiPartParser, FormParser]
    read_perm = "catalog.import_products"
    write_perm = "catalog.import_products"
    queryset = ImportJob.objects.select_related("created_by").order_by("-created_at")
    filter_backends: list[Any] = []

    @extend_schema(request={"multipart/form-data": ImportJobCreateSerializer}, responses={202: ImportJobSerializer})
    def create(self, request: Request) -> Response:
        """Upload a file: the import runs in the background; poll the job for progress and its row errors."""
        incoming = ImportJobCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = dict(incoming.validated_data)
        if data["kind"] == "taxonomy" and not request.user.has_perm("catalog.edit_taxonomy"):
            return Response({"detail": "You may not edit the taxonomy."}, status=status.HTTP_403_FORBIDDEN)
        upload = data.pop("file")
        kind = data.pop("kind")
        file_format = data.pop("file_format")
        job = import_job_create(
            kind=kind, upload=upload, user=signed_in(request), file_format=file_format, options=data
        )
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=ImportJobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Queued: ends at once. Validating: stops, nothing written. Writing: stops after the chunk being written and
        says how many rows were imported (importing the same file again completes it)."""
        return Response(ImportJobSerializer(import_job_cancel(job_id=self.get_object().pk)).data)

    @extend_schema(responses=ImportRowErrorSerializer(many=True))
    @action(detail=True, methods=["get"])
    def errors(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        page = self.paginate_queryset(job.row_errors.all())  # type: ignore[arg-type]
        return self.get_paginated_response(ImportRowErrorSerializer(page, many=True).data)
