"""The consumer's side of closing the loop: ``tracker.v1`` changes, releases naming issues, regressions.

Each runs inside the consumer's unit of work (never commits); the ``loop_closed`` and ``loop_regression``
insights are stored in ``insights`` and go to the outbox in the same transaction as the link's update, under
deterministic ids (``domain/loops.py``), so a redelivered event raises nothing twice.

Regressions are found in the batch path without a read per item: the first item of a batch loads the closed
theme loops once (:class:`LoopWatch`, one query per unit of work); each new item of such a theme created after its
loop closed is noted (and forgotten if its savepoint rolls back); the batch's ``finish`` step raises or revises
one ``loop_regression`` insight per loop with all the batch's new items.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from aggregation.domain.episodes import insight_event_id
from aggregation.domain.items import as_utc
from aggregation.domain.loops import (
    LoopItem,
    closed_insight,
    loop_closure,
    loop_cutoff,
    loop_insight_id,
    loop_item,
    on_release,
    on_tracker_change,
    regression_insight,
)
from aggregation.store.links import LinkRepository, facts_of
from aggregation.store.memo import undone_by
from aggregation.store.repository import InsightRepository
from feedbackloop.contracts import INSIGHTS, ClassifiedFeedback, Insight, Release, TrackerChange
from feedbackloop.contracts.events import IssueStatus, LoopClosure
from feedbackloop.db import UnitOfWork
from feedbackloop.logs import get_logger
from feedbackloop.trackers import InvalidIssueRef, parse_issue_ref

__all__ = ["LoopWatch", "apply_tracker_change", "close_on_release", "flag_regressions"]

log = get_logger(__name__)


async def apply_tracker_change(uow: UnitOfWork, change: TrackerChange) -> int:
    """Every link following the issue takes its status, title and url; a first ``done`` closes each one's loop.
    Returns how many loops closed."""
    repo = LinkRepository(uow.session)
    closed = 0
    for link in await repo.by_issue([change.issue_key]):
        update = on_tracker_change(facts_of(link), change)
        await repo.update(link["link_id"], status=update.status, title=update.title, url=update.url)
        if update.closes:
            link |= {"status": update.status, "title": update.title, "url": update.url}
            await _close(uow, repo, link, change.changed_at, None, update.status)
            closed += 1
    return closed


async def close_on_release(uow: UnitOfWork, release: Release) -> int:
    """Close the loop of every link whose issue ``release.issues`` names (URLs or keys; others are ignored), unless
    it closed before: then the release is only recorded on the link. Returns how many loops closed."""
    keys = []
    for text in release.issues:
        try:
            keys.append(parse_issue_ref(text).key)
        except InvalidIssueRef:
            log.info("release names no tracker issue we know", release_id=release.release_id, issue=text[:200])
    repo = LinkRepository(uow.session)
    closed = 0
    for link in await repo.by_issue(sorted(set(keys))):
        closes, record = on_release(facts_of(link))
        if closes:
            link |= {"status": "done"}
            await _close(uow, repo, link, release.released_at, release, "done")
            closed += 1
        elif record:
            await repo.update(link["link_id"], release_id=release.release_id, release_version=release.version)
    return closed


async def _loop_items(repo: LinkRepository, link: dict[str, object], until: datetime | None) -> list[LoopItem]:
    feedback_ids = link.get("feedback_ids")
    if link["subject"] == "theme" and isinstance(link.get("theme_id"), str):
        return await repo.theme_items(str(link["theme_id"]), until)
    return await repo.items([str(i) for i in feedback_ids]) if isinstance(feedback_ids, list) else []


async def _close(uow: UnitOfWork, repo: LinkRepository, link: dict[str, object], closed_at: datetime,
                 release: Release | None, status: IssueStatus) -> None:
    now = datetime.now(UTC)
    facts = facts_of(link)
    items = await _loop_items(repo, link, loop_cutoff(closed_at))
    closure = loop_closure(facts, items, closed_at, release, status)
    name = await repo.theme_name(facts.theme_id) if facts.theme_id else None
    insight = closed_insight(closure, items, name, now)
    insight_id = str(insight.insight_id)
    insights = InsightRepository(uow.session)
    if not await insights.exists(insight_id):
        await insights.add(insight_id, insight.type, insight.severity, insight.theme, insight.created_at,
                           insight.model_dump(mode="json", by_alias=True))
        uow.publish(INSIGHTS, insight, event_id=insight_id)
    values: dict[str, object] = {"status": status, "closed_at": as_utc(closed_at), "loop_closed_at": now,
                                 "customers_told": len(closure.customers)}
    if release is not None:
        values |= {"release_id": release.release_id, "release_version": release.version}
    await repo.update(facts.link_id, **values)
    log.info("loop closed", link_id=facts.link_id, issue_key=facts.issue_key, customers=len(closure.customers),
             release=release.version if release else None)


@dataclass
class LoopWatch:
    """The closed theme loops, loaded once per unit of work, and the new items of the batch that reopen them."""

    closed: dict[str, list[tuple[str, datetime]]]  # theme id -> [(link id, closed_at)]
    noted: list[tuple[SessionTransaction | None, str, LoopItem]] = field(default_factory=list)

    @classmethod
    async def of(cls, session: AsyncSession) -> LoopWatch:
        sync = session.sync_session
        watch: LoopWatch | None = sync.info.get("aggregation.loops")
        if watch is None:
            closed: dict[str, list[tuple[str, datetime]]] = {}
            for theme_id, link_id, closed_at in await LinkRepository(session).closed_themes():
                closed.setdefault(theme_id, []).append((link_id, closed_at))
            watch = sync.info["aggregation.loops"] = cls(closed)
            event.listen(sync, "after_soft_rollback", watch._rolled_back)
        return watch

    def note(self, session: AsyncSession, item: ClassifiedFeedback) -> int:
        """Note ``item`` (new to the store) against each closed loop of its themes that closed before it was
        created; returns how many."""
        if not self.closed:
            return 0
        created = as_utc(item.created_at)
        sync = session.sync_session
        tag = sync.get_nested_transaction() or sync.get_transaction()
        found = None
        n = 0
        for theme in {t.id for t in item.themes}:
            for link_id, closed_at in self.closed.get(theme, []):
                if created >= loop_cutoff(closed_at):
                    found = found or loop_item(str(item.feedback_id), created, item.model_dump(mode="json"))
                    self.noted.append((tag, link_id, found))
                    n += 1
        return n

    def take(self) -> dict[str, list[LoopItem]]:
        """The noted items per link, and forget them."""
        out: dict[str, list[LoopItem]] = {}
        for _, link_id, item in self.noted:
            out.setdefault(link_id, []).append(item)
        self.noted = []
        return out

    def _rolled_back(self, session: Session, previous: SessionTransaction) -> None:
        self.noted = [n for n in self.noted if not undone_by(n[0], previous)]


async def flag_regressions(uow: UnitOfWork) -> int:
    """Raise or revise the ``loop_regression`` insight of each loop the batch's new items reopened (the consumer's
    ``finish`` step, after the batch's items are written). Returns how many insights it published."""
    watch: LoopWatch | None = uow.session.sync_session.info.get("aggregation.loops")
    if watch is None or not watch.noted:
        return 0
    repo = LinkRepository(uow.session)
    insights = InsightRepository(uow.session)
    published = 0
    now = datetime.now(UTC)
    for link_id, items in sorted(watch.take().items()):
        link = await repo.get(link_id)
        closed = await repo.insight(loop_insight_id(link_id, "closed"))
        if link is None or closed is None or closed.get("loop") is None:
            continue
        closure = LoopClosure.model_validate(closed["loop"])
        insight_id = loop_insight_id(link_id, "regression")
        stored = await insights.published(insight_id)
        previous = Insight.model_validate(stored[1]) if stored is not None else None
        name = await repo.theme_name(link["theme_id"]) if link.get("theme_id") else None
        insight = regression_insight(closure, items, previous, name, now)
        if previous is not None and insight.metrics == previous.metrics:
            continue  # the items were counted before (a redelivered batch): nothing new
        data = insight.model_dump(mode="json", by_alias=True)
        if previous is None:
            await insights.add(insight_id, insight.type, insight.severity, insight.theme, insight.created_at, data)
        else:
            await insights.revise(insight_id, insight.severity, data)
        uow.publish(INSIGHTS, insight, event_id=insight_event_id(insight_id, insight.revision))
        await repo.update(link_id, regression_at=link["regression_at"] or now,
                          regressed_items=int(insight.metrics.get("regressed_items") or 0))
        published += 1
    return published
