"""A remote-control command every worker answers for the dashboard's workers panel: its queues, the tasks it runs
and its device, reported by the worker itself (the web process never imports torch)."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_ready
from celery.worker.control import inspect_command
from django.conf import settings

# Filled when the worker is ready: asking torch about the device takes a second or two the first time, longer than
# a dashboard waits for a reply.
_device: dict[str, Any] = {}
logger = logging.getLogger(__name__)


def _describe() -> dict[str, Any]:
    if not _device:
        from mlcore.engine.device import describe_device

        _device.update(describe_device(settings.MLCORE_DEVICE))
    return _device


def missing_fast_queue(queues: set[str]) -> str | None:
    """A warning for a worker that re-scores (`scoring`) but does not take the fast queue: a `-Q` list from before
    that queue existed. Fast versions and new products' suggestions then wait for some other worker, or for ever."""
    fast = str(settings.MLCORE_FAST_QUEUE)
    if "scoring" in queues and fast not in queues:
        return (
            f"This worker takes 'scoring' but not '{fast}': add {fast} to its -Q list (README, Scaling out), or the "
            "fast versions labels make and new products' suggestions wait until another worker takes that queue."
        )
    return None


@worker_ready.connect
def _warm(sender: Any = None, **kwargs: Any) -> None:
    queues = {queue.name for queue in getattr(getattr(sender, "task_consumer", None), "queues", None) or []}
    warning = missing_fast_queue(queues)
    if warning:
        logger.warning(warning)
    _describe()


@inspect_command()
def shelfwise_status(state: Any) -> dict[str, Any]:
    from celery.worker import state as worker_state

    queues = sorted(queue.name for queue in state.consumer.task_consumer.queues)
    tasks = sorted(request.name.rsplit(".", 1)[-1] for request in worker_state.active_requests)
    return {"queues": queues, "tasks": tasks, **_describe()}
