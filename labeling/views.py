"""The annotator's workspace: one item at a time, every action on a key, the next item in the same response."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from catalog.selectors import category_search
from config.errors import ApplicationError
from config.http import HtmxHttpRequest, signed_in
from labeling.selectors import annotator_stats, last_answer
from labeling.services.annotations import annotation_flag, annotation_skip, annotation_submit, annotation_undo
from labeling.services.queue import queue_next
from mlcore.selectors import product_suggestions


def _workspace(request: HtmxHttpRequest, *, message: str = "", error: str = "") -> HttpResponse:
    user = signed_in(request)
    lease = queue_next(annotator=user)
    suggestions = product_suggestions(product=lease.product, language=request.LANGUAGE_CODE) if lease else []
    context = {
        "lease": lease,
        "product": lease.product if lease else None,
        "suggestions": suggestions[:5],
        "stats": annotator_stats(annotator=user),
        "last": last_answer(annotator=user),
        "message": message,
        "error": error,
    }
    template = "labeling/workspace.html#item" if request.htmx else "labeling/workspace.html"
    return render(request, template, context)


@login_required
@permission_required("labeling.add_annotation", raise_exception=True)
@require_GET
def workspace(request: HtmxHttpRequest) -> HttpResponse:
    return _workspace(request)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None  # type: ignore[arg-type]
    except ValueError:
        return None


@login_required
@permission_required("labeling.add_annotation", raise_exception=True)
@require_POST
def answer(request: HtmxHttpRequest) -> HttpResponse:
    """One endpoint for the item's answers: action = label | skip | flag | undo."""
    user = signed_in(request)
    action = request.POST.get("action", "label")
    product_id = _int(request.POST.get("product"))
    key = request.POST.get("client_key") or None
    try:
        if action == "undo":
            annotation_undo(annotator=user)
            return _workspace(request, message="undone")
        if product_id is None:
            raise ApplicationError("No item in the form: reload the page.")
        if action == "skip":
            annotation_skip(annotator=user, product_id=product_id, client_key=key)
        elif action == "flag":
            annotation_flag(
                annotator=user, product_id=product_id, reason=request.POST.get("reason", ""), client_key=key
            )
        else:
            category_id = _int(request.POST.get("category"))
            if category_id is None:
                raise ApplicationError("Choose a category first (1-5 or /).")
            annotation_submit(
                annotator=user,
                product_id=product_id,
                category_id=category_id,
                product_version=_int(request.POST.get("version")),
                client_key=key,
            )
    except ApplicationError as exc:
        return _workspace(request, error=exc.message)
    return _workspace(request, message=action)


@login_required
@require_GET
def picker(request: HttpRequest) -> HttpResponse:
    """Type-ahead over the whole taxonomy; the item's suggested categories come first."""
    query = request.GET.get("q", "")
    suggested = [int(x) for x in request.GET.getlist("suggested") if x.isdigit()]
    results = list(category_search(query=query, language=request.LANGUAGE_CODE, limit=30)) if query.strip() else []
    results.sort(key=lambda c: (c.pk not in suggested, suggested.index(c.pk) if c.pk in suggested else 0))
    return render(request, "labeling/partials/picker.html", {"results": results[:12], "suggested": suggested})
