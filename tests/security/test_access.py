"""Who may open what: every URL the project serves (pages, htmx partials, the API, the Django admin) x every role
(anonymous, annotator, manager, admin), with real objects, one of them another annotator's. A URL added without a
row here fails the completeness test, so nothing new ships unclassified."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from labeling.models import Annotation
from tests.security.conftest import ROLES

LOGIN = 302  # a page sends the anonymous visitor to the login
# What each GET answers, by role: anonymous, annotator, manager, admin. 200 "" is a composed partial that renders
# nothing for a role that may not see it (the page around it still loads).
GET = {
    "/catalog/products/": (LOGIN, 200, 200, 200),
    "/catalog/products/export/": (LOGIN, 403, 200, 200),
    "/catalog/products/{product}/": (LOGIN, 200, 200, 200),
    "/catalog/categories/": (LOGIN, 200, 200, 200),
    "/catalog/categories/search/?q=dish": (LOGIN, 200, 200, 200),
    "/catalog/categories/{category}/children/": (LOGIN, 200, 200, 200),
    "/catalog/imports/": (LOGIN, 403, 200, 200),
    "/catalog/imports/{import}/": (LOGIN, 403, 200, 200),
    "/dashboard/": (LOGIN, 403, 200, 200),
    "/models/": (LOGIN, 403, 200, 200),
    "/models/versions/{version}/": (LOGIN, 403, 200, 200),
    "/models/products/{product}/suggestions/": (LOGIN, 200, 200, 200),
    "/models/panels/model/": (LOGIN, 403, 200, 200),
    "/models/panels/policy/": (LOGIN, 403, 200, 200),
    "/models/panels/workers/": (LOGIN, 403, 200, 200),
    "/label/": (LOGIN, 200, 200, 200),
    "/label/deck/": (LOGIN, 204, 204, 204),  # nothing left to put on deck in this world
    "/label/picker/?q=dish": (LOGIN, 200, 200, 200),
    "/label/panels/labels/": (LOGIN, 403, 200, 200),
    "/review/": (LOGIN, 403, 200, 200),
    "/review/agreement/": (LOGIN, 403, 200, 200),
    "/reclassify/": (LOGIN, 403, 200, 200),
    "/reclassify/waiting/": (LOGIN, '200 ""', 200, 200),
    "/reclassify/products/{product}/": (LOGIN, '200 ""', 200, 200),
    "/reclassify/{batch}/": (LOGIN, 403, 200, 200),
    "/reclassify/{batch}/group/": (LOGIN, 403, 200, 200),
    "/reclassify/{batch}/export.csv": (LOGIN, 403, 200, 200),
    # The Django admin is for staff accounts only (createsuperuser); no role is staff, so all are sent to its login.
    "/admin/": (LOGIN, LOGIN, LOGIN, LOGIN),
    "/admin/catalog/product/": (LOGIN, LOGIN, LOGIN, LOGIN),
    "/admin/auth/user/": (LOGIN, LOGIN, LOGIN, LOGIN),
    # The API's description is public, as its documentation; every endpoint it describes asks who you are.
    "/api/schema/": (200, 200, 200, 200),
    "/api/docs/": (200, 200, 200, 200),
    "/api/v1/": (401, 200, 200, 200),
    "/api/v1/products/": (401, 200, 200, 200),
    "/api/v1/products/{product}/": (401, 200, 200, 200),
    "/api/v1/products/{product}/suggestions/": (401, 200, 200, 200),
    "/api/v1/categories/": (401, 200, 200, 200),
    "/api/v1/categories/{category}/": (401, 200, 200, 200),
    "/api/v1/categories/{category}/path/": (401, 200, 200, 200),
    "/api/v1/imports/": (401, 403, 200, 200),
    "/api/v1/imports/{import}/": (401, 403, 200, 200),
    "/api/v1/imports/{import}/errors/": (401, 403, 200, 200),
    "/api/v1/model-versions/": (401, 403, 200, 200),
    "/api/v1/model-versions/{version}/": (401, 403, 200, 200),
    "/api/v1/model-versions/{version}/metrics/": (401, 403, 200, 200),
    "/api/v1/training-runs/": (401, 403, 200, 200),
    "/api/v1/training-runs/{run}/": (401, 403, 200, 200),
    "/api/v1/rescore-jobs/": (401, 403, 200, 200),
    "/api/v1/rescore-jobs/{rescore}/": (401, 403, 200, 200),
    "/api/v1/label-audits/": (401, 403, 200, 200),
    "/api/v1/label-audits/{label_audit}/": (401, 403, 200, 200),
    "/api/v1/label-audits/{label_audit}/issues/": (401, 403, 200, 200),
    "/api/v1/queue/next/": (401, 204, 204, 204),
    "/api/v1/annotations/": (401, 200, 200, 200),
    # Another annotator's annotation: an annotator cannot tell it exists; managers review everyone's.
    "/api/v1/annotations/{annotation}/": (401, 404, 200, 200),
    "/api/v1/reviews/": (401, 403, 200, 200),
    "/api/v1/reviews/{review}/": (401, 403, 200, 200),
    "/api/v1/queues/": (401, 200, 200, 200),
    "/api/v1/queues/{queue}/": (401, 200, 200, 200),
    "/api/v1/reclassification-batches/": (401, 403, 200, 200),
    "/api/v1/reclassification-batches/{batch}/": (401, 403, 200, 200),
    "/api/v1/reclassification-batches/{batch}/groups/": (401, 403, 200, 200),
    "/api/v1/reclassification-batches/{batch}/proposals/": (401, 403, 200, 200),
    "/api/v1/reclassification-batches/{batch}/export/": (401, 403, 200, 200),
    "/api/v1/reclassification-jobs/": (401, 403, 200, 200),
    "/api/v1/reclassification-audits/": (401, 403, 200, 200),
}

# Unsafe requests, by role: each is refused below the role that may make it, and the refusal changes nothing.
# (Bodies are minimal: a role that passes the permission check may get a 400 for them, which is not asserted here.)
POST = {
    "/models/train/": (LOGIN, 403, 403, None),
    "/models/fast/": (LOGIN, 403, 403, None),
    "/models/label-audits/": (LOGIN, 403, 403, None),
    "/models/policy/": (LOGIN, 403, 403, None),
    "/models/versions/{version}/activate/": (LOGIN, 403, 403, None),
    "/models/rescore-jobs/{rescore}/cancel/": (LOGIN, 403, 403, None),
    "/catalog/imports/{import}/cancel/": (LOGIN, 403, None, None),
    "/label/answer/": (LOGIN, None, None, None),
    "/reclassify/{batch}/decide/": (LOGIN, 403, None, None),
    "/reclassify/{batch}/rebuild/": (LOGIN, 403, None, None),
    "/reclassify/{batch}/audits/": (LOGIN, 403, None, None),
    "/reclassify/{batch}/apply/": (LOGIN, 403, None, None),
    "/api/v1/products/": (401, 403, None, None),
    "/api/v1/categories/{category}/merge/": (401, 403, None, None),
    "/api/v1/imports/{import}/cancel/": (401, 403, None, None),
    "/api/v1/model-versions/fast/": (401, 403, 403, None),
    "/api/v1/model-versions/{version}/activate/": (401, 403, 403, None),
    "/api/v1/training-runs/": (401, 403, 403, None),
    "/api/v1/training-runs/{run}/cancel/": (401, 403, 403, None),
    "/api/v1/rescore-jobs/": (401, 403, 403, None),
    "/api/v1/rescore-jobs/{rescore}/cancel/": (401, 403, 403, None),
    "/api/v1/label-audits/": (401, 403, 403, None),
    "/api/v1/label-audits/{label_audit}/cancel/": (401, 403, 403, None),
    "/api/v1/reviews/{review}/resolve/": (401, 403, None, None),
    "/api/v1/reviews/{review}/dismiss/": (401, 403, None, None),
    "/api/v1/queues/": (401, 403, None, None),
    "/api/v1/reclassification-batches/{batch}/apply/": (401, 403, None, None),
    "/api/v1/reclassification-batches/{batch}/decisions/": (401, 403, None, None),
    "/api/v1/reclassification-batches/{batch}/rebuild/": (401, 403, None, None),
    "/api/v1/reclassification-batches/{batch}/undo/": (401, 403, None, None),
    "/api/v1/reclassification-batches/{batch}/audits/": (401, 403, None, None),
    "/api/v1/annotations/": (401, None, None, None),
    "/api/v1/annotations/flag/": (401, None, None, None),
    "/api/v1/annotations/skip/": (401, None, None, None),
    "/api/v1/annotations/undo/": (401, None, None, None),
}
# Reached only through a row above under another name, or the login and language forms themselves (tested in
# test_login.py); each is a route name.
COVERED_ELSEWHERE = {
    "login",
    "logout",
    "language-set",
    "api-token",
    "healthz",
    "reclassify:audit",
    "reclassify:audit-answer",
    "reclassification-audit-detail",
    "reclassification-audit-answer",
    "reclassification-job-detail",
    "reclassification-job-cancel",
    "labeling-queue-detail",
    "annotation-detail",
    "review-detail",
    "product-detail",
    "category-detail",
    "api-root",
}


def _routes() -> set[str]:
    names: set[str] = set()

    def walk(patterns: list, namespace: str | None) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if str(pattern.pattern) == "admin/":
                    continue  # Django's own; its entry points are in GET
                walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and pattern.name:
                names.add(f"{namespace}:{pattern.name}" if namespace else pattern.name)

    walk(get_resolver().url_patterns, None)
    return names


def _name(url: str) -> str:
    """The route a row's URL resolves to (any id will do: resolving does not look objects up)."""
    placeholders = re.findall(r"{(\w+)}", url)
    return resolve(url.split("?")[0].format(**dict.fromkeys(placeholders, 1))).view_name


