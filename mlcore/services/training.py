"""Training runs: start one, cancel it, run it on a worker; the registry evaluates the result and its gate decides
whether it serves."""

from __future__ import annotations

import logging
import shutil
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F, Max

from core.broker import broker_check
from core.errors import ApplicationError, ConflictError
from core.jobs import (
    JobCancelled,
    JobLost,
    JobRun,
    describe_failure,
    job_cancel,
    job_claim,
    job_enqueue_on_commit,
)
from core.models import Job, JobStatus
from core.tasks import RETRYABLE
from mlcore.models import (
    ModelVersion,
    ModelVersionStatus,
    TrainingMethod,
    TrainingRun,
)
from mlcore.services.datasets import class_counts, label_counts, splits
from mlcore.services.embeddings import base_model_path, product_embeddings
from mlcore.services.registry import model_version_activate, model_version_evaluate, model_version_gate
from mlcore.services.scoring import scoring_caches_clear, zeroshot_prior

logger = logging.getLogger(__name__)


MIN_LABELS_PER_CATEGORY = 2


def base_model_choices() -> dict[str, str]:
    """Name -> local folder of the base models the page and the API offer (MLCORE_BASE_MODELS, and the default)."""
    return {"default": base_model_path(), **settings.MLCORE_BASE_MODELS}


def training_run_start(
    *,
    user: User | None,
    method: str = TrainingMethod.FULL,
    base_model: str = "",
    epochs: float = 3.0,
    learning_rate: float = 5e-5,
    max_length: int | None = None,
    batch_size: int = 32,
    lora_rank: int = 16,
    warm_start: bool = True,
    any_folder: bool = False,
) -> TrainingRun:
    """Register a new version in status `training` and queue its run. Refused while another one trains.
    base_model: a name from base_model_choices() (the page and the API), or any local folder when `any_folder`
    (the operator's `manage.py train`). warm_start False: from the base model even when a version is active."""
    if method not in (TrainingMethod.FULL, TrainingMethod.LORA):
        raise ApplicationError(f"Unknown method '{method}': use full or lora (a fast head is fitted, not trained).")
    if not 1 <= lora_rank <= 256:
        raise ApplicationError("The LoRA rank is between 1 and 256.")
    choices = base_model_choices()
    if base_model in choices:
        base_model = choices[base_model]
    elif base_model and not any_folder:
        raise ApplicationError(f"Unknown base model '{base_model}': choose one of {', '.join(choices)}.")
    if not 0 < epochs <= 100 or not 0 < learning_rate < 1 or batch_size < 1:
        raise ApplicationError("Epochs must be in (0, 100], the learning rate in (0, 1), the batch size >= 1.")
    broker_check()  # before anything is recorded: a clear 503 instead of a run that never starts
    base = base_model or base_model_path()
    if not Path(base).is_dir():
        raise ApplicationError(f"The base model must be a local folder; {base} is not one.")
    counts = label_counts()
    usable = {category: n for category, n in counts.items() if n >= MIN_LABELS_PER_CATEGORY}
    if len(usable) < 2:
        raise ApplicationError(
            f"Training needs verified labels in at least 2 categories ({MIN_LABELS_PER_CATEGORY} each); "
            f"there are {len(usable)}."
        )
    hyperparameters = {
        "epochs": epochs,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "max_length": max_length or settings.MLCORE_MAX_LENGTH,
        "lora_rank": lora_rank,
        "warm_start": warm_start,
    }
    try:
        with transaction.atomic():
            number = (ModelVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
            version = ModelVersion.objects.create(
                number=number, base_model=base, method=method, hyperparameters=hyperparameters, created_by=user
            )
            run = TrainingRun.objects.create(model_version=version)
            job_enqueue_on_commit(run, lambda: training_run_enqueue(run.pk))
    except IntegrityError:
        current = TrainingRun.objects.filter(model_version__status=ModelVersionStatus.TRAINING).first()
        raise ConflictError(
            f"A training run is already in progress (#{current.pk if current else '?'}); wait for it or cancel it."
        ) from None
    _stale_checkpoints_delete(keep=_checkpoints(version))
    return run


def _stale_checkpoints_delete(*, keep: Path) -> None:
    """Every checkpoint folder but the new run's: one run trains at a time (the constraint above), so the others are
    stale. A failed run's files are deleted after its end commits (training_run_ended), and a worker killed in between
    leaves them behind, hundreds of megabytes each; the next run clears them."""
    root = keep.parent
    if root.is_dir():
        for folder in root.iterdir():
            if folder != keep and folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)


def training_run_cancel(*, run_id: int) -> TrainingRun:
    """A queued run ends at once, a running one at its next step, one whose worker is gone here."""
    return job_cancel(TrainingRun, run_id)


def training_run_enqueue(run_id: int) -> None:
    from mlcore.tasks import training_run_task

    training_run_task.delay(run_id)


