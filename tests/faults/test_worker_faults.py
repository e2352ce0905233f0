"""Kill real workers in the middle of real jobs (PostgreSQL, a Redis of its own, `celery worker` subprocesses,
SIGKILL) and check that every job ends resumed or failed with its cause, never stuck, and never half-applied."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.db import InterfaceError, OperationalError, connections
from django.db.models import Count

from catalog.models import CategoryChange, ImportJob, Product
from core.models import JobStatus
from mlcore.models import ModelVersion, ModelVersionStatus, Prediction, RescoreJob, TrainingRun
from tests.faults.conftest import Cluster, wait_for

pytestmark = pytest.mark.slow

# Long enough on the tiny encoder (~10-20 s) to be killed in the middle, after its first checkpoints.
SLOW_TRAINING = {"MLCORE_MIN_TRAIN_STEPS": "400"}


def _run(pk: int) -> TrainingRun:
    return TrainingRun.objects.select_related("model_version").get(pk=pk)


def _checkpoints(cluster: Cluster, version: ModelVersion) -> list[Path]:
    """The run's complete checkpoints (the Trainer writes trainer_state.json last): a kill while the first one is
    being written leaves nothing to resume, and the run rightly starts over."""
    folder = Path(cluster.env["MLCORE_ARTIFACT_DIR"]) / "checkpoints" / f"v{version.number}"
    return [checkpoint for checkpoint in folder.glob("checkpoint-*") if (checkpoint / "trainer_state.json").exists()]


def _start_training(manager) -> TrainingRun:
    from mlcore.services.training import training_run_start

    return training_run_start(user=manager, epochs=1, learning_rate=5e-3, batch_size=4, max_length=16)


def _wait_until_ended(cluster: Cluster, model, pk: int, seconds: float = 180):
    try:
        return wait_for(
            lambda: (job := model.objects.get(pk=pk)).is_finished and job, seconds=seconds, what=f"{model} {pk}"
        )
    except AssertionError:
        print(cluster.logs())
        raise


def _active(pk: int) -> ModelVersion:
    """The run's version once the gate has activated it (just after the run is marked succeeded)."""
    version = ModelVersion.objects.get(training_run__pk=pk)
    return wait_for(
        lambda: ModelVersion.objects.filter(pk=version.pk, status=ModelVersionStatus.ACTIVE).first(),
        seconds=60,
        what=f"v{version.number} to be activated",
    )


def _the_next_run_can_start(manager) -> None:
    from mlcore.services.training import training_run_cancel

    run = _start_training(manager)  # refused while another run still counts as training
    assert training_run_cancel(run_id=run.pk).status == JobStatus.CANCELLED


def test_training_resumes_when_its_prefork_child_is_killed(cluster, labelled_catalog, manager):
    cluster.worker("trainer", "training", **SLOW_TRAINING)
    run = _start_training(manager)
    wait_for(
        lambda: _checkpoints(cluster, run.model_version) and _run(run.pk).step > 0, seconds=120, what="a checkpoint"
    )
    killed_at = _run(run.pk).step
    cluster.kill_child("trainer")  # the parent sees the child lost and hands the message back (same task id)

    run = _wait_until_ended(cluster, TrainingRun, run.pk)
    assert run.status == JobStatus.SUCCEEDED, run.error + cluster.logs()
    assert run.attempts == 2
    assert run.step >= killed_at
    version = _active(run.pk)
    from mlcore.engine.artifacts import load_metrics

    assert load_metrics(version.artifact_path)["resumed_from"].startswith("checkpoint-")
    assert ModelVersion.objects.filter(status__in=[ModelVersionStatus.READY, ModelVersionStatus.ACTIVE]).count() == 1
    _the_next_run_can_start(manager)


def test_training_resumes_on_another_worker_when_the_whole_worker_dies(cluster, labelled_catalog, manager):
    cluster.worker("first", "training", **SLOW_TRAINING)
    run = _start_training(manager)
    wait_for(
        lambda: _checkpoints(cluster, run.model_version) and _run(run.pk).step > 0, seconds=120, what="a checkpoint"
    )
    cluster.kill_worker("first")  # its message stays unacknowledged in Redis: only the reaper can recover the run
    assert _run(run.pk).status == JobStatus.RUNNING

    cluster.worker("second", "default,training", **SLOW_TRAINING)
    cluster.beat()
    run = _wait_until_ended(cluster, TrainingRun, run.pk)
    assert run.status == JobStatus.SUCCEEDED, run.error + cluster.logs()
    assert run.attempts == 2
    assert "second@" in run.claimed_by
    _active(run.pk)
    _the_next_run_can_start(manager)


