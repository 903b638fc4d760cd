"""The events of one consumer batch to deliveries: one set of reads, the routing per event, a few writes.

A :class:`RoutingBatch` lives as long as one unit of work (the consumer's batch transaction). The first event it
routes loads what routing reads — the enabled rules (parsed once), the teams' quiet hours, the paused channels —
and, for every event of the batch it was told about (:meth:`RoutingBatch.expect`), which rules match, the
throttle windows those need (created if missing and locked ``FOR UPDATE`` in one statement, in key order, so two
copies never wait on each other in a cycle), the insight episode marks and the erased items. Each event is then
decided by the pure :func:`notification.domain.routing.route`, exactly as one event alone would be, against the
state the events before it in the batch left (windows counted, episodes marked), kept in memory. A ``loop_closed``
insight is decided once per customer (:func:`notification.domain.loop.fan_out`): each customer's view is matched
against the rules and routed on its own.

What the events queue is written when the batch commits, in a few statements (:mod:`notification.store.batch_writes`),
from the session's ``before_commit`` — so in the same transaction as their processed marks — or at once by
:func:`notification.service.routing.route_event`. When the runtime runs each event in a savepoint and one is
rolled back (the event failed), what it changed in memory is undone, and so are the window locks taken inside it
(they are taken again when needed), so the next event sees what it would have seen without it. When it runs the
batch without savepoints, a failing event rolls back the whole transaction and the batch is dropped with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from prometheus_client import Counter
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from feedbackloop import tracing
from feedbackloop.db import UnitOfWork
from feedbackloop.db.erasures import erased_among
from feedbackloop.logs import get_logger
from notification.domain.backoff import next_delay
from notification.domain.channels import channel_from_json
from notification.domain.lifecycle import DeliveryStatus
from notification.domain.loop import View, fan_out
from notification.domain.noise import EpisodeMark, QuietHours, parse_quiet_hours
from notification.domain.routing import RouteDecision, RoutedEvent, RoutedRule, RoutingFacts, Window, episode_of, route
from notification.domain.rules import RuleInvalid, parse_throttle
from notification.service.rules import fires
from notification.store.batch_writes import EpisodeRow, Write, batch_writes
from notification.store.models import erasure_tables
from notification.store.repository import NoiseRepository, RuleRepository, TeamRepository, utc

__all__ = ["DELIVERIES_HELD", "DELIVERIES_QUEUED", "EPISODES_SUPPRESSED", "EVENTS_UNMATCHED", "BatchEvent",
           "NoiseSettings", "RoutingBatch", "routing_batch", "start_batch"]

log = get_logger(__name__)

_KEY = "notification.routing_batch"
#: The ``service`` label of notification's own metrics (named as in :mod:`feedbackloop.metrics`).
SERVICE = "notification"
EVENTS_UNMATCHED = Counter("feedbackloop_notification_events_unmatched_total", "Events that matched no enabled rule",
                           ["service", "event"])
DELIVERIES_QUEUED = Counter("feedbackloop_notification_deliveries_queued_total", "Deliveries queued by matching rules",
                            ["service", "event"])
DELIVERIES_HELD = Counter("feedbackloop_notification_deliveries_held_total",
                          "Matches rolled into a digest instead of sent, or held for a paused channel",
                          ["service", "reason"])
EPISODES_SUPPRESSED = Counter("feedbackloop_notification_insight_episodes_suppressed_total",
                              "Insights not sent again because they continue an episode a rule already sent",
                              ["service"])


@dataclass(frozen=True)
class NoiseSettings:
    """How routing keeps noise down (from the service settings)."""

    episode_gap_s: float = 3600.0
    digest_grace_s: float = 1.0


@dataclass(frozen=True)
class BatchEvent:
    """An event to route: ``kind`` feedback or insight, its CloudEvent id, data and subject."""

    kind: str
    id: str
    data: Mapping[str, Any]
    subject: str | None = None  # what its deliveries name (``subject_of`` the data when the event has none)
    about: str | None = None  # the event's own subject: a feedback event about an erased item queues nothing


@dataclass
class _Rule:
    """An enabled rule as the batch read it; its channels and throttle are parsed when it first matches (a rule
    that cannot be parsed fails the events it matches, and only those)."""

    id: str
    name: str
    team: str
    match: Any
    channels: list[dict[str, Any]]
    throttle: Any
    _routed: RoutedRule | None = None

    def routed(self) -> RoutedRule:
        if self._routed is None:
            self._routed = RoutedRule(self.id, self.name, self.team,
                                      [channel_from_json(c).shown_url() for c in self.channels],
                                      parse_throttle(self.throttle) if self.throttle else None,
                                      settings=self.channels)
        return self._routed


@dataclass
class _State:
    """What the batch's events changed so far (and what they will write)."""

    windows: dict[tuple[str, int], Window] = field(default_factory=dict)  # locked in this transaction
    episodes: dict[tuple[str, str], EpisodeRow | None] = field(default_factory=dict)  # None: read, none stored
    rows: list[dict[str, Any]] = field(default_factory=list)  # deliveries and digests to insert
    moved_windows: dict[tuple[str, int], Window] = field(default_factory=dict)
    moved_episodes: dict[tuple[str, str], EpisodeRow] = field(default_factory=dict)
    queued: int = 0
    row_count: int = 0  # of a snapshot: how many rows there were

    def copy(self) -> _State:
        """A snapshot to go back to (the rows list is shared: going back truncates it)."""
        return _State(dict(self.windows), dict(self.episodes), self.rows, dict(self.moved_windows),
                      dict(self.moved_episodes), self.queued, len(self.rows))

    def restore(self, snapshot: _State) -> _State:
        del self.rows[snapshot.row_count:]
        return snapshot


