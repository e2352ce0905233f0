"""Claim, heartbeat, finish, cancel and reap: the lifecycle of every core Job, written once.

The rule a redelivered task follows (job_claim): a queued job is taken; a running one is taken over when its
heartbeat is stale, when this is the same delivery coming back (its earlier run lost its worker: the hard time limit
is shorter than the broker's visibility timeout, so a live run's message is never handed out twice), or when the
worker that claimed it is gone (a process on this host that no longer exists, or a Celery node that answers and is
not running the task). Every claim counts an attempt; the claim after JOBS_MAX_ATTEMPTS fails the job with the cause.

Each app registers its job kinds (job_kind_register, from its AppConfig.ready) with how to send the job's task
again, so the reaper (jobs_reap, a Celery beat task) can recover any of them without core importing an app.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from time import monotonic
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, connections, models, transaction
from django.utils import timezone

from core.broker import queue_length
from core.errors import ConflictError, NotFoundError
from core.models import FINISHED, UNFINISHED, Job, JobStatus, Lease
from core.tasks import current_delivery

logger = logging.getLogger(__name__)

J = TypeVar("J", bound=Job)
L = TypeVar("L", bound=Lease)


class JobCancelled(Exception):
    """Someone asked the job to stop: the worker stops at its next step."""


class JobLost(Exception):
    """This worker no longer holds the job (it was taken over or ended without it): stop without writing."""


@dataclass(frozen=True)
class JobKind:
    model: type[Job]
    # The Celery queue its tasks go to: the reaper re-sends only when that queue holds nothing (the message was
    # lost), not while it waits its turn.
    queue: str
    # Send the job's task(s) again (for a chunked job: its chunks not done and not held by a live worker).
    enqueue: Callable[[int], Any]
    # Clean up after the lifecycle ended the job without its worker (failed after its attempts, or cancelled). It runs
    # in the transaction that ends the job, so no reader sees the job ended and its clean-up not yet done.
    on_ended: Callable[[Job], None] | None = None
    # A chunked job is not claimed as a whole: its chunks are (each a Lease), and the job is idle when its heartbeat
    # (the last chunk's) is stale.
    chunked: bool = False
    # Where one job's tasks go, when that depends on the job (a fast version's re-score goes to `fast`, not to
    # `queue`): the reaper then looks at that queue, or a lost job would wait for a busy one to empty.
    queue_of: Callable[[Job], str] | None = None


_KINDS: dict[type[Job], JobKind] = {}


def job_kind_register(kind: JobKind) -> None:
    _KINDS[kind.model] = kind


def job_kinds() -> list[JobKind]:
    return list(_KINDS.values())


def _kind(model: type[Job]) -> JobKind | None:
    return _KINDS.get(model)


# --- who is working on it ---------------------------------------------------------------------------------------


def _process_started(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return None


def claimant_here() -> dict[str, Any]:
    """This process, as a claimant: enough to tell later whether it is still alive, here or from another host."""
    delivery = current_delivery()
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "pid": pid,
        "started": _process_started(pid),
        "node": delivery.node if delivery else "",
        "task": delivery.task_id if delivery else "",
    }


def claimant_gone(claimant: dict[str, Any]) -> bool | None:
    """True when the claimant is surely gone, False when it is surely alive, None when nobody can tell (a remote
    solo-pool worker busy with a task does not answer; then only its heartbeat can say)."""
    if not claimant:
        return True
    if claimant.get("host") == socket.gethostname():
        started = _process_started(int(claimant.get("pid", 0)))
        # A pid can be reused: the same pid with another start time is another process.
        recorded = claimant.get("started")
        return started is None or bool(recorded and abs(started - float(recorded)) > 1)
    node, task = claimant.get("node"), claimant.get("task")
    if not node or not task:
        return None
    from celery import current_app

    try:
        reply = current_app.control.inspect(destination=[node], timeout=1.0).active()
    except Exception as exc:  # broker trouble: cannot tell
        logger.warning("could not ask %s whether it runs %s: %s", node, task, exc)
        return None
    if not reply or node not in reply:
        return None
    return task not in {active.get("id") for active in reply[node]}


def _stale(lease: Lease, now: Any) -> bool:
    limit = timedelta(seconds=settings.JOBS_STALE_AFTER_SECONDS)
    return lease.heartbeat_at is None or now - lease.heartbeat_at > limit


def takeover_reason(lease: Lease, now: Any | None = None) -> str | None:
    """Why this delivery may take a running lease over, or None when its claimant is alive."""
    now = now or timezone.now()
    claimant = lease.claimant or {}
    if claimant_gone(claimant):
        return f"its worker {lease.claimed_by or '?'} is gone"
    if _stale(lease, now):
        # A live worker keeps its heartbeat fresh from a thread of its own (JobRun.keepalive): stale means dead or
        # wedged, on a host nobody here can ask.
        seen = lease.heartbeat_at.isoformat(timespec="seconds") if lease.heartbeat_at else "never"
        return f"its worker {lease.claimed_by or '?'} stopped reporting (last heartbeat {seen})"
    delivery = current_delivery()
    if delivery and delivery.task_id and claimant.get("task") == delivery.task_id:
        return f"its worker {lease.claimed_by or '?'} was lost and the broker delivered the task again"
    return None


def _claim_fields(lease: Lease, now: Any) -> None:
    lease.attempts += 1
    lease.claimant = claimant_here()
    lease.claim_token = uuid.uuid4()
    lease.heartbeat_at = now


def _give_up_message(attempts: int, reason: str) -> str:
    return (
        f"Gave up after {attempts} attempt(s): {reason}. The worker running it was lost each time (killed, out of "
        f"memory, past its time limit, or restarted); see that worker's log. Start it again when the cause is fixed."
    )


def describe_failure(exc: BaseException, *, what: str) -> str:
    """A failed job's error, naming the cause a person can act on."""
    from celery.exceptions import SoftTimeLimitExceeded

    if isinstance(exc, SoftTimeLimitExceeded):
        return f"{what} ran past its time limit and was stopped (JOBS_*_TIME_LIMIT settings)."
    if isinstance(exc, MemoryError):
        return f"{what} ran out of memory."
    return f"{what} stopped on an internal error: {exc.__class__.__name__}: {exc}"


