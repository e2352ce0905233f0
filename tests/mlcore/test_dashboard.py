"""/dashboard/: the admin's home (managers may look, annotators 403), composed of each app's panels; the workers
panel reports what a real worker says of itself."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from tests.factories import ProductFactory, verified_product

PANELS = ("mlcore:panel-model", "mlcore:panel-workers", "labeling:panel-labels")


def test_who_may_see_the_dashboard(annotator_client, manager_client):
    for name in ("dashboard:home", *PANELS):
        url = reverse(name)
        assert annotator_client.get(url).status_code == 403
        assert Client().get(url).status_code == 302
        assert manager_client.get(url).status_code == 200
    page = manager_client.get(reverse("dashboard:home")).content.decode()
    for name in PANELS:
        assert reverse(name) in page  # composed by hx-get, each panel from its own app


def test_the_labels_panel_counts_coverage_labels_and_agreement(manager_client, manager, small_tree, annotators):
    from labeling.models import Annotation, AnnotationKind

    verified_product(small_tree["dish"], manager, title="dishwasher a")
    verified_product(small_tree["dish"], manager, title="dishwasher b")
    twice = ProductFactory(title="fridge?")
    ProductFactory(title="no category")
    for annotator, category in zip(annotators[:2], (small_tree["fridge"], small_tree["fridge"]), strict=True):
        Annotation.objects.create(product=twice, annotator=annotator, kind=AnnotationKind.LABEL, category=category)
    html = manager_client.get(reverse("labeling:panel-labels")).content.decode()
    assert "4 products: 2 verified by a person, 0 categorised otherwise, 2 without a category." in html
    assert "2 · Home &amp; Garden &gt; Kitchen &gt; Dishwashers" in html
    assert "Agreement: 1 of 1 items answered more than once got the same answer." in html
    assert "today: 2" in html


def test_the_model_panel_shows_the_serving_version_with_its_interval(manager_client):
    from mlcore.models import ModelVersion, ModelVersionStatus

    ModelVersion.objects.create(
        number=3,
        base_model="x",
        status=ModelVersionStatus.ACTIVE,
        is_serving=True,
        metrics={
            "temperature": 1.7,
            "test": {"n": 23, "accuracy": 1.0, "accuracy_interval": [0.857, 1.0], "macro_f1": 1.0, "ece": 0.04},
        },
    )
    html = manager_client.get(reverse("mlcore:panel-model")).content.decode()
    assert "v3" in html
    assert "[0.86\u20131.00]" in html  # en dash, as the page writes ranges
    assert "n=23" in html
    assert "Nothing runs." in html


def test_the_workers_panel_shows_a_real_worker_its_queues_and_device(manager_client, celery_worker):
    from django.core.cache import cache

    cache.clear()
    # As the page polls: a fresh worker's first answer may miss the 2 s the panel waits (torch warming up).
    for _ in range(10):
        html = manager_client.get(reverse("mlcore:panel-workers")).content.decode()
        if "No worker answered" not in html:
            break
    assert "No worker answered" not in html
    assert "scoring" in html
    assert "cpu" in html  # reported by the worker itself
    assert "Waiting in the queues" in html


def test_the_workers_panel_says_so_when_no_worker_answers(manager_client):
    from django.core.cache import cache

    cache.clear()
    html = manager_client.get(reverse("mlcore:panel-workers")).content.decode()
    assert "No worker answered" in html


def test_a_version_page_in_depth_with_its_regressions_marked(manager_client, annotator_client, small_tree):
    from mlcore.models import ModelVersion, ModelVersionStatus, TrainingRun

    dish, fridge, phones = (str(small_tree[k].pk) for k in ("dish", "fridge", "phones"))
    version = ModelVersion.objects.create(
        number=7,
        base_model="x",
        status=ModelVersionStatus.READY,
        held_back=True,
        activation_note="Not activated: 1 class(es) regressed.",
        data_snapshot={"counts": {dish: 30, fridge: 20, phones: 10}},
        metrics={
            "temperature": 1.4,
            "comparison": {
                "against": 6,
                "macro_f1": 0.9,
                "per_class": {dish: {"f1-score": 0.95, "support": 12}, fridge: {"f1-score": 0.8, "support": 8}},
            },
            "test": {
                "n": 26,
                "accuracy": 0.8,
                "accuracy_interval": [0.61, 0.91],
                "classes_evaluated": 3,
                "macro_f1": 0.78,
                "hierarchical": {"precision": 0.9, "recall": 0.9, "f1": 0.9},
                "per_class": {
                    dish: {"precision": 0.7, "recall": 0.6, "f1-score": 0.65, "support": 12},
                    fridge: {"precision": 0.85, "recall": 0.85, "f1-score": 0.85, "support": 8},
                    phones: {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 6},
                },
                "confused_pairs": [[dish, fridge, 4], [fridge, dish, 1]],
                "reliability": [{"low": 0.9, "high": 1.0, "n": 10, "hits": 9, "confidence": 0.95}],
                "precision_coverage": [
                    {"threshold": 0.9, "n": 10, "hits": 10, "coverage": 0.4},
                    {"threshold": 0.5, "n": 26, "hits": 21, "coverage": 1.0},
                ],
            },
        },
    )
    TrainingRun.objects.create(
        model_version=version,
        status="succeeded",
        losses=[{"step": 1, "loss": 2.0}, {"step": 10, "loss": 0.5}],
        evaluations=[{"step": 5, "macro_f1": 0.5}, {"step": 10, "macro_f1": 0.78}],
    )
    url = reverse("mlcore:version-detail", args=[version.pk])
    assert annotator_client.get(url).status_code == 403
    assert manager_client.get(reverse("mlcore:version-detail", args=[999999])).status_code == 404
    html = manager_client.get(url, {"sort": "delta"}).content.decode()
    assert "held back by the gate" in html
    assert "1 class with enough test items lost more than 0.10 F1." in html
    assert "trained on 60 verified labels in 3 categories" in html
    table = html.split('id="per-class"')[1]
    # Worst change first: Dishwashers fell 0.30 against v6.
    assert table.index("Dishwashers") < table.index("Fridges")
    assert "-0.300" in table
    assert "<polyline" in html  # the curves and the precision/coverage line are drawn
    assert "Kitchen" in html.split('id="confusions"')[1]  # aggregated by parent
    only_phones = manager_client.get(url, {"subtree": small_tree["el"].pk}).content.decode().split('id="per-class"')[1]
    assert "Phones" in only_phones
    assert "Dishwashers" not in only_phones


def test_an_admin_cancels_a_run_from_the_dashboards_jobs_panel(manager_client):
    from accounts.roles import Role
    from core.models import JobStatus
    from mlcore.models import ModelVersion, TrainingRun
    from tests.factories import UserFactory

    version = ModelVersion.objects.create(number=7, base_model="x")
    run = TrainingRun.objects.create(model_version=version)
    admin = Client()
    admin.force_login(UserFactory(username="boss", role=Role.ADMIN))
    panel = admin.get(reverse("mlcore:panel-model")).content.decode()
    cancel = reverse("mlcore:job-cancel", args=["runs", run.pk])
    assert cancel in panel
    assert 'name="next" value="/dashboard/"' in panel
    # Managers look, they do not cancel.
    assert cancel not in manager_client.get(reverse("mlcore:panel-model")).content.decode()
    assert manager_client.post(cancel, {"next": "/dashboard/"}).status_code == 403

    response = admin.post(cancel, {"next": "/dashboard/"})
    assert (response.status_code, response["Location"]) == (302, "/dashboard/")
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED  # queued: it ends at once
    assert cancel not in admin.get(reverse("mlcore:panel-model")).content.decode()
    # Back to where the button was, never to another site.
    other = TrainingRun.objects.create(model_version=ModelVersion.objects.create(number=8, base_model="x"))
    response = admin.post(reverse("mlcore:job-cancel", args=["runs", other.pk]), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("mlcore:dashboard")


def test_a_big_version_page_is_paged_sorted_over_every_class_and_lists_read_its_headline(manager_client, settings):
    from mlcore.models import ModelVersion
    from tests.factories import CategoryFactory

    root = CategoryFactory(name_en="Root")
    leaves = [CategoryFactory(parent=root, name_en=f"Leaf {i:03d}") for i in range(250)]
    # F1 falls with the index: the worst class is the last created, and it must lead page 1 of 3.
    per_class = {
        str(c.pk): {"precision": 1.0, "recall": 1.0, "f1-score": 1 - i / 250, "support": 2}
        for i, c in enumerate(leaves)
    }
    test = {"n": 500, "accuracy": 0.5, "macro_f1": 0.5, "macro_f1_interval": [0.45, 0.55], "per_class": per_class}
    version = ModelVersion.objects.create(number=9, base_model="x", metrics={"temperature": 1.2, "test": test})
    assert version.headline["macro_f1_interval"] == [0.45, 0.55]  # written with the metrics
    assert version.headline["temperature"] == 1.2
    assert "per_class" not in version.headline
    url = reverse("mlcore:version-detail", args=[version.pk])
    first = manager_client.get(url).content.decode()
    assert "Page 1 of 3 (250 classes" in first
    table = first.split('id="per-class"')[1].split("</table>")[0]
    assert "Leaf 249" in table
    assert "Leaf 000" not in table
    third = manager_client.get(url, {"page": 3}).content.decode().split('id="per-class"')[1].split("</table>")[0]
    assert "Leaf 000" in third
    assert manager_client.get(url, {"page": "99"}).status_code == 200  # past the end: the last page
    # A version saved again with new metrics refreshes its headline, also through update_fields.
    version.metrics = {"test": {**test, "macro_f1": 0.6}}
    version.save(update_fields=["metrics"])
    assert ModelVersion.objects.get(pk=version.pk).headline["macro_f1"] == 0.6
    # The Models list shows the headline without reading the stored metrics.
    html = manager_client.get(reverse("mlcore:dashboard")).content.decode()
    assert "[0.45\u20130.55]" in html


def test_the_workers_panel_names_a_queue_no_worker_takes(manager_client, monkeypatch):
    """A worker started with an older -Q list (no `fast`): labels would never make a fast version, and the panel
    says which queue waits, instead of showing only the workers that answered."""
    from mlcore import views

    monkeypatch.setattr(
        views, "workers_status", lambda: [{"name": "worker@h", "queues": ["default", "scoring"], "tasks": []}]
    )
    html = manager_client.get(reverse("mlcore:panel-workers")).content.decode()
    assert "No worker takes these queues, so their tasks wait: fast, training." in html
    monkeypatch.setattr(
        views,
        "workers_status",
        lambda: [{"name": "worker@h", "queues": ["default", "fast", "scoring", "training"], "tasks": []}],
    )
    assert "No worker takes" not in manager_client.get(reverse("mlcore:panel-workers")).content.decode()