def test_a_run_that_kills_its_worker_every_time_fails_with_its_cause(cluster, labelled_catalog, manager):
    cluster.worker("trainer", "training", JOBS_MAX_ATTEMPTS="2", **SLOW_TRAINING)
    run = _start_training(manager)
    for attempt in (1, 2):
        wait_for(
            lambda attempt=attempt: (r := _run(run.pk)).attempts == attempt and r.step > 0,
            seconds=120,
            what=f"attempt {attempt} to train",
        )
        cluster.kill_child("trainer")

    run = _wait_until_ended(cluster, TrainingRun, run.pk)
    assert run.status == JobStatus.FAILED
    assert "Gave up after 2 attempt(s)" in run.error
    assert "was lost" in run.error or "is gone" in run.error
    # The version fails in the end hook that follows the run's end (it also removes the checkpoints on disk).
    wait_for(
        lambda: ModelVersion.objects.get(pk=run.model_version_id).status == ModelVersionStatus.FAILED,
        seconds=10,
        what="the version to fail with its run",
    )
    assert not _checkpoints(cluster, run.model_version)  # nothing left to resume
    _the_next_run_can_start(manager)


def test_cancel_stops_a_running_training_at_its_next_step(cluster, labelled_catalog, manager):
    from mlcore.services.training import training_run_cancel

    cluster.worker("trainer", "training", **SLOW_TRAINING)
    run = _start_training(manager)
    wait_for(lambda: _run(run.pk).step > 0, seconds=120, what="training to start")
    assert training_run_cancel(run_id=run.pk).cancel_requested
    run = _wait_until_ended(cluster, TrainingRun, run.pk, seconds=60)
    assert run.status == JobStatus.CANCELLED
    assert ModelVersion.objects.get(pk=run.model_version_id).status == ModelVersionStatus.FAILED
    assert not _checkpoints(cluster, run.model_version)


# --- re-scoring ----------------------------------------------------------------------------------------------------


def _versioned_rescore_job(labelled_catalog, manager, settings, products: int) -> RescoreJob:
    """A trained version (in this process, quickly) whose re-scoring job's chunks now wait in the broker."""
    from mlcore.services.training import training_run_execute
    from tests.factories import ProductFactory

    ProductFactory.create_batch(products, brand="")
    settings.MLCORE_MIN_TRAIN_STEPS = 0
    settings.MLCORE_RESCORE_CHUNK_SIZE = 4
    run = _start_training(manager)
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    return RescoreJob.objects.get(model_version_id=run.model_version_id)


def _assert_complete(job: RescoreJob) -> None:
    assert job.status == JobStatus.SUCCEEDED, job.error
    per_product = Prediction.objects.filter(model_version_id=job.model_version_id).values("product_id")
    counts = per_product.annotate(n=Count("id")).values_list("n", flat=True)
    assert len(counts) == Product.objects.count()
    assert set(counts) == {1}
    assert ModelVersion.objects.get(pk=job.model_version_id).is_serving


def _watch_the_switch(job: RescoreJob, seen: list[tuple[str, bool]]) -> bool:
    # Serving first, then the job: both change in one transaction, so a version seen serving must find its job
    # succeeded on the next read. (Read the other way round, a switch landing between the two reads looked like a
    # version serving while its job still ran.)
    serving = ModelVersion.objects.filter(pk=job.model_version_id, is_serving=True).exists()
    job.refresh_from_db()
    seen.append((job.status, serving))
    return job.is_finished


