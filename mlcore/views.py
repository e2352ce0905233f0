"""The models dashboard: versions and their metrics, training runs with live curves, re-scoring progress."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from catalog.models import Category
from catalog.selectors import product_get
from core.errors import ApplicationError, NotFoundError
from core.http import HtmxHttpRequest, signed_in
from mlcore.forms import RetrainingPolicyForm, TrainingStartForm
from mlcore.models import LabelAudit, ModelVersion, RescoreJob, TrainingRun
from mlcore.selectors import (
    VERSION_HEAVY,
    dashboard_jobs,
    product_confident_category,
    product_suggestions,
    queue_lengths,
    queues_without_worker,
    serving_and_active_headlined,
    version_report,
    versions_listed,
    workers_status,
)
from mlcore.services.label_audit import label_audit_cancel, label_audit_start
from mlcore.services.policy import (
    fast_version_request,
    new_labels_since_last_run,
    retraining_policy_get,
    retraining_policy_update,
)
from mlcore.services.registry import model_version_activate
from mlcore.services.rescoring import rescore_job_cancel
from mlcore.services.training import training_run_cancel, training_run_start

MAX_CHART_POINTS = 200


def _points(points: list[dict[str, float]], key: str) -> list[tuple[float, float]]:
    """A training curve's (step, value) pairs."""
    return [(float(p.get("step", 0.0)), float(p[key])) for p in points if p.get(key) is not None]


def _curve(points: list[dict[str, float]], key: str) -> str:
    """The Models page's sparkline of a training curve: _chart's polyline, without axes."""
    chart = _chart(_points(points, key), width=320, height=80)
    return chart["points"] if chart else ""


def _chart(
    points: list[tuple[float, float]],
    *,
    width: int = 360,
    height: int = 120,
    y_range: tuple[float, float] | None = None,
    x_range: tuple[float, float] | None = None,
) -> dict[str, Any] | None:
    """An SVG line chart's polyline and its axes' ends (server-side: no chart library, no CDN)."""
    if len(points) < 2:
        return None
    if len(points) > MAX_CHART_POINTS:
        # A 2,000-step loss curve drawn 360 px wide: every n-th point (and the last) looks the same and weighs a tenth.
        step = -(-len(points) // MAX_CHART_POINTS)
        points = [*points[::step][: MAX_CHART_POINTS - 1], points[-1]]
    xs, ys = [x for x, _ in points], [y for _, y in points]
    x0, x1 = x_range or (min(xs), max(xs))
    y0, y1 = y_range or (min(ys), max(ys))
    span_x, span_y = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    line = " ".join(f"{(x - x0) / span_x * width:.1f},{height - (y - y0) / span_y * height:.1f}" for x, y in points)
    return {"points": line, "x0": x0, "x1": x1, "y0": y0, "y1": y1, "width": width, "height": height}


@login_required
@permission_required("mlcore.view_modelversion", raise_exception=True)
@require_GET
def version_detail(request: HttpRequest, version_id: int) -> HttpResponse:
    """A version in depth, from what was stored when it was evaluated: no model is loaded for this page."""
    version = (
        ModelVersion.objects.select_related("warm_started_from", "created_by", "activated_by")
        .defer("data_snapshot", "warm_started_from__metrics", "warm_started_from__data_snapshot")
        .filter(pk=version_id)
        .first()
    )
    if version is None:
        return render(request, "error.html", {"message": f"No model version with id {version_id}."}, status=404)
    raw = request.GET.get("subtree", "")
    subtree = Category.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
    sort = request.GET.get("sort", "f1")
    page = request.GET.get("page", "1")
    test = version.metrics.get("test", {})
    run = TrainingRun.objects.filter(model_version=version).first()
    curve = test.get("precision_coverage") or []
    return render(
        request,
        "mlcore/version_detail.html",
        {
            "version": version,
            "test": test,
            "run": run,
            "sort": sort,
            "subtree": subtree,
            "loss": _chart(_points(run.losses if run else [], "loss")),
            "f1": _chart(_points(run.evaluations if run else [], "macro_f1"), y_range=(0.0, 1.0)),
            "coverage": _chart(
                sorted((p["coverage"], p["hits"] / p["n"]) for p in curve if p.get("n")),
                x_range=(0.0, 1.0),
                y_range=(0.0, 1.0),
            ),
            "reliability": [
                {
                    **b,
                    "accuracy": b["hits"] / b["n"] if b["n"] else None,
                    "x": round(b["low"] * 360),
                    "height": round(120 * b["hits"] / b["n"]) if b["n"] else 0,
                    "top": 120 - (round(120 * b["hits"] / b["n"]) if b["n"] else 0),
                }
                for b in test.get("reliability") or []
            ],
            "sorts": [
                ("f1", _("F1, lowest first")),
                ("delta", _("change against the compared version, worst first")),
                ("support", _("test items, most first")),
                ("precision", _("precision, lowest first")),
                ("recall", _("recall, lowest first")),
            ],
            **version_report(version=version, sort=sort, subtree=subtree, page=int(page) if page.isdigit() else 1),
        },
    )


@login_required
@permission_required("mlcore.view_modelversion", raise_exception=True)
@require_GET
def dashboard(request: HtmxHttpRequest) -> HttpResponse:
    runs = list(TrainingRun.objects.select_related("model_version").defer(*VERSION_HEAVY).order_by("-created_at")[:10])
    for run in runs:
        run.loss_curve = _curve(run.losses, "loss")  # type: ignore[attr-defined]
        run.f1_curve = _curve(run.evaluations, "macro_f1")  # type: ignore[attr-defined]
    context = {
        "versions": versions_listed(),
        "runs": runs,
        "jobs": RescoreJob.objects.select_related("model_version").defer(*VERSION_HEAVY)[:10],
        "audits": LabelAudit.objects.all()[:5],
        "form": TrainingStartForm(),
        "busy": any(r.status in ("queued", "running") for r in runs)
        or RescoreJob.objects.filter(status__in=["queued", "running"]).exists()
        or LabelAudit.objects.filter(status__in=["queued", "running"]).exists(),
    }
    template = "mlcore/dashboard.html#live" if request.htmx else "mlcore/dashboard.html"
    return render(request, template, context)


@login_required
@permission_required("mlcore.add_trainingrun", raise_exception=True)
@require_POST
def training_start(request: HttpRequest) -> HttpResponse:
    form = TrainingStartForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Check the training settings: %(errors)s") % {"errors": form.errors.as_text()})
        return redirect("mlcore:dashboard")
    try:
        chosen = {name: value for name, value in form.cleaned_data.items() if value not in (None, "")}
        run = training_run_start(user=signed_in(request), **chosen)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Training run #%(id)s queued.") % {"id": run.pk})
    return redirect("mlcore:dashboard")


@login_required
@permission_required("mlcore.add_trainingrun", raise_exception=True)
@require_POST
def fast_version(request: HttpRequest) -> HttpResponse:
    try:
        fast_version_request()
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("A fast head is being fitted: it appears among the versions in a few seconds."))
    return _back(request)


