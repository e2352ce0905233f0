"""The catalog manager's reclassification pages: a batch's groups, a group's products, decisions, apply and undo.
Views parse and render; the rules live in labeling/services/reclassification.py."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from core.errors import ApplicationError, NotFoundError
from core.http import HtmxHttpRequest, signed_in
from labeling import selectors
from labeling.models import ProposalKind, ProposalState, ReclassificationJob
from labeling.services.reclassification import (
    proposal_group_clean,
    proposals_decide,
    reclassification_apply_start,
    reclassification_undo_start,
)

PAGE = 50


def _group_from(data: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"kind": data.get("kind", "")}
    for key in ("from", "to"):
        if key in data:
            raw[key] = data.get(key)
    return proposal_group_clean(raw)


def _filters(request: HttpRequest) -> selectors.ProposalFilters:
    kind = request.GET.get("kind", "")
    try:
        low = float(request.GET["min_confidence"]) if request.GET.get("min_confidence") else None
    except ValueError:
        low = None
    return selectors.ProposalFilters(kind=kind if kind in ProposalKind.values else "", min_confidence=low)


@login_required
@permission_required("labeling.view_reclassificationbatch", raise_exception=True)
@require_GET
def batch_list(request: HttpRequest) -> HttpResponse:
    return render(request, "labeling/reclassify_list.html", {"batches": selectors.reclassification_batches()[:50]})


@login_required
@permission_required("labeling.view_reclassificationbatch", raise_exception=True)
@require_GET
def batch_detail(request: HtmxHttpRequest, batch_id: int) -> HttpResponse:
    try:
        batch = selectors.reclassification_batch_get(batch_id=batch_id)
    except NotFoundError as exc:
        return render(request, "error.html", {"message": exc.message}, status=404)
    jobs = ReclassificationJob.objects.filter(batch=batch).exclude(action="build").order_by("-created_at")[:5]
    if request.htmx and request.GET.get("part") == "jobs":
        return render(request, "labeling/reclassify_batch.html#jobs", {"batch": batch, "jobs": jobs})
    order = request.GET.get("order", "size")
    groups = selectors.reclassification_groups(batch=batch, filters=_filters(request), order=order)
    return render(
        request,
        "labeling/reclassify_batch.html",
        {
            "batch": batch,
            "groups": groups,
            "jobs": jobs,
            "order": order,
            "kinds": ProposalKind.choices,
            "kind": request.GET.get("kind", ""),
            "min_confidence": request.GET.get("min_confidence", ""),
        },
    )


@login_required
@permission_required("labeling.view_reclassificationbatch", raise_exception=True)
@require_GET
def group_detail(request: HttpRequest, batch_id: int) -> HttpResponse:
    try:
        batch = selectors.reclassification_batch_get(batch_id=batch_id)
        group = _group_from(request.GET)
    except ApplicationError as exc:
        return render(request, "error.html", {"message": exc.message}, status=exc.status_code)
    rows = selectors.reclassification_proposals(batch=batch, filters=selectors.ProposalFilters(), group=group)
    raw_offset = request.GET.get("offset", "0")
    offset = int(raw_offset) if raw_offset.isdigit() else 0
    page = list(rows[offset : offset + PAGE + 1])
    query = {k: ("none" if v is None else v) for k, v in group.items()}
    return render(
        request,
        "labeling/reclassify_group.html",
        {
            "batch": batch,
            "group": group,
            "group_query": urlencode(query),
            "proposals": page[:PAGE],
            "next_offset": offset + PAGE if len(page) > PAGE else None,
            "offset": offset,
            "open_states": [ProposalState.PROPOSED, ProposalState.APPROVED, ProposalState.REJECTED],
        },
    )


@login_required
@permission_required("labeling.change_reclassificationbatch", raise_exception=True)
@require_POST
def decide(request: HttpRequest, batch_id: int) -> HttpResponse:
    back = request.POST.get("next") or reverse("reclassify:batch", args=[batch_id])
    if not back.startswith("/reclassify/"):
        back = reverse("reclassify:batch", args=[batch_id])
    try:
        ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()]
        changed = proposals_decide(
            batch_id=batch_id,
            decision=request.POST.get("decision", ""),
            user=signed_in(request),
            ids=ids or None,
            group=None if ids else _group_from(request.POST),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{changed} proposal(s): {request.POST.get('decision')}.")
    return redirect(back)


@login_required
@permission_required("labeling.apply_reclassificationbatch", raise_exception=True)
@require_POST
def run_job(request: HttpRequest, batch_id: int, action: str) -> HttpResponse:
    start = {"apply": reclassification_apply_start, "undo": reclassification_undo_start}.get(action)
    if start is None:
        return render(request, "error.html", {"message": f"Unknown action '{action}'."}, status=404)
    try:
        group = _group_from(request.POST) if request.POST.get("scope") == "group" else None
        job = start(batch_id=batch_id, user=signed_in(request), group=group)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Reclassification job #{job.pk} ({action}) queued.")
    return redirect("reclassify:batch", batch_id=batch_id)


@login_required
@require_GET
def product_proposal(request: HttpRequest, product_id: int) -> HttpResponse:
    """The product page's box (composed by hx-get): its open proposal, for those who may see proposals."""
    if not request.user.has_perm("labeling.view_reclassificationbatch"):
        return HttpResponse("")
    proposal = selectors.product_open_proposal(product_id=product_id)
    return render(request, "labeling/partials/product_proposal.html", {"proposal": proposal})


@login_required
@require_GET
def waiting(request: HttpRequest) -> HttpResponse:
    """The Models page's line (composed by hx-get): how many proposals wait for a decision or to be applied."""
    if not request.user.has_perm("labeling.view_reclassificationbatch"):
        return HttpResponse("")
    return render(request, "labeling/partials/waiting.html", {"waiting": selectors.reclassification_waiting()})
