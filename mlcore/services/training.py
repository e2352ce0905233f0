"""Training runs: start one, run it on a worker, evaluate on the frozen test set, and activate through the gate."""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from catalog.models import Product
from core.broker import broker_check
from core.errors import ApplicationError, ConflictError, NotFoundError
from core.jobs import JobCancelled, JobLost, JobRun, describe_failure, job_cancel, job_claim, job_enqueue_on_commit
from core.models import UNFINISHED, Job, JobStatus
from core.tasks import RETRYABLE
from mlcore.models import (
    ModelVersion,
    ModelVersionStatus,
    Prediction,
    RescoreJob,
    TestSetItem,
    TrainingMethod,
    TrainingRun,
)
from mlcore.services.common import base_model_path, category_hierarchy
from mlcore.services.rescoring import scoring_caches_clear
from mlcore.signals import predictions_switched

logger = logging.getLogger(__name__)

MIN_LABELS_PER_CATEGORY = 2
# A new version may trail the active one by this much macro-F1 on the test set and still be "not worse": below it,
# differences are noise at the test-set sizes of a young catalog (a few hundred items).
GATE_TOLERANCE = 0.005


def _share(product_id: int, salt: str) -> float:
    return int(hashlib.sha256(f"{salt}:{product_id}".encode()).hexdigest()[:8], 16) / 2**32


@dataclass
class Split:
    ids: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


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
    if method not in TrainingMethod.values:
        raise ApplicationError(f"Unknown method '{method}': use full or lora.")
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
    counts = _label_counts()
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
    return run


def training_run_cancel(*, run_id: int) -> TrainingRun:
    """A queued run ends at once, a running one at its next step, one whose worker is gone here."""
    return job_cancel(TrainingRun, run_id)


def training_run_enqueue(run_id: int) -> None:
    from mlcore.tasks import training_run_task

    training_run_task.delay(run_id)


def training_run_ended(run: Job) -> None:
    """A run that ended without success: its version failed, and its checkpoints have nothing left to resume."""
    assert isinstance(run, TrainingRun)
    shutil.rmtree(_checkpoints_of(run.model_version_id), ignore_errors=True)
    ModelVersion.objects.filter(pk=run.model_version_id, status=ModelVersionStatus.TRAINING).update(
        status=ModelVersionStatus.FAILED, activation_note=run.error or run.status
    )


def _label_counts() -> dict[int, int]:
    from django.db.models import Count

    rows = Product.objects.filter(is_verified=True, category__isnull=False).values("category_id")
    return {row["category_id"]: row["n"] for row in rows.annotate(n=Count("id"))}


def _splits(version: ModelVersion) -> tuple[Split, Split, Split]:
    """All verified labels: the frozen test set (extended with a share of labels never seen before), then
    validation and training from the rest."""
    from mlcore.engine.text import product_text
    from mlcore.engine.types import ProductText

    verified = list(
        Product.objects.filter(is_verified=True, category__isnull=False)
        .values_list("id", "title", "brand", "description", "category_id")
        .order_by("id")
    )
    test_ids = set(TestSetItem.objects.values_list("product_id", flat=True))
    new_test = [pk for pk, *_ in verified if pk not in test_ids and _share(pk, "test") < settings.MLCORE_TEST_SHARE]
    TestSetItem.objects.bulk_create(
        [TestSetItem(product_id=pk, added_for=version) for pk in new_test], ignore_conflicts=True
    )
    test_ids.update(new_test)
    train, validation, test = Split(), Split(), Split()
    for pk, title, brand, description, category_id in verified:
        text = product_text(ProductText(title=title, brand=brand, description=description))
        if pk in test_ids:
            split = test
        elif _share(pk, f"validation-{version.number}") < settings.MLCORE_VALIDATION_SHARE:
            split = validation
        else:
            split = train
        split.ids.append(pk)
        split.texts.append(text)
        split.labels.append(str(category_id))
    return train, validation, test


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

    train_split, validation, test = _splits(version)
    counts = _counts(train_split.labels + validation.labels + test.labels)
    if not validation.ids:  # tiny catalogs: validate on the training data rather than not at all
        validation = train_split
    active = ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).first()
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
        warm_start_from=active.artifact_path
        if active and active.artifact_path and hp.get("warm_start", True)
        else None,
        on_progress=on_progress,
        should_stop=should_stop,
    )
    metrics = model_version_evaluate(artifact=result.output_dir, test=test)
    metrics["validation"] = result.best_validation
    metrics["temperature"] = result.temperature
    activate, note = _gate(metrics, active, test)
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
        version.warm_started_from = active if result.warm_started else None
        version.activation_note = note
        version.held_back = not activate
        version.save()
        if activate:
            model_version_activate(version_id=version.pk, user=None, note=note, force=True)


