"""Audits of reclassification groups: k random proposals of a group answered blind (the product, never the
proposal) by the manager, or by annotators through a queue of their own; labeling/selectors.audit_verdicts reads
what they measured."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from catalog.models import Category
from core.errors import ApplicationError, ConflictError, NotFoundError
from labeling.models import (
    OPEN_PROPOSAL_STATES,
    AuditAudience,
    LabelingQueue,
    ProposalAudit,
    ProposalAuditItem,
    ReclassificationProposal,
)
from labeling.selectors import proposal_group_q
from labeling.services.reclassification import open_batch, proposal_group_clean


def audit_start(
    *, batch_id: int, group: dict[str, Any], user: User, audience: str = AuditAudience.MANAGER, size: int | None = None
) -> ProposalAudit:
    """k random open proposals of one group, to be answered blind: by the manager on the audit page, or by the
    annotators through a labeling queue of just these products."""
    batch = open_batch(batch_id)
    group = proposal_group_clean(group)
    if "to" not in group or "kind" not in group:
        raise ApplicationError("An audit is of one group: give its kind, from and to.")
    if audience not in AuditAudience.values:
        raise ApplicationError(f"Unknown audience '{audience}': use {' or '.join(AuditAudience.values)}.")
    size = size if size is not None else int(settings.RECLASSIFY_AUDIT_SIZE)
    if not 1 <= size <= 500:
        raise ApplicationError("An audit shows between 1 and 500 products.")
    candidates = ReclassificationProposal.objects.filter(batch=batch, state__in=OPEN_PROPOSAL_STATES).filter(
        proposal_group_q(group)
    )
    # A random sample, so that the measured precision speaks for the whole group (ORDER BY random() reads the group
    # once: groups are thousands of rows, not millions).
    sample = list(candidates.order_by("?").values_list("pk", flat=True)[:size])
    if not sample:
        raise ApplicationError("This group has no open proposal to audit.")
    with transaction.atomic():
        audit = ProposalAudit.objects.create(batch=batch, group=group, audience=audience, created_by=user)
        ProposalAuditItem.objects.bulk_create(ProposalAuditItem(audit=audit, proposal_id=pk) for pk in sample)
        if audience == AuditAudience.ANNOTATORS:
            LabelingQueue.objects.create(
                name=f"Audit {audit.pk}: batch {batch.pk}, {len(sample)} products", audit=audit, created_by=user
            )
    return audit


def audit_answer(*, item_id: int, user: User, category_id: int | None) -> ProposalAuditItem:
    """The manager's blind answer for one audited product (None: cannot tell). An item answered already is not
    answered again (a second tab, a stale form): the first answer stands."""
    with transaction.atomic():
        item = ProposalAuditItem.objects.select_for_update().filter(pk=item_id).first()
        if item is None:
            raise NotFoundError(f"No audit item with id {item_id}.")
        if item.answered_at is not None:
            raise ConflictError("This product was answered already; the audit moved on.")
        if category_id is not None and not Category.objects.filter(pk=category_id).exists():
            raise ApplicationError(f"No category with id {category_id}.")
        item.answer_id = category_id
        item.answered_by = user
        item.answered_at = timezone.now()
        item.save(update_fields=["answer", "answered_by", "answered_at"])
    return item
