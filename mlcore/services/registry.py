"""The versions: evaluate one on the frozen test set, the gate that decides whether it serves, activation and
rollback, and retention of stored predictions."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from catalog.models import Product
from core.broker import broker_check
from core.errors import ApplicationError, ConflictError, NotFoundError
from core.models import UNFINISHED, JobStatus
from mlcore.models import (
    ModelVersion,
    ModelVersionStatus,
    Prediction,
    RescoreJob,
)
from mlcore.services.datasets import Split, category_hierarchy
from mlcore.services.embeddings import product_embeddings
from mlcore.services.rescoring import rescore_job_start
from mlcore.services.scoring import scoring_backlog_add, zeroshot_prior
from mlcore.signals import predictions_switched

logger = logging.getLogger(__name__)


# A new version may trail the active one by this much macro-F1 on the test set and still be "not worse": below it,
# differences are noise at the test-set sizes of a young catalog (a few hundred items).
GATE_TOLERANCE = 0.005


def model_version_evaluate(*, artifact: str | Path, test: Split) -> dict[str, Any]:
    """The version's test-set metrics (labels are category ids; accuracy per level uses the tree)."""
    import numpy as np

    from mlcore.engine.calibration import uncalibrated
    from mlcore.engine.evaluation import evaluate, expected_calibration_error
    from mlcore.engine.fasthead import FastHead, is_fast_head
    from mlcore.engine.prediction import Classifier

    if not test.ids:
        return {"test": {"n": 0}}
    model: Any
    if is_fast_head(artifact):
        # A fast head scores the test items' stored embeddings (embedded now if they have none).
        model = FastHead.load(artifact)
        embeddings = product_embeddings(test.ids, test.texts)
        predictions = model.predict(embeddings, zeroshot_prior(model.labels, embeddings), keep_probabilities=True)
    else:
        model = Classifier(artifact, device=settings.MLCORE_DEVICE, max_length=settings.MLCORE_MAX_LENGTH)
        predictions = model.predict(test.texts, top_k=1, keep_probabilities=True)
    probabilities = predictions.probabilities
    assert probabilities is not None
    index = {label: i for i, label in enumerate(model.labels)}
    # A test label the model never saw counts as wrong: an extra all-zero column keeps it in the report.
    labels = list(model.labels)
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
    before = uncalibrated(probabilities, model.temperature)
    metrics["ece_uncalibrated"] = expected_calibration_error(
        before.max(axis=1), before.argmax(axis=1) == np.asarray(truth)
    )
    return {"test": metrics, "test_size": len(test.ids)}


def model_version_gate(metrics: dict[str, Any], active: ModelVersion | None, test: Split) -> tuple[bool, str]:
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


def predictions_prune(*, keep: int | None = None, chunk: int = 20_000) -> int:
    """Delete the stored predictions of versions beyond the serving one, the active one and the `keep`
    (MLCORE_KEEP_VERSIONS) most recent others: a rollback to those serves at once, to an older one re-scores.
    Deleted a chunk at a time, so that one transaction never holds millions of rows. Returns how many."""
    keep = settings.MLCORE_KEEP_VERSIONS if keep is None else keep
    kept = set(
        ModelVersion.objects.filter(Q(is_serving=True) | Q(status=ModelVersionStatus.ACTIVE)).values_list(
            "pk", flat=True
        )
    )
    others = ModelVersion.objects.exclude(pk__in=kept).order_by("-number").values_list("pk", flat=True)
    kept |= set(others[:keep])
    deleted = 0
    while True:
        ids = list(
            Prediction.objects.filter(model_version__isnull=False)
            .exclude(model_version_id__in=kept)
            .values_list("pk", flat=True)[:chunk]
        )
        if not ids:
            break
        deleted += Prediction.objects.filter(pk__in=ids).delete()[0]
    if deleted:
        logger.info("pruned %s stored predictions of versions no longer kept", deleted)
    return deleted
