"""The reclassification API: managers and admins only; groups, proposals, decisions, apply and undo."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from catalog.models import CategorySource, Product
from core.models import JobStatus
from labeling.models import ProposalState, ReclassificationProposal
from labeling.services.reclassification import reclassification_job_run
from tests.labeling.services.test_reclassification import _build, _imported, _predict, _version


@pytest.fixture
def batch(small_tree, django_capture_on_commit_callbacks):
    version = _version()
    for i in range(3):
        product = _imported(small_tree, "phones", title=f"dishwasher {i}")
        _predict(version, product, [(small_tree["dish"], 0.95)])
    product = _imported(small_tree, None, title="fridge")
    _predict(version, product, [(small_tree["fridge"], 0.97)])
    return _build(version, django_capture_on_commit_callbacks)


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_annotators_and_anonymous_users_are_kept_out(batch, annotator):
    base = f"/api/v1/reclassification-batches/{batch.pk}"
    for client, expected in ((_client(annotator), 403), (_client(), 401)):
        assert client.get("/api/v1/reclassification-batches/").status_code == expected
        assert client.get(f"{base}/groups/").status_code == expected
        assert client.post(f"{base}/decisions/", {"decision": "approve", "ids": [1]}, format="json").status_code == (
            expected
        )
        assert client.post(f"{base}/apply/", {}, format="json").status_code == expected
        assert client.post(f"{base}/rebuild/", {"threshold": 0.5}, format="json").status_code == expected
        assert client.post(f"{base}/audits/", {"group": {}}, format="json").status_code == expected
        assert client.get(f"{base}/export/").status_code == expected
        assert client.get("/api/v1/reclassification-audits/").status_code == expected


def test_a_manager_reads_groups_decides_applies_and_undoes(
    batch, manager, small_tree, django_capture_on_commit_callbacks
):
    api = _client(manager)
    listed = api.get("/api/v1/reclassification-batches/").json()
    row = listed["results"][0] if isinstance(listed, dict) else listed[0]
    assert row["counts"]["total"] == 4
    assert row["counts"]["proposed"] == 4

    groups = api.get(f"/api/v1/reclassification-batches/{batch.pk}/groups/").json()
    assert [(g["kind"], g["n"]) for g in groups] == [("change", 3), ("fill", 1)]
    change = groups[0]
    assert change["from_category"]["full_path_en"].endswith("Phones")
    assert change["to_category"]["full_path_en"].endswith("Dishwashers")
    assert change["crosses_vertical"] is True  # Electronics into Home & Garden
    assert len(change["samples"]) == 3

    proposals = api.get(
        f"/api/v1/reclassification-batches/{batch.pk}/proposals/", {"group_kind": "fill", "from": "none"}
    ).json()
    assert [p["title"] for p in proposals["results"]] == ["fridge"]
    assert api.get(f"/api/v1/reclassification-batches/{batch.pk}/proposals/", {"kind": "maybe"}).status_code == 400

    group = {"kind": "change", "from": small_tree["phones"].pk, "to": small_tree["dish"].pk}
    decided = api.post(
        f"/api/v1/reclassification-batches/{batch.pk}/decisions/",
        {"decision": "approve", "group": group},
        format="json",
    )
    assert decided.json() == {"changed": 3}
    with django_capture_on_commit_callbacks(execute=False):
        started = api.post(f"/api/v1/reclassification-batches/{batch.pk}/apply/", {}, format="json")
    assert started.status_code == 202
    reclassification_job_run(job_id=started.json()["id"])
    job = api.get(f"/api/v1/reclassification-jobs/{started.json()['id']}/").json()
    assert (job["status"], job["done"], job["percent"]) == (JobStatus.SUCCEEDED, 3, 100)
    assert Product.objects.filter(category_source=CategorySource.RECLASSIFICATION).count() == 3
    # The fill was not approved: nothing changed it.
    assert ReclassificationProposal.objects.get(batch=batch, kind="fill").state == ProposalState.PROPOSED

    with django_capture_on_commit_callbacks(execute=False):
        undo = api.post(f"/api/v1/reclassification-batches/{batch.pk}/undo/", {"group": group}, format="json")
    reclassification_job_run(job_id=undo.json()["id"])
    assert not Product.objects.filter(category_source=CategorySource.RECLASSIFICATION).exists()
    assert api.get("/api/v1/reclassification-batches/999/groups/").status_code == 404


def test_audits_rebuild_filters_and_export_through_the_api(
    batch, manager, small_tree, django_capture_on_commit_callbacks
):
    api = _client(manager)
    base = f"/api/v1/reclassification-batches/{batch.pk}"
    group = {"kind": "change", "from": small_tree["phones"].pk, "to": small_tree["dish"].pk}
    created = api.post(f"{base}/audits/", {"group": group, "size": 2}, format="json")
    assert created.status_code == 201, created.content
    audit = created.json()
    assert len(audit["items"]) == 2
    assert "to_category" not in str(audit["items"])  # blind: the product, not the proposal
    for item in audit["items"]:
        answered = api.post(
            f"/api/v1/reclassification-audits/{audit['id']}/answer/",
            {"item": item["id"], "category": small_tree["dish"].pk},
            format="json",
        )
        assert answered.status_code == 200, answered.content
    measured = answered.json()["measured"]
    assert (measured["correct"], measured["wrong"]) == (2, 0)
    assert measured["interval_95"][1] == 1.0
    again = api.post(
        f"/api/v1/reclassification-audits/{audit['id']}/answer/",
        {"item": audit["items"][0]["id"], "category": small_tree["phones"].pk},
        format="json",
    )
    assert again.status_code == 409
    stranger = api.post(
        f"/api/v1/reclassification-audits/{audit['id']}/answer/", {"item": 999999, "category": None}, format="json"
    )
    assert stranger.status_code == 404
    groups = api.get(f"{base}/groups/").json()
    assert groups[0]["audit"]["correct"] == 2

    rejected = api.post(f"{base}/decisions/", {"decision": "reject", "filter": {"kind": "fill"}}, format="json").json()
    assert rejected == {"changed": 1}
    bad = api.post(f"{base}/decisions/", {"decision": "reject", "filter": {"source": "magic"}}, format="json")
    assert bad.status_code == 400

    export = api.get(f"{base}/export/")
    assert export.status_code == 200
    text = b"".join(export.streaming_content).decode()
    assert text.splitlines()[0].startswith("proposal_id,sku,title")
    assert text.count("\n") == 5  # the header and the four proposals

    assert api.post(f"{base}/rebuild/", {"threshold": 2}, format="json").status_code == 400
    with django_capture_on_commit_callbacks(execute=False):
        started = api.post(f"{base}/rebuild/", {"threshold": 0.5}, format="json")
    assert started.status_code == 202
    reclassification_job_run(job_id=started.json()["id"])
    assert api.get(f"{base}/").json()["superseded_at"] is not None