# --- the lifecycle ----------------------------------------------------------------------------------------------


class JobRun:
    """A claimed job in the hands of this worker: beat() says it is alive (throttled) and raises JobCancelled when
    someone asked it to stop, JobLost when it was taken over; finish() ends it only if it is still ours."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.model = type(job)
        self.token = job.claim_token
        self._last = monotonic()

    def _ours(self) -> models.QuerySet[Any]:
        return self.model._default_manager.filter(pk=self.job.pk, status=JobStatus.RUNNING, claim_token=self.token)

    def beat(self, *, force: bool = False, **fields: Any) -> None:
        if not (force or fields) and monotonic() - self._last < settings.JOBS_HEARTBEAT_SECONDS:
            return
        self._last = monotonic()
        if not self._ours().update(heartbeat_at=timezone.now(), **fields):
            raise JobLost(f"{self.model.__name__} {self.job.pk} is no longer ours")
        if self.model._default_manager.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise JobCancelled()

    @contextmanager
    def keepalive(self) -> Iterator[None]:
        """Keep the heartbeat fresh from a thread while the work runs long stretches without a step to report
        (an evaluation, a checkpoint, a cross-validation), so that only a dead or wedged worker goes stale."""
        stop = threading.Event()

        def loop() -> None:
            try:
                while not stop.wait(settings.JOBS_HEARTBEAT_SECONDS):
                    try:
                        if not self._ours().update(heartbeat_at=timezone.now()):
                            return  # no longer ours: the main thread finds out at its next beat()
                    except DatabaseError as exc:
                        # The database restarting: beat again next time, on a fresh connection.
                        logger.warning("heartbeat of %s %s: %s", self.model.__name__, self.job.pk, exc)
                        connections.close_all()
            finally:
                connections.close_all()  # this thread's own connections

        thread = threading.Thread(target=loop, name=f"heartbeat-{self.model.__name__}-{self.job.pk}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)

    def finish(self, status: str, *, error: str = "", **fields: Any) -> bool:
        """End the job (in the caller's transaction, if any). False: it was no longer ours, nothing was written."""
        return bool(self._ours().update(status=status, error=error, finished_at=timezone.now(), **fields))


def job_claim(model: type[J], pk: int) -> JobRun | None:
    """Take the job for this worker, or None when there is nothing to do: missing, finished, cancelled, alive on
    another worker, or out of attempts (then it is failed here, with the cause)."""
    with transaction.atomic():
        job = model._default_manager.select_for_update().filter(pk=pk).first()
        if job is None:
            logger.warning("%s %s does not exist", model.__name__, pk)
            return None
        if job.status in FINISHED:
            logger.info("%s %s has already ended (%s)", model.__name__, pk, job.status)
            return None
        now = timezone.now()
        reason = "it was queued"
        if job.status == JobStatus.RUNNING:
            found = takeover_reason(job, now)
            if found is None:
                logger.info("%s %s is alive on %s", model.__name__, pk, job.claimed_by)
                return None
            reason = found
            logger.warning("%s %s: taking over, %s", model.__name__, pk, reason)
        if job.cancel_requested:
            _end(job, JobStatus.CANCELLED, "Cancelled.")
        elif job.attempts >= settings.JOBS_MAX_ATTEMPTS:
            _end(job, JobStatus.FAILED, _give_up_message(job.attempts, reason))
        else:
            _claim_fields(job, now)
            job.status = JobStatus.RUNNING
            job.started_at = job.started_at or now
            job.save(
                update_fields=[
                    "status",
                    "attempts",
                    "claimant",
                    "claim_token",
                    "heartbeat_at",
                    "started_at",
                ]
            )
            return JobRun(job)
    return None


def lease_claim(queryset: models.QuerySet[L]) -> tuple[L | None, str]:
    """Claim one lease (a chunk of a job) under the same rule as a job, for one delivery. Returns the claimed row,
    or None with why not: "missing", "done", "alive", or "exhausted" (the caller fails its job with the message)."""
    with transaction.atomic():
        lease = queryset.select_for_update().first()
        if lease is None:
            return None, "missing"
        if getattr(lease, "done", False):
            return None, "done"
        now = timezone.now()
        reason = "it was pending"
        if lease.claim_token is not None:
            found = takeover_reason(lease, now)
            if found is None:
                return None, "alive"
            reason = found
        if lease.attempts >= settings.JOBS_MAX_ATTEMPTS:
            return None, _give_up_message(lease.attempts, reason)
        _claim_fields(lease, now)
        lease.save(update_fields=["attempts", "claimant", "claim_token", "heartbeat_at"])
    return lease, ""


def _end(job: Job, status: str, error: str) -> Job:
    """End a job without its worker (inside the caller's transaction)."""
    job.status, job.error, job.finished_at = status, error, timezone.now()
    job.claim_token = None
    job.save(update_fields=["status", "error", "finished_at", "claim_token"])
    logger.warning("%s %s ended %s: %s", type(job).__name__, job.pk, status, error)
    kind = _kind(type(job))
    if kind is not None and kind.on_ended is not None:
        kind.on_ended(job)
    return job


def job_end(model: type[J], pk: int, *, status: str, error: str) -> bool:
    """End a job that is not finished, whoever holds it (a chunk found a fault that dooms the whole job)."""
    with transaction.atomic():
        job = model._default_manager.select_for_update().filter(pk=pk).first()
        if job is None or job.status in FINISHED:
            return False
        _end(job, status, error)
    return True


def job_cancel(model: type[J], pk: int) -> J:
    """Cancel: a queued job ends at once, a running one at its next step (its worker reads the request), and one
    whose worker is gone ends here. A chunked job ends at once: its chunks check the job before they write."""
    kind = _kind(model)
    with transaction.atomic():
        job = model._default_manager.select_for_update().filter(pk=pk).first()
        if job is None:
            raise NotFoundError(f"No {model._meta.verbose_name} with id {pk}.")
        if job.status in FINISHED:
            raise ConflictError(f"{str(model._meta.verbose_name).capitalize()} #{pk} has already ended ({job.status}).")
        if job.status == JobStatus.QUEUED:
            _end(job, JobStatus.CANCELLED, "Cancelled before it started.")
        elif kind is not None and kind.chunked:
            _end(job, JobStatus.CANCELLED, "Cancelled.")
        elif (reason := takeover_reason(job)) is not None:
            _end(job, JobStatus.CANCELLED, f"Cancelled; {reason}.")
        else:
            job.cancel_requested = True
            job.save(update_fields=["cancel_requested"])
    job.refresh_from_db()
    return job


# --- sending tasks, and the reaper --------------------------------------------------------------------------------


def job_enqueue_on_commit(job: Job, send: Callable[[], Any]) -> None:
    """Send the job's task once the row is committed. A broker that fails right then leaves the job queued with a
    note, and the reaper sends it when the broker is back (callers check the broker first: core.broker)."""
    model, pk = type(job), job.pk

    def publish() -> None:
        try:
            send()
        except Exception as exc:
            logger.error("%s %s could not be queued: %s", model.__name__, pk, exc)
            model._default_manager.filter(pk=pk).update(
                error=f"Not queued yet: the broker did not answer ({exc.__class__.__name__}). "
                "It is sent again when the broker is back."
            )
            return
        model._default_manager.filter(pk=pk).update(enqueued_at=timezone.now())

    transaction.on_commit(publish)


def _queue_is_empty(queue: str) -> bool | None:
    """Whether the broker holds no message waiting in `queue` (None: could not ask)."""
    length = queue_length(queue)
    return None if length is None else length == 0


@dataclass
class ReapReport:
    resent: list[str]
    failed: list[str]
    cancelled: list[str]


def jobs_reap() -> ReapReport:
    """Look at every unfinished job once. A running job whose worker is gone is re-sent (its next delivery takes it
    over and resumes) or, out of attempts, failed; a cancel nobody will read is carried out; a queued or idle job
    whose message was lost (a broker restarted without persistence) is sent again."""
    report = ReapReport(resent=[], failed=[], cancelled=[])
    now = timezone.now()
    quiet = timedelta(seconds=settings.JOBS_REQUEUE_AFTER_SECONDS)
    empty: dict[str, bool | None] = {}  # asked once per queue and pass
    for kind in job_kinds():
        for job in kind.model._default_manager.filter(status__in=UNFINISHED).order_by("pk"):
            name = f"{kind.model.__name__} {job.pk}"
            reason: str | None = None
            if job.status == JobStatus.RUNNING and not kind.chunked:
                reason = takeover_reason(job, now)
                if reason is None:
                    continue
                if job.cancel_requested or job.attempts >= settings.JOBS_MAX_ATTEMPTS:
                    cancel = job.cancel_requested
                    status = JobStatus.CANCELLED if cancel else JobStatus.FAILED
                    error = f"Cancelled; {reason}." if cancel else _give_up_message(job.attempts, reason)
                    if job_end(kind.model, job.pk, status=status, error=error):
                        (report.cancelled if cancel else report.failed).append(name)
                    continue
            else:
                # Queued, or a chunked job: only when nothing has happened for a while (its message may just wait).
                last = max(filter(None, [job.heartbeat_at, job.enqueued_at, job.created_at]))
                if now - last < quiet:
                    continue
            if job.enqueued_at and now - job.enqueued_at < quiet:
                continue  # sent again recently: give that message its time
            queue = kind.queue_of(job) if kind.queue_of is not None else kind.queue
            if queue not in empty:
                empty[queue] = _queue_is_empty(queue)
            if not empty[queue]:
                continue  # messages wait in its queue (maybe its own): a worker will get to them
            logger.warning("reaper: sending %s again (%s)", name, reason or "its message was lost")
            sent = kind.enqueue(job.pk)
            kind.model._default_manager.filter(pk=job.pk).update(enqueued_at=timezone.now())
            if sent != 0:
                report.resent.append(name)
    return report
