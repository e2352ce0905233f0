"""The one job lifecycle every long job of Shelfwise shares (imports, training runs, re-scoring, label checks).

A job is a row the UI polls. A worker claims it (core/jobs.py), says it is alive with a heartbeat while it runs, and
finishes it. A job whose worker is gone is taken over by the next delivery of its task or re-sent by the reaper,
and fails with its cause after JOBS_MAX_ATTEMPTS claims, so that no job stays `running` for good.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("queued")
    RUNNING = "running", _("running")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")
    CANCELLED = "cancelled", _("cancelled")


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING)


class Lease(models.Model):
    """Who is working on this row now. `claim_token` changes with every claim: a worker writes its heartbeat and its
    result only while the token is still the one it got, so a worker that was taken over can never finish the job
    beside its successor."""

    attempts = models.PositiveIntegerField(default=0)
    # What the liveness check reads: host, pid and its start time, Celery node and task id (core/jobs.py).
    claimant = models.JSONField(default=dict, blank=True)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def claimed_by(self) -> str:
        """The claimant for people: "celery@host (pid 123)", or "" when nobody claimed it."""
        claimant = self.claimant or {}
        if not claimant:
            return ""
        return f"{claimant.get('node') or claimant.get('host', '?')} (pid {claimant.get('pid', '?')})"


class Job(Lease):
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # When its task was last sent to the broker: the reaper re-sends a job whose message was lost, not one whose
    # message is simply waiting its turn.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    def progress(self) -> tuple[int, int]:
        """(done, total) in the job's own unit (steps, bytes, products); each kind says what it counts."""
        return (0, 0)

    @property
    def percent(self) -> int:
        if self.status == JobStatus.SUCCEEDED:
            return 100
        done, total = self.progress()
        return min(100, int(100 * done / total)) if total else 0

    @property
    def eta_seconds(self) -> int | None:
        """Seconds left at the pace so far (None until there is a pace: not running, nothing done yet). A resumed job
        counts from its latest start, so its pace is what this worker does."""
        if self.status != JobStatus.RUNNING or self.started_at is None:
            return None
        done, total = self.progress()
        if not total or done <= 0 or done >= total:
            return None
        elapsed = (timezone.now() - self.started_at).total_seconds()
        return max(0, int(elapsed * (total - done) / done))
