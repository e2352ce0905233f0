"""Scale-out on Celery, with processes standing for hosts (PostgreSQL and Redis shared): a trainer on its own
queue, two scorers sharing one re-scoring job. The chunks split between the scorers, each product is written once,
the trainer takes none. How the job's time falls with more workers is measured in bench/rescore.py --workers, never
asserted here."""

from __future__ import annotations

from collections import Counter

import pytest

from core.models import JobStatus
from mlcore.models import RescoreChunk, RescoreJob
from tests.faults.conftest import wait_for
from tests.faults.test_worker_faults import _assert_complete, _start_training

pytestmark = pytest.mark.slow


def test_two_scorers_share_one_job_and_the_trainer_keeps_to_its_queue(cluster, labelled_catalog, manager, settings):
    """The whole flow across three 'hosts': the trainer trains (training queue), its activation cuts the re-scoring
    job, and the two scorers (scoring queue) take its chunks as they free up."""
    from tests.factories import ProductFactory

    ProductFactory.create_batch(400, brand="")
    small = {"MLCORE_RESCORE_CHUNK_SIZE": "4", "MLCORE_MIN_TRAIN_STEPS": "0"}
    cluster.worker("trainer", "training", **small)
    cluster.worker("scorer1", "fast,scoring", **small)  # as the README's scorers: a fast head never waits for a job
    cluster.worker("scorer2", "fast,scoring", **small)
    run = _start_training(manager)  # queued: the trainer takes it
    wait_for(lambda: RescoreJob.objects.filter(model_version__training_run=run).exists(), seconds=240, what="a job")
    job = RescoreJob.objects.get(model_version__training_run=run)

    def ended() -> bool:
        job.refresh_from_db()
        return job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)

    wait_for(ended, seconds=240, what="the re-scoring job to end")
    _assert_complete(job)  # every product exactly once, the version serving
    by_node = Counter(
        claimant.get("node", "").split("@")[0]
        for claimant in RescoreChunk.objects.filter(job=job).values_list("claimant", flat=True)
    )
    assert set(by_node) == {"scorer1", "scorer2"}, by_node  # both scored, the trainer none
    assert sum(by_node.values()) == job.chunks_total
    assert min(by_node.values()) >= job.chunks_total // 5, by_node  # shared, not one doing nearly all
