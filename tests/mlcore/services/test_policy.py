from __future__ import annotations

import pytest

from catalog.models import Product
from core.errors import ApplicationError


def _annotate(skus, category, annotator) -> None:
    """Verified labels from the labeling workflow, as an annotator's settled answers write them."""
    from catalog.services.labels import product_category_set

    for sku in skus:
        product = Product.objects.get(sku=sku)
        product_category_set(
            product_id=product.pk,
            category_id=category.pk,
            expected_version=product.version,
            source="annotation",
            actor=annotator,
            verified=True,
        )


def test_the_retraining_policy_by_count_schedule_and_minimum_interval(
    ml_settings, labelled_catalog, manager, small_tree, settings, django_capture_on_commit_callbacks
):
    import datetime as dt

    from django.utils import timezone

    from mlcore.services.policy import retraining_check, retraining_due, retraining_policy_update

    settings.LABELING_RETRAIN_EVERY = 0
    policy = retraining_policy_update(user=manager, after_labels=2, daily_at=None, min_interval_minutes=30)
    assert policy.after_labels == 2
    assert retraining_due() is not None  # 20 verified labels from the labeling workflow and no run yet
    with django_capture_on_commit_callbacks(execute=False):
        first = retraining_check()
    assert first is not None
    assert retraining_due() is None  # nothing new since, and within the interval
    _annotate(("U000", "U001"), small_tree["dish"], manager)
    assert retraining_due() is None  # 2 new labels, but 30 minutes have not passed
    later = timezone.now() + dt.timedelta(minutes=31)
    assert "2 new verified labels" in retraining_due(now=later)

    retraining_policy_update(user=manager, after_labels=0, daily_at=dt.time(3, 0), min_interval_minutes=30)
    local = timezone.localtime(later)
    before_three = timezone.make_aware(dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(2, 59)))
    after_three = before_three + dt.timedelta(minutes=2)
    assert retraining_due(now=before_three) is None
    assert "daily run at 03:00" in retraining_due(now=after_three)
    with pytest.raises(ApplicationError, match="negative"):
        retraining_policy_update(user=manager, after_labels=-1, daily_at=None, min_interval_minutes=0)


def test_only_admins_edit_the_policy_on_the_dashboard(admin_user, manager_client):
    from django.test import Client
    from django.urls import reverse

    from accounts.roles import Role
    from mlcore.services.policy import retraining_policy_get
    from tests.factories import UserFactory

    data = {"after_labels": 50, "daily_at": "02:30", "min_interval_minutes": 120}
    assert manager_client.post(reverse("mlcore:policy"), data).status_code == 403
    admin = Client()
    admin.force_login(UserFactory(username="boss", role=Role.ADMIN))
    assert admin.post(reverse("mlcore:policy"), data).status_code == 302
    policy = retraining_policy_get()
    assert (policy.after_labels, policy.daily_at.strftime("%H:%M"), policy.min_interval_minutes) == (50, "02:30", 120)
    html = admin.get(reverse("mlcore:panel-policy")).content.decode()
    assert "After 50 new verified labels" in html
    assert "daily at 02:30" in html
    bad = admin.post(reverse("mlcore:policy"), {**data, "after_labels": "-3"}, follow=True).content.decode()
    assert "Check the retraining policy" in bad


def test_labels_set_by_hand_do_not_start_a_run(ml_settings, labelled_catalog, manager):
    """The demo seeds its labels by hand (source manual): a fresh `make demo` must not train by itself."""
    from catalog.models import CategoryChange
    from mlcore.services.policy import retraining_due, retraining_policy_update

    CategoryChange.objects.filter(verified=True).update(source="manual")
    retraining_policy_update(user=manager, after_labels=2, daily_at=None, min_interval_minutes=0)
    assert retraining_due() is None


def test_a_fast_head_follows_every_few_labels(
    ml_settings, labelled_catalog, manager, small_tree, settings, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    from mlcore.models import ModelVersion, TrainingMethod
    from mlcore.services.policy import FAST_SCHEDULED_KEY, fast_head_check

    settings.MLCORE_FAST_HEAD_EVERY = 25
    assert fast_head_check(fit_now=True) is None  # 20 labels from the workflow: not yet
    settings.MLCORE_FAST_HEAD_EVERY = 2
    cache.delete(FAST_SCHEDULED_KEY)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert fast_head_check() is None  # queued for the scoring queue, not fitted in the caller
        assert fast_head_check() is None  # ...once per half minute
    assert len(queued) == 1
    with django_capture_on_commit_callbacks(execute=False):
        fast = fast_head_check(fit_now=True)  # what the task does
    assert fast is not None
    assert fast.method == TrainingMethod.FAST
    assert fast_head_check(fit_now=True) is None  # nothing new since
    _annotate(("U000", "U002"), small_tree["dish"], manager)
    with django_capture_on_commit_callbacks(execute=False):
        again = fast_head_check(fit_now=True)
    assert again is not None
    assert ModelVersion.objects.filter(method=TrainingMethod.FAST).count() == 2


@pytest.mark.slow
def test_a_fast_head_does_not_wait_behind_a_whole_catalog_s_re_score(
    ml_settings, labelled_catalog, settings, celery_worker, monkeypatch
):
    """Labels count within a minute even while a long re-score runs (the first zero-shot pass of a new catalog, a
    fine-tuned version's pass over a million products): the fast head's fit and its own re-score go on the `fast`
    queue, which a scoring worker takes in turn with the long job's chunks instead of after all of them."""
    import time

    from django.core.cache import cache

    from mlcore.models import ModelVersion, RescoreChunk, RescoreJob, TrainingMethod
    from mlcore.services import rescoring
    from mlcore.services.policy import fast_head_check
    from mlcore.services.rescoring import rescore_job_start

    settings.MLCORE_FAST_HEAD_EVERY = 2  # the catalog's 20 verified labels make one due
    settings.MLCORE_RESCORE_CHUNK_SIZE = 1  # the long job: one chunk per product...
    score = rescoring.score_product_range

    def slow_zero_shot(*, version_id, first_id, last_id):
        if version_id is None:
            time.sleep(0.4)  # ...each slow, as a big catalog's are
        return score(version_id=version_id, first_id=first_id, last_id=last_id)

    monkeypatch.setattr(rescoring, "score_product_range", slow_zero_shot)
    cache.clear()
    long = rescore_job_start(version_id=None)  # all its chunks are queued first
    fast_head_check()  # then the fast head, queued as a settled label queues it
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        fast = ModelVersion.objects.filter(method=TrainingMethod.FAST, is_serving=True).first()
        if fast is not None:
            break
        time.sleep(0.1)
    assert fast is not None, "no fast version served within a minute"
    long.refresh_from_db()
    done = RescoreChunk.objects.filter(job=long, done=True).count()
    # Served while the long job still had most of its chunks to go, not after it.
    assert not long.is_finished, f"the fast head waited for the whole re-score ({done} of {long.chunks_total})"
    assert done < long.chunks_total / 2, f"served after {done} of {long.chunks_total} chunks"  # 6 of 25 here
    assert RescoreJob.objects.get(model_version=fast).is_finished
