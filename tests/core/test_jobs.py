"""The job lifecycle's rules (core/jobs.py), one at a time. The same rules with real worker processes killed by
SIGKILL are in tests/faults/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import ImportJob
from core.errors import ConflictError, NotFoundError
from core.jobs import (
    JobCancelled,
    JobLost,
    claimant_gone,
    claimant_here,
    job_cancel,
    job_claim,
    jobs_reap,
    lease_claim,
)
from core.models import JobStatus
from core.tasks import _DELIVERY, Delivery
from mlcore.models import ModelVersion, ModelVersionStatus, RescoreChunk, RescoreJob, TrainingRun


def _import_job(**fields) -> ImportJob:
    return ImportJob.objects.create(
        kind="products", file="imports/x.csv", original_name="x.csv", file_format="csv", **fields
    )


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _dead_claimant() -> dict:
    return {"host": socket.gethostname(), "pid": _dead_pid(), "started": 1.0, "node": "", "task": "t-1"}


def _running(job_factory=_import_job, *, claimant: dict | None = None, heartbeat_age: float = 0, attempts: int = 1):
    import uuid

    return job_factory(
        status=JobStatus.RUNNING,
        claimant=claimant if claimant is not None else claimant_here(),
        claim_token=uuid.uuid4(),
        heartbeat_at=timezone.now() - timedelta(seconds=heartbeat_age),
        attempts=attempts,
    )


def test_a_queued_job_is_claimed_and_the_claimant_recorded(db):
    job = _import_job()
    run = job_claim(ImportJob, job.pk)
    assert run is not None
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 1)
    assert job.claimant["pid"] == os.getpid()
    assert job.claimant["host"] == socket.gethostname()
    assert job.claim_token == run.token
    assert job.started_at is not None


def test_a_live_claimant_with_a_fresh_heartbeat_keeps_its_job(db):
    job = _running()  # this very process holds it
    assert job_claim(ImportJob, job.pk) is None
    job.refresh_from_db()
    assert job.attempts == 1


def test_a_job_whose_worker_process_is_gone_is_taken_over_at_once(db):
    job = _running(claimant=_dead_claimant())
    old_token = job.claim_token
    run = job_claim(ImportJob, job.pk)
    assert run is not None
    job.refresh_from_db()
    assert job.attempts == 2
    assert job.claim_token != old_token
    assert job.claimant["pid"] == os.getpid()


def test_a_reused_pid_is_not_taken_for_the_claimant(db):
    claimant = {**claimant_here(), "started": 12.0}  # this pid, but a process that started at another time
    assert claimant_gone(claimant) is True


def test_a_stale_heartbeat_is_taken_over_when_nobody_can_tell(db, settings):
    remote = {"host": "another-host", "pid": 1, "node": "", "task": "t-9"}
    assert claimant_gone(remote) is None
    fresh = _running(claimant=remote)
    assert job_claim(ImportJob, fresh.pk) is None
    stale = _running(claimant=remote, heartbeat_age=settings.JOBS_STALE_AFTER_SECONDS + 5)
    assert job_claim(ImportJob, stale.pk) is not None


def test_the_same_delivery_coming_back_takes_its_job_over(db):
    remote = {"host": "another-host", "pid": 1, "node": "", "task": "task-42"}
    job = _running(claimant=remote)
    token = _DELIVERY.set(Delivery(task_id="task-42", node="celery@here"))
    try:
        run = job_claim(ImportJob, job.pk)
    finally:
        _DELIVERY.reset(token)
    assert run is not None
    job.refresh_from_db()
    assert job.claimant["task"] == "task-42"
    assert job.claimant["node"] == "celery@here"


def test_a_job_out_of_attempts_fails_with_its_cause(db, settings):
    settings.JOBS_MAX_ATTEMPTS = 2
    job = _running(claimant=_dead_claimant(), attempts=2)
    assert job_claim(ImportJob, job.pk) is None
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "Gave up after 2 attempt(s)" in job.error
    assert "is gone" in job.error
    assert job.finished_at is not None


def test_a_worker_that_was_taken_over_can_neither_beat_nor_finish(db):
    job = _import_job()
    first = job_claim(ImportJob, job.pk)
    assert first is not None
    # Its process is now seen as gone: the next delivery takes the job over.
    ImportJob.objects.filter(pk=job.pk).update(claimant=_dead_claimant())
    second = job_claim(ImportJob, job.pk)
    assert second is not None
    with pytest.raises(JobLost):
        first.beat(force=True)
    assert first.finish(JobStatus.SUCCEEDED) is False
    assert second.finish(JobStatus.SUCCEEDED) is True
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED


def test_missing_and_finished_jobs_are_left_alone(db):
    assert job_claim(ImportJob, 987654) is None
    done = _import_job(status=JobStatus.SUCCEEDED)
    assert job_claim(ImportJob, done.pk) is None


# --- cancel ------------------------------------------------------------------------------------------------------


def _training_run(**fields) -> TrainingRun:
    version = ModelVersion.objects.create(number=ModelVersion.objects.count() + 1, base_model="x")
    return TrainingRun.objects.create(model_version=version, **fields)


def test_cancel_ends_a_queued_job_at_once(db):
    run = _training_run()
    cancelled = job_cancel(TrainingRun, run.pk)
    assert cancelled.status == JobStatus.CANCELLED
    assert ModelVersion.objects.get(pk=run.model_version_id).status == ModelVersionStatus.FAILED


def test_cancel_asks_a_live_worker_to_stop_at_its_next_step(db):
    job = _import_job()
    run = job_claim(ImportJob, job.pk)
    assert run is not None
    cancelled = job_cancel(ImportJob, job.pk)
    assert (cancelled.status, cancelled.cancel_requested) == (JobStatus.RUNNING, True)
    with pytest.raises(JobCancelled):
        run.beat(force=True)


def test_cancel_ends_a_job_whose_worker_is_gone_directly(db):
    run = _running(lambda **f: _training_run(**f), claimant=_dead_claimant())
    cancelled = job_cancel(TrainingRun, run.pk)
    assert cancelled.status == JobStatus.CANCELLED
    assert "is gone" in cancelled.error
    assert ModelVersion.objects.get(pk=run.model_version_id).status == ModelVersionStatus.FAILED


def test_cancel_ends_a_running_rescore_job_at_once_and_its_chunks_write_nothing(db, small_tree):
    from mlcore.services.rescoring import rescore_chunk
    from tests.factories import ProductFactory

    product = ProductFactory()
    job = RescoreJob.objects.create(status=JobStatus.RUNNING, chunks_total=1, products_total=1)
    RescoreChunk.objects.create(job=job, first_id=product.pk, last_id=product.pk)
    assert job_cancel(RescoreJob, job.pk).status == JobStatus.CANCELLED
    rescore_chunk(job_id=job.pk, first_id=product.pk, last_id=product.pk)
    assert not RescoreChunk.objects.filter(job=job, done=True).exists()
    assert not product.predictions.exists()


def test_a_rescore_job_cancelled_while_its_chunk_scored_gets_none_of_the_chunks_rows(db, small_tree):
    from unittest import mock

    from mlcore.services import rescoring
    from tests.factories import ProductFactory

    product = ProductFactory()
    job = RescoreJob.objects.create(status=JobStatus.RUNNING, chunks_total=1, products_total=1)
    RescoreChunk.objects.create(job=job, first_id=product.pk, last_id=product.pk)
    score = rescoring.score_product_range

    def cancelled_meanwhile(**kwargs):
        scores = score(**kwargs)
        job_cancel(RescoreJob, job.pk)
        return scores

    with mock.patch.object(rescoring, "score_product_range", cancelled_meanwhile):
        rescoring.rescore_chunk(job_id=job.pk, first_id=product.pk, last_id=product.pk)
    job.refresh_from_db()
    assert (job.status, job.chunks_done, job.products_done) == (JobStatus.CANCELLED, 0, 0)
    assert not RescoreChunk.objects.filter(job=job, done=True).exists()
    assert not product.predictions.exists()


def test_cancel_of_an_ended_or_missing_job_says_so(db):
    with pytest.raises(ConflictError, match="already ended"):
        job_cancel(ImportJob, _import_job(status=JobStatus.FAILED).pk)
    with pytest.raises(NotFoundError):
        job_cancel(ImportJob, 987654)


# --- leases (re-scoring chunks) -------------------------------------------------------------------------------------


def test_a_chunk_lease_waits_for_a_live_twin_and_fails_after_its_attempts(db, settings):
    settings.JOBS_MAX_ATTEMPTS = 2
    job = RescoreJob.objects.create()
    RescoreChunk.objects.create(job=job, first_id=1, last_id=10)
    chunks = RescoreChunk.objects.filter(job=job, first_id=1)
    chunk, why = lease_claim(chunks)
    assert chunk is not None
    assert chunk.attempts == 1
    assert lease_claim(chunks) == (None, "alive")  # its twin, delivered again while it runs
    chunks.update(claimant=_dead_claimant())
    chunk, why = lease_claim(chunks)
    assert chunk is not None
    assert chunk.attempts == 2
    chunks.update(claimant=_dead_claimant())
    chunk, why = lease_claim(chunks)
    assert chunk is None
    assert "Gave up after 2 attempt(s)" in why


# --- the reaper -----------------------------------------------------------------------------------------------------


def _messages(queue: str) -> int:
    from celery import current_app

    with current_app.connection_for_read() as connection:
        try:
            return connection.default_channel.queue_declare(queue=queue, passive=True).message_count
        except Exception:
            return 0


@pytest.fixture
def empty_queues():
    """Every queue of the project emptied (control.purge() empties only the queues this process has declared)."""
    from celery import current_app

    from mlcore.selectors import QUEUES

    def purge() -> None:
        with current_app.connection_for_write() as connection:
            for queue in QUEUES:
                connection.default_channel.queue_purge(queue)

    purge()
    yield
    purge()


def test_the_reaper_resends_a_job_whose_worker_is_gone(db, empty_queues):
    job = _running(claimant=_dead_claimant())
    report = jobs_reap()
    assert report.resent == [f"ImportJob {job.pk}"]
    assert _messages("default") == 1
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert job.enqueued_at is not None
    # Its message waits in the queue: the next pass does not send another.
    ImportJob.objects.filter(pk=job.pk).update(enqueued_at=timezone.now() - timedelta(hours=1))
    assert jobs_reap().resent == []
    assert _messages("default") == 1


def test_the_reaper_fails_a_lost_job_out_of_attempts_and_carries_out_a_cancel(db, settings, empty_queues):
    settings.JOBS_MAX_ATTEMPTS = 1
    lost = _running(claimant=_dead_claimant(), attempts=1)
    cancelled = _running(claimant=_dead_claimant(), attempts=0)
    ImportJob.objects.filter(pk=cancelled.pk).update(cancel_requested=True)
    report = jobs_reap()
    assert report.failed == [f"ImportJob {lost.pk}"]
    assert report.cancelled == [f"ImportJob {cancelled.pk}"]
    lost.refresh_from_db()
    assert lost.status == JobStatus.FAILED
    assert "Gave up" in lost.error


def test_the_reaper_leaves_live_jobs_and_waiting_messages_alone(db, empty_queues):
    _running()  # alive in this process
    queued = _import_job(enqueued_at=timezone.now())  # its message was just sent
    assert jobs_reap().resent == []
    # A queued job whose message was lost a while ago (a broker restarted without persistence) is sent again.
    ImportJob.objects.filter(pk=queued.pk).update(
        enqueued_at=timezone.now() - timedelta(hours=1), created_at=timezone.now() - timedelta(hours=1)
    )
    assert jobs_reap().resent == [f"ImportJob {queued.pk}"]


def test_the_reaper_looks_for_a_fast_version_s_lost_chunks_in_the_fast_queue(db, empty_queues, small_tree):
    """A fast version's chunks go to `fast`: had the reaper asked `scoring` (busy with a long job's chunks), a fast
    re-score whose messages were lost would wait for that whole job before being sent again."""
    from mlcore.models import TrainingMethod
    from mlcore.tasks import rescore_chunk_task
    from tests.factories import ProductFactory

    product = ProductFactory()
    an_hour_ago = timezone.now() - timedelta(hours=1)
    jobs = {}
    for number, method in ((1, TrainingMethod.FULL), (2, TrainingMethod.FAST)):
        version = ModelVersion.objects.create(
            number=number, base_model="x", artifact_path="-", method=method, status=ModelVersionStatus.READY
        )
        job = RescoreJob.objects.create(model_version=version, chunks_total=1, products_total=1)
        RescoreChunk.objects.create(job=job, first_id=product.pk, last_id=product.pk)
        RescoreJob.objects.filter(pk=job.pk).update(created_at=an_hour_ago, enqueued_at=an_hour_ago)
        jobs[method] = job
    rescore_chunk_task.apply_async((0, 0, 0), queue="scoring")  # a long job's chunk, waiting its turn
    waiting = {queue: _messages(queue) for queue in ("fast", "scoring")}
    assert jobs_reap().resent == [f"RescoreJob {jobs[TrainingMethod.FAST].pk}"]
    assert _messages("fast") == waiting["fast"] + 1
    assert _messages("scoring") == waiting["scoring"]  # the fine-tuned version's job waits: `scoring` holds messages


@pytest.mark.slow
def test_a_celery_node_that_answers_tells_whether_it_runs_the_task(celery_worker):
    from celery import current_app

    # A worker on a loaded 2-core machine may miss one broadcast's timeout: what is tested is what a node that
    # answers says, so ask again a few times before calling it silent.
    nodes: list[str] = []
    for _ in range(5):
        nodes = list((current_app.control.inspect(timeout=2.0).ping() or {}).keys())
        if nodes:
            break
    assert nodes, "the test worker did not answer"
    answers = []
    for _ in range(5):
        answers.append(claimant_gone({"host": "another-host", "pid": 1, "node": nodes[0], "task": "not-running"}))
        if answers[-1] is not None:
            break
    assert answers[-1] is True, answers
    assert claimant_gone({"host": "another-host", "pid": 1, "node": "celery@nowhere", "task": "x"}) is None


def test_a_running_jobs_eta_follows_its_pace(db):
    from datetime import timedelta

    from django.utils import timezone

    from core.templatetags.core_tags import eta
    from mlcore.models import ModelVersion, TrainingRun

    version = ModelVersion.objects.create(number=42, base_model="x")
    run = TrainingRun(model_version=version, status="running", step=25, total_steps=100)
    run.started_at = timezone.now() - timedelta(seconds=50)
    assert run.eta_seconds == pytest.approx(150, abs=2)  # 25 steps in 50 s: 75 more take 150 s
    run.step = 0
    assert run.eta_seconds is None  # no pace yet
    run.status = "queued"
    assert run.eta_seconds is None
    assert (eta(40), eta(150), eta(7500), eta(None)) == ("40 s", "2 min", "2 h 5 min", "")
