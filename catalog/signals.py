"""What catalog announces to the apps above it (labeling listens; catalog never imports labeling)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that retires categories (a merge, an archive, a new release's mapping file), with
# `moves` ({retired category id: its replacement's id, or None when there is none}), `reason` (one line for people)
# and `actor`: listeners record their follow-up in the same transaction (labeling queues proposals to move the
# products filed under them).
categories_retired = Signal()

# Sent inside the transaction that creates products or changes their text (title, brand, description, attributes:
# what a model reads), with `product_ids`: mlcore queues them for scoring, so that a new or edited product has
# suggestions within a minute instead of at the next full re-score.
products_changed = Signal()
