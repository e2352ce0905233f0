"""A version trained on the tiny encoder the way a worker would, for the services' tests."""

from __future__ import annotations

from core.models import JobStatus
from mlcore.models import ModelVersion
from mlcore.services.training import training_run_execute, training_run_start


def train_version(manager, **kwargs) -> ModelVersion:
    run = training_run_start(
        user=manager, epochs=kwargs.pop("epochs", 3), learning_rate=5e-3, batch_size=8, max_length=16, **kwargs
    )
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    return ModelVersion.objects.get(pk=run.model_version_id)
