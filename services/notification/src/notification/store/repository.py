"""Reads and writes of rules and deliveries. Never commits: the unit of work (or the caller's session) does.

Times are stored in UTC; SQLite hands them back naive, so every read goes through :func:`utc`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from feedbackloop.db import insert_ignoring_duplicates
from notification.store.models import Delivery, DeliveryAttempt, Rule

__all__ = ["Claim", "DeliveryRepository", "RuleRepository", "utc"]


def utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime (SQLite returns naive ones)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class RuleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, rule: Rule) -> None:
        self.session.add(rule)

    async def get(self, rule_id: str) -> Rule | None:
        return await self.session.get(Rule, rule_id)

    async def delete(self, rule: Rule) -> None:
        await self.session.delete(rule)

    async def enabled(self) -> Sequence[Rule]:
        """Every enabled rule, oldest first (the order deliveries are queued in)."""
        rows = await self.session.scalars(select(Rule).where(Rule.enabled.is_(True)).order_by(Rule.created_at, Rule.id))
        return rows.all()

    async def page(self, limit: int, after: tuple[datetime, str] | None = None, team: str | None = None) -> list[Rule]:
        """Up to ``limit`` rules oldest first, after the ``(created_at, id)`` of the previous page's last rule."""
        query = select(Rule).order_by(Rule.created_at, Rule.id).limit(limit)
        if team is not None:
            query = query.where(Rule.team == team)
        if after is not None:
            query = query.where(or_(Rule.created_at > after[0], and_(Rule.created_at == after[0], Rule.id > after[1])))
        return list((await self.session.scalars(query)).all())


@dataclass(frozen=True)
class Claim:
    """A due delivery leased to one sender, with what it needs to send (the secret comes from the rule)."""

    id: str
    attempt: int
    payload: dict[str, Any]
    url: str | None
    secret: str | None


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def queue(self, rows: list[dict[str, Any]]) -> None:
        """Insert pending deliveries; one already queued for its (event, rule, channel) is left as it is."""
        if rows:
            await self.session.execute(insert_ignoring_duplicates(self.session, Delivery.__table__), rows)  # type: ignore[arg-type]

    async def get(self, delivery_id: str) -> Delivery | None:
        return await self.session.get(Delivery, delivery_id)

    async def attempts_of(self, delivery_id: str) -> list[DeliveryAttempt]:
        rows = await self.session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id)
                                          .order_by(DeliveryAttempt.attempt))
        return list(rows.all())

    async def page(self, limit: int, after: tuple[datetime, str] | None = None, *, status: str | None = None,
                   rule_id: str | None = None, event_id: str | None = None) -> list[Delivery]:
        """Up to ``limit`` deliveries newest first, after the ``(created_at, id)`` of the previous page's last one."""
        query = select(Delivery).order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(limit)
        if status is not None:
            query = query.where(Delivery.status == status)
        if rule_id is not None:
            query = query.where(Delivery.rule_id == rule_id)
        if event_id is not None:
            query = query.where(Delivery.event_id == event_id)
        if after is not None:
            query = query.where(or_(Delivery.created_at < after[0],
                                    and_(Delivery.created_at == after[0], Delivery.id < after[1])))
        return list((await self.session.scalars(query)).all())

    async def any_due(self, now: datetime) -> bool:
        """Whether some pending delivery is due at ``now`` (a read: the sender looks before it takes the lock)."""
        found = await self.session.scalar(select(Delivery.id).where(Delivery.status == "pending",
                                                                    Delivery.next_attempt_at <= now).limit(1))
        return found is not None

    async def claim_due(self, now: datetime, lease_until: datetime, limit: int, *, skip_locked: bool) -> list[Claim]:
        """Lease up to ``limit`` due pending deliveries until ``lease_until`` and return them.

        The lease (``next_attempt_at`` moved forward) keeps another sender off a delivery while it is in flight,
        and makes a delivery whose result was never recorded (a crash mid-send) due again when it runs out.
        """
        query = (select(Delivery).where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
                 .order_by(Delivery.next_attempt_at, Delivery.id).limit(limit))
        if skip_locked:
            query = query.with_for_update(skip_locked=True)
        due = list((await self.session.scalars(query)).all())
        if not due:
            return []
        await self.session.execute(update(Delivery).where(Delivery.id.in_([d.id for d in due]))
                                   .values(next_attempt_at=lease_until))
        rules = {r.id: r for r in (await self.session.scalars(
            select(Rule).where(Rule.id.in_({d.rule_id for d in due})))).all()}
        claims = []
        for d in due:
            rule = rules.get(d.rule_id)
            channel = rule.channels[d.channel_index] if rule and d.channel_index < len(rule.channels) else None
            claims.append(Claim(id=d.id, attempt=d.attempts + 1, payload=d.payload,
                                url=channel["url"] if channel else None, secret=channel["secret"] if channel else None))
        return claims

    async def record_attempt(self, attempt: DeliveryAttempt) -> None:
        self.session.add(attempt)

    async def fail_pending_of_rule(self, rule_id: str, reason: str) -> None:
        """Give up the pending deliveries of a deleted rule: nothing can sign them any more."""
        await self.session.execute(update(Delivery).where(Delivery.rule_id == rule_id, Delivery.status == "pending")
                                   .values(status="failed", next_attempt_at=None, last_error=reason))
