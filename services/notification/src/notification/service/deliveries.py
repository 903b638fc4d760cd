"""The delivery log: list and read deliveries, retry a failed one, resume a paused channel."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedbackloop.db import UnitOfWorkFactory
from feedbackloop.http import Conflict, NotFound
from feedbackloop.logs import get_logger
from notification.domain.lifecycle import DeliveryState, DeliveryStatus, requeued
from notification.store.models import Delivery, DeliveryAttempt
from notification.store.repository import DeliveryRepository, NoiseRepository, RuleRepository

__all__ = ["get_delivery", "list_deliveries", "resume_channel", "retry_delivery"]

log = get_logger(__name__)


async def list_deliveries(sessions: async_sessionmaker[AsyncSession], limit: int,
                          after: tuple[datetime, str] | None, *, status: DeliveryStatus | None = None,
                          rule_id: str | None = None, event_id: str | None = None,
                          subject: str | None = None) -> list[Delivery]:
    async with sessions() as session, session.begin():
        return await DeliveryRepository(session).page(limit, after, status=status, rule_id=rule_id,
                                                      event_id=event_id, subject=subject)


async def get_delivery(sessions: async_sessionmaker[AsyncSession],
                       delivery_id: str) -> tuple[Delivery, list[DeliveryAttempt]]:
    async with sessions() as session, session.begin():
        repo = DeliveryRepository(session)
        delivery = await repo.get(delivery_id)
        if delivery is None:
            raise NotFound(f"No delivery {delivery_id}.")
        return delivery, await repo.attempts_of(delivery_id)


async def retry_delivery(uow_factory: UnitOfWorkFactory, delivery_id: str) -> Delivery:
    """Queue a failed delivery again, due now, with the same webhook-id and a fresh retry schedule
    (:func:`~notification.domain.lifecycle.requeued`).

    409 when it is not failed, or when its rule (which holds the signing secret) was deleted.
    """
    async with uow_factory() as uow:
        deliveries = DeliveryRepository(uow.session)
        delivery = await deliveries.get(delivery_id)
        if delivery is None:
            raise NotFound(f"No delivery {delivery_id}.")
        state = DeliveryState(DeliveryStatus(delivery.status), delivery.attempts, delivery.schedule_start)
        after = requeued(state, datetime.now(UTC)) if state.status is DeliveryStatus.FAILED else None
        if after is None:
            raise Conflict(f"Delivery {delivery_id} is {delivery.status}; only a failed delivery can be retried.")
        if await RuleRepository(uow.session).get(delivery.rule_id) is None:
            raise Conflict(f"The rule of delivery {delivery_id} was deleted; nothing can sign it any more.")
        delivery.status, delivery.schedule_start = after.status, after.schedule_start
        delivery.next_attempt_at = after.next_attempt_at
        await uow.commit()
    log.info("delivery re-queued", delivery_id=delivery_id)
    return delivery


async def resume_channel(uow_factory: UnitOfWorkFactory, rule_id: str, channel_index: int) -> int:
    """Un-pause a (rule, channel): its failure count starts afresh and its paused deliveries are queued again.

    Returns how many deliveries were queued again; 404 when the rule or channel does not exist, 409 when the
    channel is not paused.
    """
    async with uow_factory() as uow:
        rule = await RuleRepository(uow.session).get(rule_id)
        if rule is None or not 0 <= channel_index < len(rule.channels):
            raise NotFound(f"No channel {channel_index} on rule {rule_id}.")
        health = await NoiseRepository(uow.session).health(rule_id, channel_index)
        if health is None or health.paused_at is None:
            raise Conflict(f"Channel {channel_index} of rule {rule_id} is not paused.")
        health.paused_at, health.consecutive_failures = None, 0
        queued = await DeliveryRepository(uow.session).resume_paused(rule_id, channel_index, datetime.now(UTC))
        await uow.commit()
    log.info("channel resumed", rule_id=rule_id, channel_index=channel_index, requeued=queued)
    return queued
