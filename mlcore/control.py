"""A remote-control command every worker answers for the dashboard's workers panel: its queues, the tasks it runs
and its device, reported by the worker itself (the web process never imports torch)."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_ready
from celery.worker.control import inspect_command
from django.conf import settings

# Filled when the worker is ready: asking torch about the device takes a second or two the first time, longer than
# a dashboard waits for a reply.
_device: dict[str, Any] = {}


def _describe() -> dict[str, Any]:
    if not _device:
        from mlcore.engine.device import describe_device

        _device.update(describe_device(settings.MLCORE_DEVICE))
    return _device


@worker_ready.connect
def _warm(**kwargs: Any) -> None:
    _describe()


@inspect_command()
def shelfwise_status(state: Any) -> dict[str, Any]:
    from celery.worker import state as worker_state

    queues = sorted(queue.name for queue in state.consumer.task_consumer.queues)
    tasks = sorted(request.name.rsplit(".", 1)[-1] for request in worker_state.active_requests)
    return {"queues": queues, "tasks": tasks, **_describe()}