@login_required
@permission_required("mlcore.add_labelaudit", raise_exception=True)
@require_POST
def label_audit(request: HttpRequest) -> HttpResponse:
    try:
        audit = label_audit_start(user=signed_in(request))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Label check #%(id)s queued.") % {"id": audit.pk})
    return redirect("mlcore:dashboard")


def _back(request: HttpRequest) -> HttpResponse:
    """Back where the button was (the dashboard or the Models page), never to another site."""
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("mlcore:dashboard")


# The Models page's jobs: who may cancel each kind (the permission that starts it), and the service that cancels it.
_CANCEL = {
    "runs": ("mlcore.add_trainingrun", lambda pk: training_run_cancel(run_id=pk)),
    "rescore-jobs": ("mlcore.add_rescorejob", lambda pk: rescore_job_cancel(job_id=pk)),
    "label-audits": ("mlcore.add_labelaudit", lambda pk: label_audit_cancel(audit_id=pk)),
}


@login_required
@require_POST
def job_cancel(request: HttpRequest, kind: str, job_id: int) -> HttpResponse:
    if kind not in _CANCEL:
        return render(request, "error.html", {"message": f"Unknown kind of job '{kind}'."}, status=404)
    permission, cancel = _CANCEL[kind]
    if not request.user.has_perm(permission):
        raise PermissionDenied
    try:
        cancel(job_id)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Cancel requested: a queued job ends now, a running one at its next step."))
    return _back(request)


@login_required
@permission_required("mlcore.change_modelversion", raise_exception=True)
@require_POST
def version_activate(request: HttpRequest, version_id: int) -> HttpResponse:
    try:
        version = model_version_activate(
            version_id=version_id, user=signed_in(request), force=True, reason=request.POST.get("reason", "")
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        version.refresh_from_db()
        if version.is_serving:
            text = _("%(version)s is active and serves its stored predictions again.")
        else:
            text = _("%(version)s is active; re-scoring started.")
        messages.success(request, text % {"version": version.label})
    return redirect("mlcore:dashboard")


@login_required
@require_GET
def suggestions_partial(request: HttpRequest, product_id: int) -> HttpResponse:
    try:
        product = product_get(product_id=product_id)
    except NotFoundError as exc:
        return HttpResponse(exc.message, status=404)
    rows = product_suggestions(product=product, language=request.LANGUAGE_CODE, evidence=True)
    confident = product_confident_category(product=product)
    return render(
        request, "mlcore/partials/suggestions.html", {"suggestions": rows, "product": product, "confident": confident}
    )


# --- the admin's dashboard (/dashboard/): the page, and mlcore's panels; the labels panel comes from labeling ---------


@login_required
@permission_required("mlcore.view_modelversion", raise_exception=True)
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "mlcore/home.html")


@login_required
@permission_required("mlcore.view_modelversion", raise_exception=True)
@require_GET
def panel_model(request: HttpRequest) -> HttpResponse:
    """The serving version's headline metrics and, while anything runs, its jobs with live bars."""
    return render(
        request,
        "mlcore/partials/panel_model.html",
        {
            **dict(zip(("serving", "active"), serving_and_active_headlined(), strict=True)),
            **dashboard_jobs(),
        },
    )


@login_required
@permission_required("mlcore.view_modelversion", raise_exception=True)
@require_GET
def panel_workers(request: HttpRequest) -> HttpResponse:
    workers = workers_status()
    return render(
        request,
        "mlcore/partials/panel_workers.html",
        {"workers": workers, "queues": queue_lengths(), "unserved": queues_without_worker(workers)},
    )


@login_required
@permission_required("mlcore.view_modelversion", raise_exception=True)
@require_GET
def panel_policy(request: HttpRequest) -> HttpResponse:
    """Not polled, unlike the model panel: an admin edits it."""
    return render(
        request,
        "mlcore/partials/panel_policy.html",
        {"policy": retraining_policy_get(), "new_labels": new_labels_since_last_run()},
    )


@login_required
@permission_required("mlcore.change_retrainingpolicy", raise_exception=True)
@require_POST
def policy_update(request: HttpRequest) -> HttpResponse:
    form = RetrainingPolicyForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Check the retraining policy: %(errors)s") % {"errors": form.errors.as_text()})
    else:
        try:
            retraining_policy_update(user=signed_in(request), **form.cleaned_data)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Retraining policy saved."))
    return redirect("dashboard:home")