def _counts(labels: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return counts


def model_version_evaluate(*, artifact: str | Path, test: Split) -> dict[str, Any]:
    """The version's test-set metrics (labels are category ids; accuracy per level uses the tree)."""
    import numpy as np

    from mlcore.engine.calibration import uncalibrated
    from mlcore.engine.evaluation import evaluate, expected_calibration_error
    from mlcore.engine.prediction import Classifier

    classifier = Classifier(artifact, device=settings.MLCORE_DEVICE, max_length=settings.MLCORE_MAX_LENGTH)
    if not test.ids:
        return {"test": {"n": 0}}
    predictions = classifier.predict(test.texts, top_k=1, keep_probabilities=True)
    probabilities = predictions.probabilities
    assert probabilities is not None
    index = {label: i for i, label in enumerate(classifier.labels)}
    # A test label the model never saw counts as wrong: an extra all-zero column keeps it in the report.
    labels = list(classifier.labels)
    unseen = sorted(set(test.labels) - set(index))
    for label in unseen:
        index[label] = len(labels)
        labels.append(label)
    if unseen:
        probabilities = np.hstack([probabilities, np.zeros((len(test.ids), len(unseen)), dtype=np.float32)])
    hierarchy, _ = category_hierarchy()
    truth = [index[label] for label in test.labels]
    metrics = evaluate(truth, probabilities, labels, hierarchy)
    # What calibration bought, on the same test items: the probabilities before scaling follow from the scaled ones.
    before = uncalibrated(probabilities, classifier.temperature)
    metrics["ece_uncalibrated"] = expected_calibration_error(
        before.max(axis=1), before.argmax(axis=1) == np.asarray(truth)
    )
    return {"test": metrics, "test_size": len(test.ids)}


def _gate(metrics: dict[str, Any], active: ModelVersion | None, test: Split) -> tuple[bool, str]:
    """Whether the new version becomes active, and why: not worse than the active one on the same frozen test set
    (macro-F1 within GATE_TOLERANCE), and no class with enough test items forgotten (its F1 down by more than
    MLCORE_GATE_CLASS_MARGIN): continual learning must not trade a category away for the average."""
    new = metrics.get("test", {})
    new_f1 = new.get("macro_f1", 0.0)
    if active is None or not active.artifact_path:
        return True, f"First version: test macro-F1 {new_f1:.4f}."
    old = model_version_evaluate(artifact=active.artifact_path, test=test)["test"]
    active_f1 = old.get("macro_f1", 0.0)
    # Kept with the version: its page compares class by class with the version it was measured against.
    metrics["comparison"] = {
        "against": active.number,
        "accuracy": old.get("accuracy"),
        "macro_f1": active_f1,
        "per_class": {
            label: {"f1-score": row.get("f1-score", 0.0), "support": row.get("support", 0)}
            for label, row in old.get("per_class", {}).items()
        },
    }
    comparison = f"test macro-F1 {new_f1:.4f} vs active v{active.number} {active_f1:.4f} on the same {len(test.ids)}"
    forgotten = class_regressions(new.get("per_class", {}), old.get("per_class", {}))
    if new_f1 + GATE_TOLERANCE < active_f1:
        return False, f"Not activated: {comparison} items. An admin may activate it anyway, giving a reason."
    if forgotten:
        shown = "; ".join(
            f"{label}: F1 {before:.2f} -> {after:.2f} (n={n})" for label, before, after, n in forgotten[:5]
        )
        return False, (
            f"Not activated: {comparison} items, but {len(forgotten)} class(es) regressed: {shown}. "
            "An admin may activate it anyway, giving a reason."
        )
    return True, f"Activated: {comparison} items."


def class_regressions(
    new: dict[str, dict[str, float]], old: dict[str, dict[str, float]]
) -> list[tuple[str, float, float, int]]:
    """Classes with at least MLCORE_GATE_CLASS_MIN_SUPPORT test items whose F1 fell by more than
    MLCORE_GATE_CLASS_MARGIN: (label, F1 before, F1 after, support), worst first."""
    out = []
    for label, before in old.items():
        support = int(before.get("support", 0))
        after = new.get(label, {}).get("f1-score", 0.0)
        if (
            support >= settings.MLCORE_GATE_CLASS_MIN_SUPPORT
            and before["f1-score"] - after > settings.MLCORE_GATE_CLASS_MARGIN
        ):
            out.append((label, float(before["f1-score"]), float(after), support))
    return sorted(out, key=lambda row: row[2] - row[1])


def model_version_activate(
    *, version_id: int, user: User | None, note: str = "", force: bool = False, reason: str = ""
) -> ModelVersion:
    """Make a ready (or earlier) version the active one. A version the gate held back needs `force` and a reason,
    recorded with the admin's name apart from the gate's note. Rolling back to a version whose stored predictions
    still cover the catalog serves them at once and scores only the products added or edited since; otherwise the
    catalog is re-scored with it."""
    from mlcore.services.rescoring import rescore_job_start

    if user is not None:
        broker_check()  # an admin's click: a clear 503 before anything changes
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().filter(pk=version_id).first()
        if version is None:
            raise NotFoundError(f"No model version with id {version_id}.")
        if version.status == ModelVersionStatus.ACTIVE:
            return version
        if version.status not in (ModelVersionStatus.READY, ModelVersionStatus.ARCHIVED):
            raise ConflictError(f"v{version.number} is {version.status}: only a ready version can be activated.")
        if version.held_back and not force:
            raise ConflictError(f"{version.activation_note} Pass force, with a reason, to override.")
        if version.held_back and user is not None and not reason.strip():
            raise ApplicationError(
                f"v{version.number} was held back by the gate: say why you promote it anyway (the reason is kept)."
            )
        ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).update(status=ModelVersionStatus.ARCHIVED)
        # Re-scoring with an older version is moot now: its remaining chunks return at once.
        RescoreJob.objects.filter(model_version__isnull=False, status__in=UNFINISHED).exclude(
            model_version=version
        ).update(status=JobStatus.CANCELLED, error="Superseded by a newer version.", finished_at=timezone.now())
        version.status = ModelVersionStatus.ACTIVE
        version.activated_at = timezone.now()
        version.activated_by = user
        if user is not None and version.held_back:
            version.override_reason = f"{user.get_username()}: {reason.strip()}"[:2000]
            logger.warning("model version v%s promoted over the gate by %s: %s", version.number, user, reason)
        version.activation_note = note or version.activation_note
        version.save()
        if _serve_stored(version):
            return version
        rescore_job_start(version_id=version.pk)
    return version


def _serve_stored(version: ModelVersion) -> bool:
    """A rollback: when the version's stored predictions cover every product but a few (at most 10 %), they serve
    again at once, and the products added or edited since they were written are scored on their own."""
    from mlcore.services.scoring import scoring_backlog_add

    stored = Prediction.objects.filter(model_version=version)
    total = Product.objects.count()
    have = stored.count()
    if not total or have < 0.9 * total:
        return False
    written = stored.aggregate(latest=Max("created_at"))["latest"]
    stale = set(Product.objects.filter(updated_at__gt=written).values_list("pk", flat=True)) if written else set()
    missing = set(Product.objects.exclude(pk__in=stored.values("product_id")).values_list("pk", flat=True))
    ModelVersion.objects.filter(is_serving=True).exclude(pk=version.pk).update(is_serving=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_serving=True)
    queued = scoring_backlog_add(product_ids=stale | missing)
    logger.info(
        "v%s serves its stored predictions again; %s product(s) added or edited since queued", version.number, queued
    )
    predictions_switched.send(sender=ModelVersion, version_id=version.pk)
    return True
