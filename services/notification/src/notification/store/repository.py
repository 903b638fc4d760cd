"""Reads and writes of rules and deliveries. Never commits: the unit of work (or the caller's session) does.

Times are stored in UTC; SQLite hands them back naive, so every read goes through :func:`utc`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from feedbackloop.db import insert_ignoring_duplicates
from notification.domain.lifecycle import GIVE_UP_FROM, DeliveryStatus
from notification.domain.messages import build_digest_payload
from notification.domain.routing import Window
from notification.store.models import (
    ChannelHealth,
    Delivery,
    DeliveryAttempt,
    InsightEpisode,
    Rule,
    Team,
    ThrottleWindow,
)

__all__ = ["Claim", "DeliveryRepository", "NoiseRepository", "RuleRepository", "TeamRepository", "utc"]


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

    async def by_name(self, name: str) -> Rule | None:
        """The oldest rule called ``name`` (names are how a rules file refers to its rules)."""
        rows = await self.session.scalars(select(Rule).where(Rule.name == name).order_by(Rule.created_at, Rule.id))
        return rows.first()

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


class TeamRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, team: Team) -> None:
        self.session.add(team)

    async def get(self, team_id: str) -> Team | None:
        return await self.session.get(Team, team_id)

    async def by_name(self, name: str) -> Team | None:
        return await self.session.scalar(select(Team).where(Team.name == name))

    async def delete(self, team: Team) -> None:
        await self.session.delete(team)

    async def quiet_hours_of(self, names: set[str]) -> dict[str, dict[str, Any]]:
        """``{team name: quiet_hours}`` of the named teams that have quiet hours."""
        rows = await self.session.execute(select(Team.name, Team.quiet_hours).where(Team.name.in_(names),
                                                                                    Team.quiet_hours.is_not(None)))
        return {name: hours for name, hours in rows.all() if hours}

    async def page(self, limit: int, after: tuple[datetime, str] | None = None) -> list[Team]:
        query = select(Team).order_by(Team.created_at, Team.id).limit(limit)
        if after is not None:
            query = query.where(or_(Team.created_at > after[0], and_(Team.created_at == after[0], Team.id > after[1])))
        return list((await self.session.scalars(query)).all())


class NoiseRepository:
    """Throttle windows, channel health and insight episodes: the state the noise controls keep per rule."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def windows_locked(self, keys: Sequence[tuple[str, int]], now: datetime) -> dict[tuple[str, int], Window]:
        """The throttle windows of ``keys`` (rule, channel), locked for this transaction (FOR UPDATE; a no-op on
        SQLite, whose writers are serialized anyway), so that concurrent consumers (several copies on PostgreSQL)
        count against a window one at a time. A channel without one gets an ended window (``end`` = ``now``): the
        routing decision opens a fresh one when a message counts against it."""
        if not keys:
            return {}
        await self.session.execute(insert_ignoring_duplicates(self.session, ThrottleWindow.__table__),
                                   [{"rule_id": r, "channel_index": i, "window_start": now, "window_end": now,
                                     "sent": 0} for r, i in sorted(set(keys))])
        rows = await self.session.execute(
            select(ThrottleWindow).where(or_(*(and_(ThrottleWindow.rule_id == r, ThrottleWindow.channel_index == i)
                                               for r, i in sorted(set(keys)))))
            .order_by(ThrottleWindow.rule_id, ThrottleWindow.channel_index)
            .with_for_update().execution_options(populate_existing=True))
        return {(w.rule_id, w.channel_index): Window(utc(w.window_start), utc(w.window_end), w.sent)  # type: ignore[arg-type]
                for w in rows.scalars().all()}

    async def store_windows(self, windows: Mapping[tuple[str, int], Window]) -> None:
        """Write the windows the routing decision moved (locked by :meth:`windows_locked`)."""
        for (rule_id, index), window in windows.items():
            await self.session.execute(
                update(ThrottleWindow).where(ThrottleWindow.rule_id == rule_id, ThrottleWindow.channel_index == index)
                .values(window_start=window.start, window_end=window.end, sent=window.sent)
                .execution_options(synchronize_session=False))

    async def episodes(self, rule_ids: Sequence[str], key: str) -> dict[str, InsightEpisode]:
        """The rules' marks of the episode ``key``, by rule id."""
        rows = await self.session.scalars(select(InsightEpisode).where(InsightEpisode.rule_id.in_(list(rule_ids)),
                                                                       InsightEpisode.episode_key == key))
        return {row.rule_id: row for row in rows.all()}

    async def add(self, row: InsightEpisode) -> None:
        """Add a row and flush it, so that the next event of the same batch finds it."""
        self.session.add(row)
        await self.session.flush()

    async def health(self, rule_id: str, channel_index: int) -> ChannelHealth | None:
        return await self.session.get(ChannelHealth, (rule_id, channel_index))

    async def health_of(self, keys: set[tuple[str, int]]) -> dict[tuple[str, int], ChannelHealth | None]:
        """The health rows of the (rule, channel)s ``keys`` in one read (``None``: none stored)."""
        if not keys:
            return {}
        rows = await self.session.scalars(select(ChannelHealth).where(
            ChannelHealth.rule_id.in_(sorted({r for r, _ in keys}))))
        found = {(h.rule_id, h.channel_index): h for h in rows.all()}
        return {key: found.get(key) for key in keys}

    async def health_locked(self, rule_id: str, channel_index: int) -> ChannelHealth:
        """The channel's health row, created if missing and locked for this transaction.

        Several deliveries of one channel are recorded at once: creating the row with insert-ignore and
        then reading it FOR UPDATE (a no-op on SQLite, whose writers are serialized anyway) keeps their
        failure counts from racing on PostgreSQL.
        """
        await self.session.execute(insert_ignoring_duplicates(self.session, ChannelHealth.__table__).values(
            rule_id=rule_id, channel_index=channel_index, consecutive_failures=0))
        return (await self.session.execute(
            select(ChannelHealth).where(ChannelHealth.rule_id == rule_id, ChannelHealth.channel_index == channel_index)
            .with_for_update().execution_options(populate_existing=True))).scalar_one()

    async def paused_channels(self, rule_ids: set[str]) -> set[tuple[str, int]]:
        rows = await self.session.execute(select(ChannelHealth.rule_id, ChannelHealth.channel_index).where(
            ChannelHealth.rule_id.in_(rule_ids), ChannelHealth.paused_at.is_not(None)))
        return {(r, i) for r, i in rows.all()}

    async def forget_rule(self, rule_id: str) -> None:
        """Drop the noise state of a rule (deleted, or replaced: its channels may be new)."""
        for table in (ThrottleWindow, ChannelHealth, InsightEpisode):
            await self.session.execute(delete(table).where(table.rule_id == rule_id))