def training_run_ended(run: Job) -> None:
    """A run that ended without success: its version failed, and its checkpoints have nothing left to resume."""
    assert isinstance(run, TrainingRun)
    ModelVersion.objects.filter(pk=run.model_version_id, status=ModelVersionStatus.TRAINING).update(
        status=ModelVersionStatus.FAILED, activation_note=run.error or run.status
    )
    # Called inside the transaction that ends the run (core/jobs.py): the files go once the end is committed, so a
    # rolled-back end keeps what a retry resumes from, and the run's row is not held locked while they are deleted.
    transaction.on_commit(partial(shutil.rmtree, _checkpoints_of(run.model_version_id), ignore_errors=True))


def training_run_execute(*, run_id: int) -> None:
    """Train on this worker. A run whose earlier worker was lost resumes from its latest checkpoint (core/jobs.py
    decides when a delivery may take a run over)."""
    run = job_claim(TrainingRun, run_id)
    if run is None:
        return
    training = run.job
    assert isinstance(training, TrainingRun)
    version = ModelVersion.objects.get(pk=training.model_version_id)
    # Inference models cached by this process (re-scoring, zero-shot) would hold GPU memory the run needs.
    scoring_caches_clear()
    try:
        with run.keepalive():
            _execute(run, version)
    except JobLost:
        logger.warning("training run %s was taken over by another worker; this one stops", run_id)
        return
    except RETRYABLE:
        raise  # the database blinked: the task is retried, and the retry resumes from the checkpoint
    except Exception as exc:
        from mlcore.engine.training import TrainingCancelled

        cancelled = isinstance(exc, TrainingCancelled | JobCancelled)
        if cancelled:
            message = "Cancelled."
        elif isinstance(exc, ApplicationError):
            message = exc.message
        else:
            logger.exception("training run %s failed", run_id)
            message = describe_failure(exc, what="Training")
        # The run's end and its version's failure in one transaction: a reader who sees the run cancelled must not
        # find its version still "training" (the test that cancels a run caught that window once, under load).
        with transaction.atomic():
            if run.finish(JobStatus.CANCELLED if cancelled else JobStatus.FAILED, error=message):
                training.refresh_from_db()
                training_run_ended(training)
        if not (cancelled or isinstance(exc, ApplicationError)):
            raise
        return
    if settings.MLCORE_LABEL_AUDIT_AFTER_TRAINING:
        # More verified labels than last time: look again for the ones that are likely wrong.
        from mlcore.services.label_audit import label_audit_start

        try:
            label_audit_start(user=version.created_by)
        except ApplicationError as exc:
            logger.warning("no label check after training run %s: %s", run_id, exc.message)


def _checkpoints(version: ModelVersion) -> Path:
    """Where a run keeps its checkpoints while it trains: a worker killed mid-run leaves them, and the redelivered
    task resumes from the latest instead of starting over."""
    return Path(settings.MLCORE_ARTIFACT_DIR) / "checkpoints" / f"v{version.number}"


def _checkpoints_of(version_id: int) -> Path:
    number = ModelVersion.objects.filter(pk=version_id).values_list("number", flat=True).first()
    return Path(settings.MLCORE_ARTIFACT_DIR) / "checkpoints" / f"v{number}"


