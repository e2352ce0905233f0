"""The manager's /reclassify/ pages: who may see and act, and a group approved, applied and undone from them."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from catalog.models import CategorySource, Product
from labeling.models import ProposalState, ReclassificationJob, ReclassificationProposal
from labeling.services.reclassification import reclassification_job_run
from tests.labeling.api.test_reclassification_api import batch  # noqa: F401  (the fixture)


def test_annotators_are_kept_out_and_anonymous_users_sent_to_log_in(batch, annotator_client):  # noqa: F811
    for url in (
        reverse("reclassify:list"),
        reverse("reclassify:batch", args=[batch.pk]),
        reverse("reclassify:group", args=[batch.pk]) + "?kind=fill&from=none&to=1",
    ):
        assert annotator_client.get(url).status_code == 403
        assert Client().get(url).status_code == 302
    for url in (
        reverse("reclassify:export", args=[batch.pk]),
        reverse("reclassify:audit", args=[1]),
    ):
        assert annotator_client.get(url).status_code == 403
    for url in (
        reverse("reclassify:rebuild", args=[batch.pk]),
        reverse("reclassify:audit-create", args=[batch.pk]),
        reverse("reclassify:audit-answer", args=[1]),
    ):
        assert annotator_client.post(url).status_code == 403
        assert Client().post(url).status_code == 302
    assert (
        annotator_client.post(reverse("reclassify:decide", args=[batch.pk]), {"decision": "approve"}).status_code == 403
    )
    assert annotator_client.post(reverse("reclassify:job", args=[batch.pk, "apply"])).status_code == 403


def test_a_manager_approves_a_group_applies_it_and_undoes_it(
    batch,  # noqa: F811
    manager_client,
    small_tree,
    django_capture_on_commit_callbacks,
):
    listing = manager_client.get(reverse("reclassify:list")).content.decode()
    assert reverse("reclassify:batch", args=[batch.pk]) in listing
    page = manager_client.get(reverse("reclassify:batch", args=[batch.pk])).content.decode()
    assert "Home &amp; Garden &gt; Kitchen &gt; Dishwashers" in page
    assert "crosses top-level categories" in page
    group = {"kind": "change", "from": small_tree["phones"].pk, "to": small_tree["dish"].pk}
    group_page = manager_client.get(reverse("reclassify:group", args=[batch.pk]), group).content.decode()
    assert group_page.count('name="ids"') == 3

    manager_client.post(reverse("reclassify:decide", args=[batch.pk]), {**group, "decision": "approve"})
    assert ReclassificationProposal.objects.filter(batch=batch, state=ProposalState.APPROVED).count() == 3
    one = ReclassificationProposal.objects.filter(batch=batch, kind="change").first()
    manager_client.post(reverse("reclassify:decide", args=[batch.pk]), {"ids": [one.pk], "decision": "reject"})

    with django_capture_on_commit_callbacks(execute=False):
        manager_client.post(reverse("reclassify:job", args=[batch.pk, "apply"]))
    job = ReclassificationJob.objects.get(batch=batch, action="apply")
    reclassification_job_run(job_id=job.pk)
    assert Product.objects.filter(category_source=CategorySource.RECLASSIFICATION).count() == 2
    page = manager_client.get(reverse("reclassify:batch", args=[batch.pk])).content.decode()
    assert "2 of 2 done, 0 skipped" in page

    with django_capture_on_commit_callbacks(execute=False):
        manager_client.post(reverse("reclassify:job", args=[batch.pk, "undo"]))
    reclassification_job_run(job_id=ReclassificationJob.objects.get(batch=batch, action="undo").pk)
    assert not Product.objects.filter(category_source=CategorySource.RECLASSIFICATION).exists()
    bad = manager_client.get(reverse("reclassify:group", args=[batch.pk]), {"kind": "sideways", "to": 1})
    assert bad.status_code == 400


def test_the_product_page_and_the_models_page_show_what_waits(batch, manager_client, annotator_client):  # noqa: F811
    proposal = ReclassificationProposal.objects.filter(batch=batch).first()
    product_page = manager_client.get(reverse("catalog:product-detail", args=[proposal.product_id])).content.decode()
    assert reverse("reclassify:product", args=[proposal.product_id]) in product_page
    box = manager_client.get(reverse("reclassify:product", args=[proposal.product_id])).content.decode()
    assert "Proposed reclassification" in box
    assert proposal.to_category.full_path_en.replace("&", "&amp;").replace(">", "&gt;") in box
    assert annotator_client.get(reverse("reclassify:product", args=[proposal.product_id])).content == b""
    models_page = manager_client.get(reverse("mlcore:dashboard")).content.decode()
    assert reverse("reclassify:waiting") in models_page
    assert "4 reclassification proposals wait" in manager_client.get(reverse("reclassify:waiting")).content.decode()


def test_a_blind_audit_from_the_page_then_the_measured_precision_on_the_group(
    batch,  # noqa: F811
    manager_client,
    small_tree,
):
    group = {"kind": "change", "from": small_tree["phones"].pk, "to": small_tree["dish"].pk}
    response = manager_client.post(
        reverse("reclassify:audit-create", args=[batch.pk]), {**group, "audience": "manager", "size": 3}
    )
    assert response.status_code == 302
    audit_url = response["Location"]
    answers = [small_tree["dish"].pk, small_tree["dish"].pk, small_tree["phones"].pk]
    for answer in answers:
        page = manager_client.get(audit_url).content.decode()
        assert "Dishwashers" not in page  # blind: the proposal's category is not on the page
        item_id = page.split('name="item" value="')[1].split('"')[0]  # the form's hidden field
        manager_client.post(audit_url + "answer/", {"item": item_id, "category": answer})
    done = manager_client.get(audit_url).content.decode()
    assert "2 of 3 right" in done
    assert "measures below the promise" in done
    listing = manager_client.get(reverse("reclassify:batch", args=[batch.pk])).content.decode()
    assert "2/3 = 0.67" in listing
    # A stale form (the same item again) is refused with a message, not a 500, and changes nothing.
    stale = manager_client.post(
        audit_url + "answer/", {"item": item_id, "category": small_tree["dish"].pk}, follow=True
    )
    assert "answered already" in stale.content.decode()


def test_export_is_formula_safe_and_the_group_pages_by_keyset(
    batch,  # noqa: F811
    manager_client,
    small_tree,
    monkeypatch,
):
    Product.objects.filter(title="dishwasher 0").update(title='=HYPERLINK("http://evil")')
    export = manager_client.get(reverse("reclassify:export", args=[batch.pk]))
    text = b"".join(export.streaming_content).decode()
    assert "'=HYPERLINK" in text
    assert ",=HYPERLINK" not in text

    from labeling import reclassify_views

    monkeypatch.setattr(reclassify_views, "PAGE", 2)
    group = {"kind": "change", "from": small_tree["phones"].pk, "to": small_tree["dish"].pk}
    url = reverse("reclassify:group", args=[batch.pk])
    first = manager_client.get(url, group).content.decode()
    assert first.count('name="ids"') == 2
    cursor = first.split("after=")[1].split('"')[0]
    second = manager_client.get(f"{url}?kind=change&from={group['from']}&to={group['to']}&after={cursor}")
    second = second.content.decode()
    assert second.count('name="ids"') == 1
    ids = {line.split('value="')[1].split('"')[0] for line in (first + second).split('name="ids" ')[1:]}
    assert len(ids) == 3  # every proposal once, none twice