@dataclass(frozen=True)
class Claim:
    """A due delivery leased to one sender, with what it needs to send (the channel, secret included, from the rule).

    ``channel`` is ``None`` when the rule or the channel was deleted since the delivery was queued.
    ``trace_context`` is the ``traceparent``/``tracestate`` stored when it was queued (``None``: none was).
    """

    id: str
    attempt: int
    payload: dict[str, Any]
    rule_id: str
    channel_index: int
    channel: dict[str, Any] | None
    trace_context: dict[str, str] | None = None


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def queue(self, rows: list[dict[str, Any]]) -> None:
        """Insert pending deliveries; one already queued for its (event, rule, channel) is left as it is."""
        if rows:
            await self.session.execute(insert_ignoring_duplicates(self.session, Delivery.__table__), rows)

    async def get(self, delivery_id: str) -> Delivery | None:
        return await self.session.get(Delivery, delivery_id)

    async def get_many(self, delivery_ids: set[str]) -> dict[str, Delivery]:
        """The deliveries of ``delivery_ids`` that exist, by id (one read)."""
        rows = await self.session.scalars(select(Delivery).where(Delivery.id.in_(sorted(delivery_ids))))
        return {d.id: d for d in rows.all()}

    async def attempts_of(self, delivery_id: str) -> list[DeliveryAttempt]:
        rows = await self.session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id)
                                          .order_by(DeliveryAttempt.attempt))
        return list(rows.all())

    async def page(self, limit: int, after: tuple[datetime, str] | None = None, *, status: str | None = None,
                   rule_id: str | None = None, event_id: str | None = None,
                   subject: str | None = None) -> list[Delivery]:
        """Up to ``limit`` deliveries newest first, after the ``(created_at, id)`` of the previous page's last one."""
        query = select(Delivery).order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(limit)
        if status is not None:
            query = query.where(Delivery.status == status)
        if subject is not None:
            query = query.where(Delivery.subject == subject)
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
        found = await self.session.scalar(select(Delivery.id).where(Delivery.status == DeliveryStatus.PENDING,
                                                                    Delivery.next_attempt_at <= now).limit(1))
        return found is not None

    async def claim_due(self, now: datetime, lease_until: datetime, limit: int, *, skip_locked: bool) -> list[Claim]:
        """Lease up to ``limit`` due pending deliveries until ``lease_until`` and return them.

        The lease (``next_attempt_at`` moved forward) keeps another sender off a delivery while it is in flight,
        and makes a delivery whose result was never recorded (a crash mid-send) due again when it runs out.
        """
        query = (select(Delivery).where(Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at <= now)
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
            if d.event_kind == "digest" and "items" not in d.payload:
                d.payload = await self._fill_digest(d)
            claims.append(Claim(id=d.id, attempt=d.attempts + 1, payload=d.payload, rule_id=d.rule_id,
                                channel_index=d.channel_index, channel=channel, trace_context=d.trace_context))
        return claims

    async def _fill_digest(self, digest: Delivery) -> dict[str, Any]:
        """Freeze a digest's body from the items rolled into it; done once, at its first claim (its window is over)."""
        items = (await self.session.scalars(select(Delivery.payload).where(Delivery.digest_id == digest.id)
                                            .order_by(Delivery.created_at, Delivery.id))).all()
        stub = digest.payload
        window = stub.get("window") or {}
        return build_digest_payload(rule=stub.get("rule") or {}, reason=str(stub.get("reason")),
                                    window_from=datetime.fromisoformat(window["from"]),
                                    window_to=datetime.fromisoformat(window["to"]), items=list(items),
                                    digest_id=digest.id)

    async def pause_pending(self, rule_id: str, channel_index: int, reason: str) -> int:
        """Hold the pending deliveries of a paused channel (:func:`~notification.domain.lifecycle.paused`, in
        bulk); returns how many."""
        result = await self.session.execute(update(Delivery).where(
            Delivery.rule_id == rule_id, Delivery.channel_index == channel_index,
            Delivery.status == DeliveryStatus.PENDING)
            .values(status=DeliveryStatus.PAUSED, next_attempt_at=None, last_error=reason))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def resume_paused(self, rule_id: str, channel_index: int, now: datetime) -> int:
        """Queue a resumed channel's paused deliveries again, due now (:func:`~notification.domain.lifecycle.requeued`,
        in bulk); returns how many."""
        result = await self.session.execute(update(Delivery).where(
            Delivery.rule_id == rule_id, Delivery.channel_index == channel_index,
            Delivery.status == DeliveryStatus.PAUSED)
            .values(status=DeliveryStatus.PENDING, next_attempt_at=now, schedule_start=Delivery.attempts))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def record_attempt(self, attempt: DeliveryAttempt) -> None:
        self.session.add(attempt)

    async def fail_pending_of_rule(self, rule_id: str, reason: str) -> None:
        """Give up the deliveries of a deleted rule still to be sent (:func:`~notification.domain.lifecycle.given_up`,
        in bulk): nothing can sign them any more."""
        await self.session.execute(update(Delivery).where(Delivery.rule_id == rule_id,
                                                          Delivery.status.in_(GIVE_UP_FROM))
                                   .values(status=DeliveryStatus.FAILED, next_attempt_at=None, last_error=reason))


class ErasureRepository:
    """Blanks what deliveries say about erased items; the delivery rows (the log) stay. Never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_subjects(self, subjects: Sequence[str]) -> Sequence[Delivery]:
        """The deliveries of feedback events about ``subjects``."""
        if not subjects:
            return []
        return (await self.session.scalars(select(Delivery).where(Delivery.subject.in_(list(subjects)),
                                                                  Delivery.event_kind == "feedback"))).all()

    async def of_kind(self, event_kind: str) -> Sequence[Delivery]:
        """Every delivery of ``event_kind`` (insight, digest): an erasure is rare, and reads them once."""
        return (await self.session.scalars(select(Delivery).where(Delivery.event_kind == event_kind))).all()
