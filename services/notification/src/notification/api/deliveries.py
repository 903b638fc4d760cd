"""``/v1/deliveries``: what was sent where, attempt by attempt; re-queue a failed delivery."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from feedbackloop.http import AdminKey, ReadKey, cursor_key, keyset_page
from notification.api.deps import ReadDep, UowDep
from notification.api.schemas import DeliveryDetail, DeliveryOut, DeliveryPage, delivery_detail, delivery_out, page_key
from notification.domain.lifecycle import DeliveryStatus
from notification.service.deliveries import get_delivery, list_deliveries, retry_delivery

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])


@router.get("", response_model=DeliveryPage, summary="List deliveries, newest first")
async def get_deliveries(key: ReadKey, sessions: ReadDep, status: DeliveryStatus | None = None,
                         rule_id: uuid.UUID | None = None, event_id: str | None = None,
                         subject: Annotated[str | None, Query(max_length=64, description=(
                             "Only deliveries about this feedback or insight id"))] = None,
                         limit: Annotated[int, Query(ge=1, le=200)] = 50, cursor: str | None = None) -> DeliveryPage:
    rows = await list_deliveries(sessions, limit + 1, cursor_key(cursor, datetime, str),
                                 status=status, rule_id=str(rule_id) if rule_id else None, event_id=event_id,
                                 subject=subject)
    items, next_cursor = keyset_page(rows, limit, key=page_key)
    reveal = key.allows("write")
    return DeliveryPage(items=[delivery_out(d, reveal_urls=reveal) for d in items], next_cursor=next_cursor)


@router.get("/{delivery_id}", response_model=DeliveryDetail, summary="One delivery with its attempts and payload",
            responses={404: {"description": "No such delivery"}})
async def get_one_delivery(delivery_id: uuid.UUID, key: ReadKey, sessions: ReadDep) -> DeliveryDetail:
    return delivery_detail(*await get_delivery(sessions, str(delivery_id)), reveal_urls=key.allows("write"))


@router.post("/{delivery_id}/retry", response_model=DeliveryOut, status_code=202,
             summary="Re-queue a failed delivery (same webhook-id, fresh retry schedule)",
             responses={404: {"description": "No such delivery"},
                        409: {"description": "Not failed, or its rule was deleted"}})
async def post_retry(delivery_id: uuid.UUID, _key: AdminKey, uow: UowDep) -> DeliveryOut:
    return delivery_out(await retry_delivery(uow, str(delivery_id)), reveal_urls=True)
