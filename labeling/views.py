"""The annotator's workspace: one item at a time, every action on a key, the next item prepared ahead (on deck)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog.selectors import category_search, product_history
from core.errors import ApplicationError
from core.http import HtmxHttpRequest, signed_in
from labeling.models import LabelingQueue
from labeling.selectors import (
    agreement_report,
    annotator_stats,
    labels_overview,
    last_answer,
    review_item_detail,
    review_queue,
)
from labeling.services.annotations import annotation_flag, annotation_skip, annotation_submit, annotation_undo
from labeling.services.queue import leases_extend, queue_next
from labeling.services.reviews import review_resolve
from mlcore.selectors import product_suggestions


def _scope(request: HttpRequest) -> LabelingQueue | None:
    """The queue the annotator chose (?queue=id, remembered in the session); None for the whole catalog."""
    if "queue" in request.GET:
        request.session["labeling_queue"] = _int(request.GET.get("queue"))
    queue_id = request.session.get("labeling_queue")
    return (
        LabelingQueue.objects.filter(pk=queue_id, is_active=True).select_related("category").first()
        if queue_id
        else None
    )


def _workspace(request: HtmxHttpRequest, *, message: str = "", error: str = "", position: int = 0) -> HttpResponse:
    user = signed_in(request)
    scope = _scope(request)
    lease = queue_next(annotator=user, scope=scope, position=position)
    if position and lease is None:
        return HttpResponse(status=204)
    suggestions = (
        product_suggestions(product=lease.product, language=request.LANGUAGE_CODE, evidence=True) if lease else []
    )
    context = {
        "lease": lease,
        "product": lease.product if lease else None,
        "suggestions": suggestions[:5],
        "stats": annotator_stats(annotator=user),
        "last": last_answer(annotator=user),
        "message": message,
        "error": error,
        "scope": scope,
        "queues": LabelingQueue.objects.filter(is_active=True),
    }
    template = "labeling/workspace.html#item" if request.htmx else "labeling/workspace.html"
    return render(request, template, context)


@login_required
@permission_required("labeling.add_annotation", raise_exception=True)
@require_GET
def workspace(request: HtmxHttpRequest) -> HttpResponse:
    return _workspace(request)


@login_required
@permission_required("labeling.add_annotation", raise_exception=True)
@require_GET
def deck(request: HtmxHttpRequest) -> HttpResponse:
    """The item after the current one, rendered and leased, for labeling.js to show the moment an answer is given
    (204 when there is none)."""
    return _workspace(request, position=1)


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
        response = _workspace(request, error=exc.message)
        response["X-Answer"] = "refused"
        return response
    if request.POST.get("deck"):
        # The page already shows the item that was on deck: answer with the one after it, to put on deck.
        leases_extend(annotator=user)
        response = _workspace(request, message=action, position=1)
    else:
        response = _workspace(request, message=action)
    response["X-Answer"] = "saved"
    return response


@login_required
@require_GET
def picker(request: HttpRequest) -> HttpResponse:
    """Type-ahead over the whole taxonomy; the item's suggested categories come first."""
    query = request.GET.get("q", "")
    suggested = [int(x) for x in request.GET.getlist("suggested") if x.isdigit()]
    results = list(category_search(query=query, language=request.LANGUAGE_CODE, limit=30)) if query.strip() else []
    results.sort(key=lambda c: (c.pk not in suggested, suggested.index(c.pk) if c.pk in suggested else 0))
    return render(request, "labeling/partials/picker.html", {"results": results[:12], "suggested": suggested})


@login_required
@permission_required("labeling.change_reviewitem", raise_exception=True)
@require_http_methods(["GET", "POST"])
def review(request: HtmxHttpRequest) -> HttpResponse:
    """The oldest open review item, adjudicated with the same keys as labeling (Enter confirms, x dismisses)."""
    error = ""
    if request.method == "POST":
        try:
            action = request.POST.get("action", "resolve")
            item_id = _int(request.POST.get("item"))
            if item_id is None:
                raise ApplicationError("No review item in the form: reload the page.")
            category = None if action == "dismiss" else _int(request.POST.get("category"))
            if action != "dismiss" and category is None:
                raise ApplicationError("Choose a category first (1-5 or /).")
            review_resolve(
                item_id=item_id,
                reviewer=signed_in(request),
                category_id=category,
                product_version=_int(request.POST.get("version")),
            )
        except ApplicationError as exc:
            error = exc.message
    queue = review_queue()
    item = queue.order_by("created_at").first()
    context: dict[str, object] = {"item": item, "remaining": queue.count(), "error": error}
    if item is not None:
        detail = review_item_detail(item=item)
        suggestions = product_suggestions(product=item.product, language=request.LANGUAGE_CODE)[:5]
        # The annotators' answers first, then the model's other candidates; the first five get keys 1-5.
        choices = [
            {
                "category_id": c.pk,
                "path": c.display_path(request.LANGUAGE_CODE),
                "source": source,
                "confidence": None,
            }
            for c, source in detail["offered"]
        ]
        seen = {c["category_id"] for c in choices}
        choices += [{**s, "source": s["source"]} for s in suggestions if s["category_id"] not in seen]
        for number, choice in enumerate(choices, start=1):
            choice["key"] = number if number <= 5 else None
        context.update(detail, choices=choices, history=product_history(product=item.product)[:10])
    template = "labeling/review.html#review-item" if request.htmx else "labeling/review.html"
    return render(request, template, context)


@login_required
@permission_required("labeling.change_reviewitem", raise_exception=True)
@require_GET
def agreement(request: HttpRequest) -> HttpResponse:
    return render(request, "labeling/agreement.html", agreement_report())


@login_required
@permission_required("mlcore.view_modelversion", raise_exception=True)
@require_GET
def panel_labels(request: HttpRequest) -> HttpResponse:
    """The dashboard's labels panel (composed by hx-get on /dashboard/)."""
    return render(request, "labeling/partials/panel_labels.html", labels_overview())
