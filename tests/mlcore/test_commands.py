from __future__ import annotations

import io

from django.core.management import call_command

from mlcore.models import LabelAudit


def test_audit_labels_command_runs_here_and_reports(ml_settings, labelled_catalog):
    out = io.StringIO()
    call_command("audit_labels", stdout=out)
    assert "20 labels checked (0 in categories too small to check)" in out.getvalue()
    assert LabelAudit.objects.get().status == "succeeded"


def test_audit_labels_command_queues_in_the_background(
    ml_settings, labelled_catalog, django_capture_on_commit_callbacks
):
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("audit_labels", "--background", stdout=out)
    assert "Queued label check #" in out.getvalue()
    assert len(callbacks) == 1