def _execute(run: JobRun, version: ModelVersion) -> None:
    from mlcore.engine.training import train
    from mlcore.engine.types import Progress, TrainingConfig

    train_split, validation, test = splits(version)
    counts = class_counts(train_split.labels + validation.labels + test.labels)
    if not validation.ids:  # tiny catalogs: validate on the training data rather than not at all
        validation = train_split
    active = ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).first()
    # Warm start from the latest fine-tuned version that served (a fast head has no encoder weights to start from).
    warm = (
        ModelVersion.objects.filter(
            status__in=(ModelVersionStatus.ACTIVE, ModelVersionStatus.ARCHIVED), activated_at__isnull=False
        )
        .exclude(method=TrainingMethod.FAST)
        .exclude(artifact_path="")
        .defer("metrics", "data_snapshot")
        .order_by("-activated_at")
        .first()
    )
    hp = version.hyperparameters
    config = TrainingConfig(
        base_model=version.base_model,
        method="lora" if version.method == TrainingMethod.LORA else "full",
        epochs=hp["epochs"],
        learning_rate=hp["learning_rate"],
        batch_size=hp["batch_size"],
        max_length=hp["max_length"],
        device=settings.MLCORE_DEVICE,
        min_steps=settings.MLCORE_MIN_TRAIN_STEPS,
        lora_r=int(hp.get("lora_rank", 16)),
        lora_alpha=2 * int(hp.get("lora_rank", 16)),
    )
    version.data_snapshot = {
        "counts": counts,
        "train_ids": train_split.ids,
        "validation_ids": validation.ids,
        "test_ids": test.ids,
    }
    version.save(update_fields=["data_snapshot"])

    # The curves as they grow (the page draws them while the run trains): a resumed run starts from what the killed
    # one had written, and the engine replays its logged history into on_progress.
    losses: list[dict[str, float]] = []
    evaluations: list[dict[str, float]] = []

    def on_progress(progress: Progress) -> None:
        curves: dict[str, Any] = {}
        point = {"step": progress.step, "epoch": round(progress.epoch, 3)}
        if progress.loss is not None and not any(p["step"] == progress.step for p in losses):
            losses.append({**point, "loss": progress.loss})
            curves["losses"] = losses
        if progress.eval_macro_f1 is not None and not any(p["step"] == progress.step for p in evaluations):
            evaluations.append({**point, "macro_f1": progress.eval_macro_f1})
            curves["evaluations"] = evaluations
        run.beat(step=progress.step, total_steps=progress.total_steps, epoch=progress.epoch, **curves)

    def should_stop() -> bool:
        # Every step: says the run is alive (throttled), raises JobLost if another worker has taken it over.
        try:
            run.beat()
        except JobCancelled:
            return True
        return False

    output = Path(settings.MLCORE_ARTIFACT_DIR) / f"v{version.number}"
    result = train(
        config,
        checkpoint_dir=_checkpoints(version),
        train_texts=train_split.texts,
        train_labels=train_split.labels,
        val_texts=validation.texts,
        val_labels=validation.labels,
        output_dir=output,
        warm_start_from=warm.artifact_path if warm and hp.get("warm_start", True) else None,
        on_progress=on_progress,
        should_stop=should_stop,
    )
    metrics = model_version_evaluate(artifact=result.output_dir, test=test)
    metrics["validation"] = result.best_validation
    metrics["temperature"] = result.temperature
    activate, note = model_version_gate(metrics, active, test)
    # One transaction for the run's success, its version and the gate's verdict: a worker lost before it commits
    # leaves the run to be taken over; after it, nothing is left half-done (a ready version nobody activated).
    with transaction.atomic():
        # Only the worker that still holds the run may register its version: one taken over writes nothing.
        if not run.finish(
            JobStatus.SUCCEEDED,
            losses=result.history.losses,
            evaluations=result.history.evaluations,
            device=result.device,
            step=F("total_steps"),
        ):
            raise JobLost(f"training run {run.job.pk} was taken over before it finished")
        version.metrics = metrics
        version.artifact_path = str(result.output_dir)
        version.status = ModelVersionStatus.READY
        version.warm_started_from = warm if result.warm_started else None
        version.activation_note = note
        version.held_back = not activate
        version.save()
        if activate:
            model_version_activate(version_id=version.pk, user=None, note=note, force=True)


def fast_version_fit(*, user: User | None = None) -> ModelVersion:
    """Fit a fast head on the stored embeddings of every verified product outside the frozen test set, register it as
    a version (method `fast`), measure it on the test set and let the gate decide, as for a fine-tuned version: the
    better one serves. Seconds on a CPU; one transaction, so a worker lost half-way leaves nothing behind."""
    from mlcore.engine.fasthead import fit

    usable = {category: n for category, n in label_counts().items() if n >= MIN_LABELS_PER_CATEGORY}
    if len(usable) < 2:
        raise ApplicationError(
            f"A fast head needs verified labels in at least 2 categories ({MIN_LABELS_PER_CATEGORY} each); "
            f"there are {len(usable)}."
        )
    prior_weight = settings.MLCORE_FAST_HEAD_PRIOR_WEIGHT
    try:
        with transaction.atomic():
            number = (ModelVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
            version = ModelVersion.objects.create(
                number=number,
                base_model=base_model_path(),
                method=TrainingMethod.FAST,
                status=ModelVersionStatus.READY,
                hyperparameters={"prior_weight": prior_weight},
                created_by=user,
            )
            train_split, validation, test = splits(version)
            # No early stopping to validate: the validation share trains too.
            ids, texts, labels = (
                train_split.ids + validation.ids,
                train_split.texts + validation.texts,
                train_split.labels + validation.labels,
            )
            embeddings = product_embeddings(ids, texts)
            classes = sorted(set(labels))
            head = fit(embeddings, labels, prior=zeroshot_prior(classes, embeddings), prior_weight=prior_weight)
            output = Path(settings.MLCORE_ARTIFACT_DIR) / f"v{number}"
            head.save(output)
            metrics = model_version_evaluate(artifact=output, test=test)
            metrics["temperature"] = head.temperature
            active = ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).first()
            activate, note = model_version_gate(metrics, active, test)
            version.metrics = metrics
            version.artifact_path = str(output)
            version.data_snapshot = {
                "counts": class_counts(labels + test.labels),
                "train_ids": ids,
                "validation_ids": [],
                "test_ids": test.ids,
            }
            version.activation_note = note
            version.held_back = not activate
            version.save()
            if activate:
                model_version_activate(version_id=version.pk, user=None, note=note, force=True)
    except IntegrityError:
        raise ConflictError("Another version was registered at the same moment; try again.") from None
    logger.info("fast head v%s fitted on %s labels in %s classes: %s", number, len(ids), len(classes), note)
    version.refresh_from_db()
    return version