class RoutingBatch:
    """Routes the events of one transaction (see module); :meth:`load` reads the rules, :meth:`route` an event."""

    def __init__(self, rules: list[_Rule], quiet_hours: dict[str, QuietHours], paused: set[tuple[str, int]],
                 dialect: str, *, schedule: Sequence[float], jitter: float, noise: NoiseSettings) -> None:
        self.rules = rules
        self.quiet_hours = quiet_hours
        self.paused = paused
        self.dialect = dialect
        self.schedule, self.jitter, self.noise = schedule, jitter, noise
        self.state = _State()
        self._expected: dict[str, BatchEvent] = {}
        self._known: dict[str, BatchEvent] = {}
        self._matched: dict[str, list[tuple[View, list[_Rule]]]] = {}  # per event: each view and its rules
        self._erased: set[str] = set()
        self._checked: set[str] = set()  # subjects whose erasure was looked up
        self._before: _State | None = None  # the state before the event in hand, until its savepoint is released

    @classmethod
    async def load(cls, session: AsyncSession, *, schedule: Sequence[float], jitter: float = 0.1,
                   noise: NoiseSettings = NoiseSettings()) -> RoutingBatch:
        """Read the enabled rules, their teams' quiet hours and the paused channels (three reads)."""
        rules = [_Rule(r.id, r.name, r.team, r.match, list(r.channels), r.throttle)
                 for r in await RuleRepository(session).enabled()]
        quiet = await _quiet_hours(TeamRepository(session), {r.team for r in rules}) if rules else {}
        paused = await NoiseRepository(session).paused_channels({r.id for r in rules}) if rules else set()
        return cls(rules, quiet, paused, session.get_bind().dialect.name, schedule=schedule, jitter=jitter,
                   noise=noise)

    def expect(self, events: Sequence[BatchEvent]) -> None:
        """The events this batch will route: their reads are made together, before the first is routed."""
        self._expected.update((e.id, e) for e in events)
        self._known.update((e.id, e) for e in events)

    def forget_erasures(self) -> None:
        """An erasure was applied in this batch: look each later event's item up again."""
        self._erased, self._checked = set(), set()

    def expected(self, event_id: str) -> BatchEvent | None:
        """The event as :meth:`expect` was given it (its data already dumped), if it was."""
        return self._known.get(event_id)

    # -- the events ---------------------------------------------------------------------------------------------

    async def handle(self, session: AsyncSession, event: BatchEvent) -> int:
        """Route one event of the consumer's batch in its savepoint: a feedback event about an erased item queues
        nothing; returns how many deliveries it queued."""
        self.settle()
        # Kept to undo this event alone if its savepoint rolls back. Without a savepoint (the runtime's first try
        # of a batch) a failing event rolls back the whole transaction, and this batch goes with its session.
        self._before = self.state.copy() if session.in_nested_transaction() else None
        if self._expected:
            await self._prefetch(session)
        if event.kind == "feedback" and await self._is_erased(session, event.about):
            return 0  # erased (privacy.v1) before this event got here: never queue its text
        return await self.route(session, event)

    async def _is_erased(self, session: AsyncSession, subject: str | None) -> bool:
        if subject is None:
            return False
        if subject not in self._checked:
            await self._read_erasures(session, [subject])
        return subject in self._erased

    async def route(self, session: AsyncSession, event: BatchEvent, *, now: datetime | None = None) -> int:
        """Queue (in memory) the deliveries of each enabled rule ``event`` (each customer's view of a
        ``loop_closed`` insight) matches, as :func:`notification.domain.routing.route` decides; returns how many."""
        if self._expected:
            await self._prefetch(session)
        matched = self._matched.pop(event.id, None)
        if matched is None:
            matched = self._match(event)
        if not any(rules for _, rules in matched):
            EVENTS_UNMATCHED.labels(SERVICE, event.kind).inc()
            return 0
        now = now or datetime.now(UTC)
        count = 0
        for view, rules in matched:
            if rules:
                count += await self._route_view(session, event, view, rules, now)
        return count

    def _match(self, event: BatchEvent) -> list[tuple[View, list[_Rule]]]:
        """Each view of the event (:func:`fan_out`) with the enabled rules it fires."""
        return [(view, [r for r in self.rules if fires(r, event.kind, view.data)])
                for view in fan_out(event.kind, event.data)]

    async def _route_view(self, session: AsyncSession, event: BatchEvent, view: View, rules: list[_Rule],
                          now: datetime) -> int:
        routed = [r.routed() for r in rules]
        keys = [(r.id, i) for r in routed if r.throttle is not None for i in range(len(r.channels))]
        await self._lock_windows(session, keys, now)
        episode = episode_of(view.data) if event.kind == "insight" and view.fanout is None else None
        if episode is not None:
            await self._read_episodes(session, [(r.id, episode[0]) for r in rules])
        marks = {r.id: row[0] for r in rules if episode is not None
                 and (row := self.state.episodes.get((r.id, episode[0]))) is not None}
        facts = RoutingFacts(event=RoutedEvent(event.kind, event.id, view.data, event.subject, view.fanout),
                             rules=routed, now=now, quiet_hours=self.quiet_hours, paused=self.paused,
                             windows={k: self.state.windows[k] for k in keys}, episodes=marks)
        decision = route(facts, first_delay=next_delay(self.schedule, 0, jitter=self.jitter) or 0.0,
                         digest_grace_s=self.noise.digest_grace_s, episode_gap_s=self.noise.episode_gap_s)
        self._keep(decision, facts.event, now)
        return len(decision.deliveries)

    def settle(self) -> None:
        """Undo the last event's changes unless its savepoint was released (:meth:`released`): it failed."""
        if self._before is not None:
            self.state, self._before = self.state.restore(self._before), None

    def released(self) -> None:
        """The savepoint of the event in hand was released: what it changed stays."""
        self._before = None

    # -- reads ----------------------------------------------------------------------------------------------------

    async def _prefetch(self, session: AsyncSession) -> None:
        """The reads of every expected event at once: erasures, matches, throttle windows, episode marks."""
        expected, self._expected = list(self._expected.values()), {}
        await self._read_erasures(session, [e.about for e in expected if e.kind == "feedback" and e.about])
        now = datetime.now(UTC)
        keys: list[tuple[str, int]] = []
        episodes: list[tuple[str, str]] = []
        for event in expected:
            matched = self._matched[event.id] = self._match(event)
            for view, rules in matched:
                for rule in rules:
                    try:
                        routed = rule.routed()
                    except (RuleInvalid, KeyError, TypeError, ValueError):
                        continue  # it fails the event that matches it, when that one is routed
                    keys.extend((rule.id, i) for i in range(len(routed.channels)) if routed.throttle is not None)
                episode = episode_of(view.data) if event.kind == "insight" and view.fanout is None else None
                if episode is not None:
                    episodes.extend((r.id, episode[0]) for r in rules)
        await self._lock_windows(session, keys, now)
        await self._read_episodes(session, episodes)

    async def _read_erasures(self, session: AsyncSession, subjects: list[str]) -> None:
        todo = sorted(set(subjects) - self._checked)
        if todo:
            self._erased |= await erased_among(session, erasure_tables, todo)
            self._checked.update(todo)

    async def _lock_windows(self, session: AsyncSession, keys: list[tuple[str, int]], now: datetime) -> None:
        """Create (as ended) and lock the throttle windows not locked yet in this batch, and read them."""
        todo = sorted(set(keys) - set(self.state.windows))
        if todo:
            self.state.windows.update(await NoiseRepository(session).windows_locked(todo, now))

    async def _read_episodes(self, session: AsyncSession, keys: list[tuple[str, str]]) -> None:
        todo = sorted(set(keys) - set(self.state.episodes))
        by_key: dict[str, list[str]] = {}
        for rule_id, key in todo:
            by_key.setdefault(key, []).append(rule_id)
        noise = NoiseRepository(session)
        for key, rule_ids in by_key.items():
            found = await noise.episodes(rule_ids, key)
            for rule_id in rule_ids:
                row = found.get(rule_id)
                self.state.episodes[(rule_id, key)] = None if row is None else (
                    EpisodeMark(cast(datetime, utc(row.window_to)), row.severity), row.event_id)

    # -- what an event leaves ---------------------------------------------------------------------------------------

    def _keep(self, decision: RouteDecision, event: RoutedEvent, now: datetime) -> None:
        """Apply a decision to the batch's state: episode marks, windows, then the rows to insert."""
        state = self.state
        for update in decision.episodes:
            previous = state.episodes.get((update.rule_id, update.key))
            event_id = update.event_id or (previous[1] if previous is not None else event.id)
            state.episodes[(update.rule_id, update.key)] = state.moved_episodes[(update.rule_id, update.key)] = (
                update.mark, event_id)
        for rule_id in decision.suppressed:
            EPISODES_SUPPRESSED.labels(SERVICE).inc()
            log.info("insight continues an episode already sent; not sent again", rule_id=rule_id, event_id=event.id)
        state.windows.update(decision.windows)
        state.moved_windows.update(decision.windows)
        if not decision.deliveries:
            return
        trace_context = tracing.inject() or None
        common = {"attempts": 0, "schedule_start": 0, "last_status_code": None, "created_at": now,
                  "delivered_at": None, "trace_context": trace_context, "result": None}
        state.rows.extend({**common, "id": d.id, "event_id": f"digest:{d.id}", "event_kind": "digest",
                           "subject": None, "rule_id": d.rule_id, "channel_index": d.channel_index, "url": d.url,
                           "status": DeliveryStatus.PENDING, "next_attempt_at": d.due, "last_error": None,
                           "payload": d.payload, "digest_id": None, "fanout_key": ""} for d in decision.digests)
        state.rows.extend({**common, "id": d.id, "event_id": event.id, "event_kind": event.kind,
                           "subject": event.subject, "rule_id": d.rule_id, "channel_index": d.channel_index,
                           "url": d.url, "status": d.status, "next_attempt_at": d.next_attempt_at,
                           "last_error": d.last_error, "payload": d.payload, "digest_id": d.digest_id,
                           "fanout_key": d.fanout_key or ""} for d in decision.deliveries)
        state.queued += sum(d.status is DeliveryStatus.PENDING for d in decision.deliveries)
        for d in decision.deliveries:
            if d.hold is not None:
                DELIVERIES_HELD.labels(SERVICE, d.hold).inc()
        DELIVERIES_QUEUED.labels(SERVICE, event.kind).inc(len(decision.deliveries))
        log.info("deliveries queued", event_kind=event.kind, deliveries=len(decision.deliveries),
                 digested=sum(d.status is DeliveryStatus.DIGESTED for d in decision.deliveries))

    # -- writes ---------------------------------------------------------------------------------------------------

    def writes(self) -> list[Write]:
        """The statements that store what the batch's events queued (see :mod:`notification.store.batch_writes`)."""
        self.settle()
        return batch_writes(self.dialect, self.state.rows, self.state.moved_windows, self.state.moved_episodes)

    async def write(self, session: AsyncSession) -> None:
        """Store what the batch queued so far, now (idempotent: the commit writes it again, changing nothing)."""
        for statement, rows in self.writes():
            await session.execute(statement, rows)

    def write_sync(self, session: Session) -> None:
        """:meth:`write` through the synchronous session (from ``before_commit``)."""
        for statement, rows in self.writes():
            session.execute(statement, rows)


