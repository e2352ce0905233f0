"""Listeners for what catalog announces (the arrow stays mlcore -> catalog: catalog sends, mlcore listens)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from catalog.signals import products_changed


@receiver(products_changed, dispatch_uid="mlcore.score_changed_products")
def score_changed_products(sender: Any, product_ids: list[int], **kwargs: Any) -> None:
    from mlcore.services.scoring import scoring_backlog_add

    scoring_backlog_add(product_ids=product_ids)
