"""The catalog manager's reclassification pages: a batch's groups, a group's products, decisions, apply and undo.
Views parse and render; the rules live in labeling/services/reclassification.py."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from catalog.models import Category, CategorySource
from core.errors import ApplicationError, NotFoundError
from core.http import HtmxHttpRequest, signed_in
from labeling import selectors
from labeling.exports import reclassification_csv
from labeling.models import AuditAudience, ProposalKind, ProposalState, ReclassificationJob
from labeling.services.proposal_audits import audit_answer, audit_start
from labeling.services.reclassification import (
    proposal_group_clean,
    proposals_decide,
    reclassification_apply_start,
    reclassification_rebuild_start,
    reclassification_undo_start,
)

PAGE = 50
GROUPS_PAGE = 25


def _group_from(data: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"kind": data.get("kind", "")}
    for key in ("from", "to"):
        if key in data:
            raw[key] = data.get(key)
    return proposal_group_clean(raw)


def _number(raw: str | None) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _filters(request: HttpRequest) -> selectors.ProposalFilters:
    kind = request.GET.get("kind", "")
    source = request.GET.get("source", "")
    subtree = request.GET.get("subtree", "")
    return selectors.ProposalFilters(
        kind=kind if kind in ProposalKind.values else "",
        min_confidence=_number(request.GET.get("min_confidence")),
        max_confidence=_number(request.GET.get("max_confidence")),
        source=source if source in CategorySource.values else "",
        subtree=Category.objects.filter(pk=int(subtree)).first() if subtree.isdigit() else None,
    )


@login_required
@permission_required("labeling.view_reclassificationbatch", raise_exception=True)
@require_GET
def batch_list(request: HttpRequest) -> HttpResponse:
    batches = selectors.batches_counted(selectors.reclassification_batches()[:50])
    return render(request, "labeling/reclassify_list.html", {"batches": batches})


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
    filters = _filters(request)
    raw_offset = request.GET.get("offset", "0")
    offset = int(raw_offset) if raw_offset.isdigit() else 0
    groups = selectors.reclassification_groups(
        batch=batch, filters=filters, order=order, offset=offset, limit=GROUPS_PAGE + 1
    )
    more = request.GET.copy()
    more["offset"] = str(offset + GROUPS_PAGE)
    return render(
        request,
        "labeling/reclassify_batch.html",
        {
            "batch": batch,
            "groups": groups[:GROUPS_PAGE],
            "more_groups": more.urlencode() if len(groups) > GROUPS_PAGE else None,
            "first_groups": offset > 0,
            "jobs": jobs,
            "order": order,
            "kinds": ProposalKind.choices,
            "sources": CategorySource.choices,
            "filters": filters,
            "query": request.GET,
            "promise": selectors.batch_promise(batch),
            "explorer": selectors.batch_explorer(batch),
            "audits": selectors.batch_audits(batch=batch),
            "audit_size": settings.RECLASSIFY_AUDIT_SIZE,
            "two_person": settings.RECLASSIFY_TWO_PERSON,
        },
    )


def _after(raw: str) -> tuple[float, int] | None:
    """The keyset cursor "confidence:id" of the last row of the previous page."""
    confidence, _, pk = raw.partition(":")
    try:
        return (float(confidence), int(pk)) if pk else None
    except ValueError:
        return None


@login_required
@permission_required("labeling.view_reclassificationbatch", raise_exception=True)
@require_GET
def group_detail(request: HttpRequest, batch_id: int) -> HttpResponse:
    try:
        batch = selectors.reclassification_batch_get(batch_id=batch_id)
        group = _group_from(request.GET)
    except ApplicationError as exc:
        return render(request, "error.html", {"message": exc.message}, status=exc.status_code)
    rows = selectors.reclassification_proposals(
        batch=batch, filters=selectors.ProposalFilters(), group=group, after=_after(request.GET.get("after", ""))
    )
    page = list(rows[: PAGE + 1])
    query = {k: ("none" if v is None else v) for k, v in group.items()}
    last = page[PAGE - 1] if len(page) > PAGE else None
    return render(
        request,
        "labeling/reclassify_group.html",
        {
            "batch": batch,
            "group": group,
            "group_query": urlencode(query),
            "group_fields": query,
            "proposals": page[:PAGE],
            "next_after": f"{last.confidence!r}:{last.pk}" if last else None,
            "paged": bool(request.GET.get("after")),
            "open_states": [ProposalState.PROPOSED, ProposalState.APPROVED, ProposalState.REJECTED, ProposalState.SENT],
            "two_person": settings.RECLASSIFY_TWO_PERSON,
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
        done = {"approve": "approved", "reject": "rejected", "reopen": "reopened", "send": "sent to annotators"}
        decision = request.POST.get("decision", "")
        messages.success(request, f"{changed} proposal(s) {done.get(decision, decision + 'ed')}.")
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


@login_required
@permission_required("labeling.change_reclassificationbatch", raise_exception=True)
@require_POST
def rebuild(request: HttpRequest, batch_id: int) -> HttpResponse:
    threshold = _number(request.POST.get("threshold"))
    try:
        if threshold is None:
            raise ApplicationError("Give the threshold as a number, e.g. 0.8.")
        job = reclassification_rebuild_start(batch_id=batch_id, threshold=threshold, user=signed_in(request))
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("reclassify:batch", batch_id=batch_id)
    messages.success(
        request, f"Rebuilding at {threshold:.3f} (job #{job.pk}): the new batch appears here when it is built."
    )
    return redirect("reclassify:list")


@login_required
@permission_required("labeling.view_reclassificationbatch", raise_exception=True)
@require_GET
def export(request: HttpRequest, batch_id: int) -> HttpResponse | StreamingHttpResponse:
    """A batch's proposals and decisions as CSV, streamed, formula-safe (a title starting with = is not run)."""
    try:
        batch = selectors.reclassification_batch_get(batch_id=batch_id)
    except NotFoundError as exc:
        return render(request, "error.html", {"message": exc.message}, status=404)
    response = StreamingHttpResponse(reclassification_csv(batch=batch), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="reclassification-batch-{batch.pk}.csv"'
    return response


@login_required
@permission_required("labeling.change_reclassificationbatch", raise_exception=True)
@require_POST
def audit_create(request: HttpRequest, batch_id: int) -> HttpResponse:
    audience = request.POST.get("audience", AuditAudience.MANAGER)
    try:
        size = int(request.POST.get("size") or settings.RECLASSIFY_AUDIT_SIZE)
        audit = audit_start(
            batch_id=batch_id,
            group=_group_from(request.POST),
            user=signed_in(request),
            audience=audience,
            size=size,
        )
    except ValueError:
        messages.error(request, "The audit's size is a whole number.")
        return redirect("reclassify:batch", batch_id=batch_id)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("reclassify:batch", batch_id=batch_id)
    if audit.audience == AuditAudience.ANNOTATORS:
        messages.success(request, f"Audit #{audit.pk}: its products wait in the annotators' queue of that name.")
        return redirect("reclassify:batch", batch_id=batch_id)
    return redirect("reclassify:audit", audit_id=audit.pk)


@login_required
@permission_required("labeling.change_reclassificationbatch", raise_exception=True)
@require_GET
def audit_page(request: HttpRequest, audit_id: int) -> HttpResponse:
    """A blind audit: the next product alone (never the proposal), answered with the category picker; the result
    with its interval once the products are answered."""
    try:
        audit = selectors.audit_get(audit_id=audit_id)
    except NotFoundError as exc:
        return render(request, "error.html", {"message": exc.message}, status=404)
    verdicts = selectors.audit_verdicts(batch=audit.batch, audit=audit)
    item = selectors.audit_next_item(audit=audit) if audit.audience == AuditAudience.MANAGER else None
    return render(
        request,
        "labeling/reclassify_audit.html",
        {
            "audit": audit,
            "item": item,
            "verdicts": next(iter(verdicts.values()), None),
            "promise": selectors.batch_promise(audit.batch),
            "answered": audit.items.filter(answered_at__isnull=False).count(),
            "total": audit.items.count(),
        },
    )


@login_required
@permission_required("labeling.change_reclassificationbatch", raise_exception=True)
@require_POST
def audit_answer_view(request: HttpRequest, audit_id: int) -> HttpResponse:
    raw = request.POST.get("category", "")
    cannot_tell = request.POST.get("answer") == "unsure"
    try:
        if not cannot_tell and not raw.isdigit():
            raise ApplicationError("Pick a category (type to search), or say you cannot tell.")
        audit_answer(
            item_id=int(request.POST.get("item", "0") or 0),
            user=signed_in(request),
            category_id=None if cannot_tell else int(raw),
        )
    except (ApplicationError, ValueError) as exc:
        messages.error(request, getattr(exc, "message", "That answer could not be read."))
    return redirect("reclassify:audit", audit_id=audit_id)