def test_rescoring_completes_when_a_worker_dies_and_switches_only_at_the_end(
    cluster, labelled_catalog, manager, settings
):
    job = _versioned_rescore_job(labelled_catalog, manager, settings, products=600)
    cluster.worker("scorer1", "scoring")
    cluster.worker("scorer2", "default,scoring")
    seen: list[tuple[str, bool]] = []
    wait_for(lambda: _watch_the_switch(job, seen) or job.chunks_done >= 20, seconds=120, what="20 chunks")
    cluster.kill_worker("scorer1")  # with the chunk it was scoring and the one it had reserved
    assert job.chunks_done < job.chunks_total, "the job ended before the kill: nothing was tested"
    cluster.beat()
    try:
        wait_for(lambda: _watch_the_switch(job, seen), seconds=180, what="re-scoring to end")
    except AssertionError:
        print(cluster.logs())
        raise
    _assert_complete(job)
    assert not [status for status, serving in seen if serving and status != JobStatus.SUCCEEDED]


def test_rescoring_completes_when_redis_restarts_and_loses_its_messages(cluster, labelled_catalog, manager, settings):
    job = _versioned_rescore_job(labelled_catalog, manager, settings, products=600)
    cluster.worker("scorer", "default,scoring")
    cluster.beat()
    wait_for(lambda: RescoreJob.objects.get(pk=job.pk).chunks_done >= 20, seconds=120, what="20 chunks")
    cluster.redis_kill()
    cluster.redis_start()  # empty: no persistence, as a Redis run without AOF
    job = _wait_until_ended(cluster, RescoreJob, job.pk, seconds=240)
    _assert_complete(job)


# --- imports -----------------------------------------------------------------------------------------------------


def test_an_import_resumes_where_it_stopped_when_its_worker_is_killed(cluster, manager, small_tree):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from catalog.services.jobs import import_job_create

    rows = 6000
    lines = ["sku,title,category"] + [f"K{i:05d},Product {i},{small_tree['dish'].external_id}" for i in range(rows)]
    cluster.worker("importer", "default", CATALOG_IMPORT_CHUNK_SIZE="100")
    job = import_job_create(
        kind="products", upload=SimpleUploadedFile("big.csv", "\n".join(lines).encode()), user=manager
    )
    wait_for(lambda: ImportJob.objects.get(pk=job.pk).chunks_written >= 5, seconds=120, what="5 chunks written")
    cluster.kill_child("importer")

    job = _wait_until_ended(cluster, ImportJob, job.pk)
    assert job.status == JobStatus.SUCCEEDED, job.error + cluster.logs()
    assert job.attempts == 2
    assert job.chunks_written == rows // 100
    # Resumed, not redone: the rows written before the kill count as created, not as unchanged.
    assert (job.rows_created, job.rows_unchanged, job.rows_seen) == (rows, 0, rows)
    assert Product.objects.filter(sku__startswith="K").count() == rows
    assert CategoryChange.objects.filter(product__sku__startswith="K").count() == rows


# --- the database ------------------------------------------------------------------------------------------------


def _postgres_restart() -> None:
    """Restart this machine's PostgreSQL cluster, as a failover or a maintenance restart would (root only)."""
    clusters = sorted(p.name for p in Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").is_dir() else []
    if os.geteuid() != 0 or not shutil.which("pg_ctlcluster") or not clusters:
        pytest.skip("this machine does not let the test restart PostgreSQL (needs root and pg_ctlcluster)")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", clusters[-1], "main", "restart"], check=True, timeout=120
    )
    connections.close_all()  # this process's connections died with the server


def _job_when_reachable(pk: int) -> RescoreJob | None:
    try:
        job = RescoreJob.objects.get(pk=pk)
    except (OperationalError, InterfaceError):
        connections.close_all()
        return None
    return job if job.is_finished else None


def test_rescoring_completes_when_postgresql_restarts(cluster, labelled_catalog, manager, settings):
    job = _versioned_rescore_job(labelled_catalog, manager, settings, products=600)
    cluster.worker("scorer", "default,scoring")
    cluster.beat()
    wait_for(lambda: RescoreJob.objects.get(pk=job.pk).chunks_done >= 20, seconds=120, what="20 chunks")
    _postgres_restart()
    try:
        wait_for(lambda: _job_when_reachable(job.pk), seconds=240, what="re-scoring to end", every=0.5)
    except AssertionError:
        print(cluster.logs())
        raise
    _assert_complete(RescoreJob.objects.get(pk=job.pk))
