"""What mlcore announces to the apps above it (labeling listens; mlcore never imports labeling)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after a label audit finished, outside its transaction, with `audit` (a LabelAudit).
label_issues_found = Signal()

# Sent once a model version's re-scoring has completed and its predictions serve (after the commit), with
# `version_id`. labeling builds the version's reclassification proposals from it.
predictions_switched = Signal()
