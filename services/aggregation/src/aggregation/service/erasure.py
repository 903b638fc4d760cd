"""``privacy.v1``: erase items from aggregation (:func:`apply_erasure`), inside the consumer's unit of work."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aggregation.domain.erasure import erased_customer_label
from aggregation.domain.urgent import urgent_insight_id
from aggregation.store.erasure import ErasureRepository
from aggregation.store.models import erasure_tables, runtime_tables
from feedbackloop.contracts import INSIGHTS, ErasureRequest
from feedbackloop.db import UnitOfWork
from feedbackloop.db.erasures import is_applied, record_applied

__all__ = ["apply_erasure"]


async def apply_erasure(uow: UnitOfWork, request: ErasureRequest) -> list[str] | None:
    """Erase the request's items (and, for a customer, every item of it) from aggregation: the item rows and
    their themes, the urgent-item insights about them (with their retained events: the title names the customer),
    and their ids in other insights' evidence, in closed loops' customers and in item-set tracker links.
    Counters stay as anonymous aggregates; where one is keyed by the
    customer's id, the id is replaced by a label naming the request. Records the request and a tombstone per item.

    A request applied before changes nothing and returns None; otherwise the ids of the items deleted.
    """
    request_id = str(request.request_id)
    if await is_applied(uow.session, erasure_tables, request_id):
        return None
    repo = ErasureRepository(uow.session)
    listed = [str(f) for f in request.feedback_ids]
    deleted = await repo.delete_items(listed, request.customer_id)
    erased = set(listed) | set(deleted)
    await repo.delete_insights({str(urgent_insight_id(uuid.UUID(f))) for f in erased}, runtime_tables.outbox,
                               INSIGHTS.name)
    await repo.prune_evidence(erased)
    await repo.prune_link_items(erased)
    if request.customer_id is not None:
        await repo.anonymise_customer(request.customer_id, erased_customer_label(request.request_id))
    await record_applied(uow.session, erasure_tables, request_id, customer_id=request.customer_id,
                         feedback_ids=sorted(erased), at=datetime.now(UTC))
    return deleted