def test_every_route_has_a_row():
    tested = {_name(url) for url in (*GET, *POST)} | COVERED_ELSEWHERE
    missing = sorted(_routes() - tested)
    assert not missing, f"routes with no row in the access matrix: {missing}"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_opens_what_it_may_and_nothing_else(world, role):
    column = ROLES.index(role)
    client = world.client(role)
    wrong = []
    for url, expected in GET.items():
        response = client.get(url.format(**world.ids))
        want = expected[column]
        if want == '200 ""':
            ok = response.status_code == 200 and not response.content.strip()
        else:
            ok = response.status_code == want
        if want == LOGIN and ok:
            ok = "/login/" in response["Location"]
        if not ok:
            wrong.append((url, want, response.status_code))
    assert not wrong


@pytest.mark.parametrize("role", ROLES)
def test_unsafe_requests_below_the_role_change_nothing(world, role, django_capture_on_commit_callbacks):
    from django.apps import apps

    column = ROLES.index(role)
    client = world.client(role)

    def counts() -> dict[str, int]:
        return {
            model._meta.label: model.objects.count()
            for model in apps.get_models()
            if model._meta.app_label in ("catalog", "labeling", "mlcore")
        }

    before = counts()
    wrong = []
    for url, expected in POST.items():
        want = expected[column]
        if want is None:
            continue  # this role may: what the request does is each feature's own test
        with django_capture_on_commit_callbacks(execute=False):
            response = client.post(url.format(**world.ids), {}, content_type="application/json")
        if response.status_code != want:
            wrong.append((url, want, response.status_code))
    assert not wrong
    assert counts() == before


def test_lists_show_an_annotator_only_their_own_annotations(world):
    own = Annotation.objects.create(product_id=world.ids["product"], annotator=world.users["annotator"], kind="skip")
    listed = world.client("annotator").get("/api/v1/annotations/").json()
    ids = {row["id"] for row in (listed["results"] if isinstance(listed, dict) else listed)}
    assert ids == {own.pk}
    listed = world.client("manager").get("/api/v1/annotations/").json()
    ids = {row["id"] for row in (listed["results"] if isinstance(listed, dict) else listed)}
    assert ids == {own.pk, world.ids["annotation"]}
