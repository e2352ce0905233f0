"""Catalog pages: thin views that parse input, call one selector or service, and render a page or an htmx partial."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog import selectors
from catalog.forms import CategorySetForm, ImportForm, ProductFilterForm
from catalog.models import CategorySource
from catalog.services.exports import products_export_csv, products_export_jsonl
from catalog.services.jobs import import_job_cancel, import_job_create
from catalog.services.labels import product_category_set
from core.errors import ApplicationError, NotFoundError
from core.http import HtmxHttpRequest, signed_in


def _filters(form: ProductFilterForm) -> selectors.ProductFilters:
    data = form.cleaned_data if form.is_valid() else {}
    verified = {"yes": True, "no": False}.get(data.get("verified") or "")
    return selectors.ProductFilters(
        q=data.get("q") or "",
        category_id=data.get("category"),
        source=data.get("source") or "",
        verified=verified,
        uncategorised=bool(data.get("uncategorised")),
    )


@login_required
@require_GET
def product_list(request: HtmxHttpRequest) -> HttpResponse:
    form = ProductFilterForm(request.GET)
    filters = _filters(form)
    before = form.cleaned_data.get("before") if form.is_valid() else None
    category = None
    try:
        if filters.category_id is not None:
            category = selectors.category_get(category_id=filters.category_id)
        products, next_cursor = selectors.product_page(filters=filters, before_id=before)
    except NotFoundError as exc:
        messages.error(request, exc.message)
        products, next_cursor = [], None
    query = request.GET.copy()
    query.pop("before", None)
    context = {
        "form": form,
        "products": products,
        "next_cursor": next_cursor,
        "query": query.urlencode(),
        "category": category,
        "is_first_page": before is None,
    }
    template = "catalog/product_list.html#results" if request.htmx else "catalog/product_list.html"
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
def product_detail(request: HttpRequest, product_id: int) -> HttpResponse:
    try:
        product = selectors.product_get(product_id=product_id)
    except NotFoundError as exc:
        return render(request, "error.html", {"message": exc.message}, status=404)
    form = CategorySetForm(initial={"version": product.version, "category": product.category_id})
    if request.method == "POST":
        if not request.user.has_perm("catalog.change_product"):
            return render(request, "error.html", {"message": _("You may not change products.")}, status=403)
        form = CategorySetForm(request.POST)
        if form.is_valid():
            try:
                product_category_set(
                    product_id=product.pk,
                    category_id=form.cleaned_data["category"],
                    expected_version=form.cleaned_data["version"],
                    source=CategorySource.MANUAL,
                    actor=signed_in(request),
                    verified=form.cleaned_data["verified"],
                )
            except ApplicationError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, _("Category saved."))
            return redirect("catalog:product-detail", product_id=product.pk)
    return render(
        request,
        "catalog/product_detail.html",
        {"product": product, "history": selectors.product_history(product=product), "form": form},
    )


@login_required
@require_GET
def category_browser(request: HttpRequest) -> HttpResponse:
    return render(request, "catalog/category_browser.html", {"children": selectors.category_children(parent_id=None)})


@login_required
@require_GET
def category_children(request: HttpRequest, category_id: int) -> HttpResponse:
    return render(
        request,
        "catalog/category_browser.html#children",
        {"children": selectors.category_children(parent_id=category_id)},
    )


@login_required
@require_GET
def category_search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q") or request.GET.get("category_q", "")
    results = selectors.category_search(query=query, language=request.LANGUAGE_CODE) if query.strip() else []
    template = request.GET.get("template") == "picker" and "catalog/partials/category_options.html"
    return render(
        request, template or "catalog/category_browser.html#search-results", {"results": results, "query": query}
    )


@login_required
@permission_required("catalog.import_products", raise_exception=True)
@require_http_methods(["GET", "POST"])
def import_list(request: HttpRequest) -> HttpResponse:
    form = ImportForm()
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            if data["kind"] == "taxonomy" and not request.user.has_perm("catalog.edit_taxonomy"):
                return render(request, "error.html", {"message": _("You may not edit the taxonomy.")}, status=403)
            try:
                job = import_job_create(
                    kind=data["kind"],
                    upload=data["file"],
                    user=signed_in(request),
                    options={k: data[k] for k in ("dry_run", "keep_valid", "create_categories", "language")},
                )
            except ApplicationError as exc:
                form.add_error("file", exc.message)
            else:
                return redirect("catalog:import-detail", job_id=job.pk)
    return render(request, "catalog/import_list.html", {"form": form, "jobs": selectors.import_job_list()})


@login_required
@permission_required("catalog.import_products", raise_exception=True)
@require_POST
def import_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    try:
        import_job_cancel(job_id=job_id)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("catalog:import-detail", job_id=job_id)


@login_required
@permission_required("catalog.import_products", raise_exception=True)
@require_GET
def import_detail(request: HtmxHttpRequest, job_id: int) -> HttpResponse:
    try:
        job = selectors.import_job_get(job_id=job_id)
    except NotFoundError as exc:
        return render(request, "error.html", {"message": exc.message}, status=404)
    template = "catalog/import_detail.html#progress" if request.htmx else "catalog/import_detail.html"
    return render(request, template, {"job": job, "row_errors": job.row_errors.all()[:200]})


@login_required
@permission_required("catalog.export_products", raise_exception=True)
@require_GET
def product_export(request: HttpRequest) -> HttpResponseBase:
    form = ProductFilterForm(request.GET)
    products = selectors.product_list(filters=_filters(form))
    file_format = "jsonl" if request.GET.get("format") == "jsonl" else "csv"
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    if file_format == "jsonl":
        response = StreamingHttpResponse(products_export_jsonl(products=products), content_type="application/x-ndjson")
    else:
        response = StreamingHttpResponse(products_export_csv(products=products), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="products-{stamp}.{file_format}"'
    return response