def routing_batch(uow: UnitOfWork) -> RoutingBatch | None:
    """The routing batch of this unit of work, if one was started (:func:`start_batch`)."""
    return cast(RoutingBatch | None, uow.session.info.get(_KEY))


async def start_batch(uow: UnitOfWork, *, schedule: Sequence[float], jitter: float, noise: NoiseSettings,
                      wake: Callable[[], None]) -> RoutingBatch:
    """The unit of work's routing batch, loaded on first use; it writes itself when the unit of work commits
    (``before_commit``), and ``wake`` is called after that commit when it queued deliveries to send."""
    found = routing_batch(uow)
    if found is not None:
        return found
    batch = await RoutingBatch.load(uow.session, schedule=schedule, jitter=jitter, noise=noise)
    sync_session = uow.session.sync_session
    sync_session.info[_KEY] = batch

    def before_commit(session: Session) -> None:
        if not session.in_nested_transaction():
            batch.write_sync(session)

    def after_commit(session: Session) -> None:
        if session.in_nested_transaction():
            batch.released()  # the savepoint of the event in hand
        elif batch.state.queued:
            wake()

    sa_event.listen(sync_session, "before_commit", before_commit)
    sa_event.listen(sync_session, "after_commit", after_commit)
    return batch


async def _quiet_hours(teams: TeamRepository, names: set[str]) -> dict[str, QuietHours]:
    """The quiet hours of the named teams that have readable ones (a bad stored value is logged and ignored)."""
    found: dict[str, QuietHours] = {}
    for name, raw in (await teams.quiet_hours_of(names)).items():
        try:
            hours = parse_quiet_hours(raw)
        except RuleInvalid as exc:  # stored before a check tightened: ignore it, say so
            log.error("team quiet hours cannot be read; ignored", team=name, error=str(exc))
            continue
        if hours is not None:
            found[name] = hours
    return found
