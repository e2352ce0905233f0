"""What mlcore announces to the apps above it (labeling listens; mlcore never imports labeling)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that ends a label audit successfully, with `audit` (a LabelAudit): listeners write
# rows (review items) that commit with the audit's findings or not at all.
label_issues_found = Signal()

# Sent inside the transaction in which a model version's completed re-scoring makes its predictions serve, with
# `version_id` (None: the zero-shot suggestions, before any version serves): listeners record their follow-up
# (labeling queues the version's reclassification build) in it.
predictions_switched = Signal()
