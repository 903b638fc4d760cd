"""Erasure (``privacy.v1``): what classification holds of the request's items goes."""

from __future__ import annotations

from datetime import UTC, datetime

from classification.store.models import erasure_tables, runtime_tables
from classification.store.repository import ErasureRepository
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, ErasureRequest
from feedbackloop.db import UnitOfWork
from feedbackloop.db.erasures import is_applied, record_applied
from feedbackloop.logs import get_logger

__all__ = ["apply_erasure"]

log = get_logger(__name__)


async def apply_erasure(uow: UnitOfWork, request: ErasureRequest) -> int | None:
    """Erase the request's items here: their labels, human corrections and retained ``feedback.classified.v1``
    events; record the request and a tombstone per item (a raw event arriving later is then ignored).

    A request applied before changes nothing and returns None; otherwise how many classified items went. The
    clusters' term counts and the classifier's in-memory examples are not rewritten (anonymous aggregates; the
    examples are rebuilt from the store at the next start, without the erased corrections).
    """
    request_id = str(request.request_id)
    if await is_applied(uow.session, erasure_tables, request_id):
        return None
    ids = [str(f) for f in request.feedback_ids]
    gone = await ErasureRepository(uow.session).erase(ids, runtime_tables.outbox, FEEDBACK_CLASSIFIED.name)
    uow.withdraw(FEEDBACK_CLASSIFIED, ids)  # labelled earlier in this batch: their events are not in the outbox yet
    await record_applied(uow.session, erasure_tables, request_id, customer_id=request.customer_id,
                         feedback_ids=ids, at=datetime.now(UTC))
    log.info("erasure applied", request_id=request_id, items=gone)
    return gone
