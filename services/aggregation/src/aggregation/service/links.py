"""Linking a theme, an insight or a set of items to a tracker issue: an existing one, or one aggregation files.

Filing an issue is exactly once whatever fails: the link is stored first (status ``creating``, its id the
tracker's idempotency *marker*) and committed, then the tracker is called. A success fills the link in; a
retryable failure (429, 5xx, the tracker away) leaves it ``creating`` with a next attempt, which
:func:`retry_pending` (the :class:`~aggregation.worker.LinkWorker`) makes with exponential backoff and jitter,
honouring ``Retry-After``, until it works or 24 h have passed (status ``failed``); the marker makes a retry after a
lost answer find the issue made rather than make another. A permanent failure (bad credentials, no such
repository or project, a body the tracker refuses, a tracker not configured) removes the link and is the caller's
error: :class:`LinkError` says which field.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import httpx
from sqlalchemy.exc import IntegrityError

from aggregation.domain.items import as_utc
from aggregation.domain.loops import (
    GIVE_UP_AFTER,
    SubjectStats,
    issue_text,
    loop_customers,
    pick_quotes,
    retry_delay,
)
from aggregation.domain.windows import Window, ceil_hour
from aggregation.service.reports import add_top_customers, rank_themes
from aggregation.store.analytics import AnalyticsQueries
from aggregation.store.links import LinkRepository
from feedbackloop.contracts.events import TrackerName
from feedbackloop.db import UnitOfWorkFactory
from feedbackloop.logs import get_logger
from feedbackloop.trackers import (
    InvalidIssueRef,
    IssueDraft,
    IssueRef,
    TrackerError,
    TrackerIssue,
    TrackerNotConfigured,
    TrackerSettings,
    configured_trackers,
    parse_issue_ref,
    tracker_client,
)

__all__ = ["CreateSpec", "LinkError", "Subject", "Trackers", "create_link", "link_existing", "load_subject",
           "retry_pending"]

log = get_logger(__name__)
#: Quotes are picked among this many of a theme's newest items (negative ones first).
_QUOTE_POOL = 50


class LinkError(Exception):
    """A link the caller asked for cannot be made: ``status`` (404, 409, 422, 502) and the ``field`` at fault."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


class Trackers:
    """The trackers aggregation calls, from ``TRACKER_*``; one HTTP client per call (issue creations are rare, and
    no client then outlives the request or the worker pass that needed it)."""

    def __init__(self, settings: TrackerSettings) -> None:
        self.settings = settings

    def configured(self, tracker: TrackerName) -> bool:
        return tracker in configured_trackers(self.settings)

    async def missing(self, tracker: TrackerName) -> str | None:
        """What to set for ``tracker`` to be reachable (the message names the variables); None when it is."""
        async with httpx.AsyncClient() as http:
            try:
                tracker_client(tracker, self.settings, http)
            except TrackerNotConfigured as exc:
                return str(exc)
        return None

    async def create(self, tracker: TrackerName, draft: IssueDraft) -> TrackerIssue:
        async with httpx.AsyncClient() as http:
            return await tracker_client(tracker, self.settings, http).create_issue(draft)

    async def get(self, ref: IssueRef) -> TrackerIssue:
        async with httpx.AsyncClient() as http:
            return await tracker_client(ref.tracker, self.settings, http).get_issue(ref)


@dataclass(frozen=True)
class Subject:
    """What a link is about: a theme, an insight (its theme and evidence) or a set of items."""

    kind: Literal["theme", "insight", "items"]
    key: str
    name: str
    theme_id: str | None = None
    insight_id: str | None = None
    feedback_ids: tuple[str, ...] = ()
    first_report_at: datetime | None = None


@dataclass(frozen=True)
class CreateSpec:
    """An issue to file: tracker, target (GitHub ``owner/repo``, Jira project, Linear team) and the request field
    that named it, Jira's issue type, labels."""

    tracker: TrackerName
    target: str
    target_field: str
    issue_type: str = "Bug"
    labels: tuple[str, ...] = ()


async def load_subject(uow_factory: UnitOfWorkFactory, kind: Literal["theme", "insight", "items"],
                       ident: str | Sequence[str]) -> Subject:
    """The subject a link request names; :class:`LinkError` 404 when the theme or insight is unknown, 422 naming
    ``feedback_ids`` when an item is."""
    async with uow_factory() as uow:
        repo = LinkRepository(uow.session)
        if kind == "theme":
            theme_id = str(ident)
            name = await repo.theme_name(theme_id)
            if name is None:
                raise LinkError(404, "theme_id", f"No theme {theme_id!r} in the store.")
            return Subject("theme", f"theme:{theme_id}", name, theme_id=theme_id,
                           first_report_at=await repo.first_report(theme_id))
        if kind == "insight":
            insight_id = str(ident)
            data = await repo.insight(insight_id)
            if data is None:
                raise LinkError(404, "insight_id", f"No insight {insight_id}.")
            theme = data.get("theme")
            ids = tuple(str(e) for e in data.get("evidence") or [])
            items = await repo.items(list(ids))
            return Subject("insight", f"insight:{insight_id}", str(data.get("title") or insight_id),
                           theme_id=theme, insight_id=insight_id, feedback_ids=ids,
                           first_report_at=min((i.created_at for i in items), default=None))
        ids = tuple(sorted({str(i) for i in ident}))
        items = await repo.items(list(ids))
        missing = sorted(set(ids) - {i.feedback_id for i in items})
        if missing:
            raise LinkError(422, "feedback_ids", f"No item {', '.join(missing[:5])} in the store.")
        digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()
        return Subject("items", f"items:{digest}", f"{len(ids)} feedback item{'' if len(ids) == 1 else 's'}",
                       feedback_ids=ids, first_report_at=min((i.created_at for i in items), default=None))


def _row(subject: Subject, link_id: str, tracker: TrackerName, by: str | None, now: datetime,
         **values: Any) -> dict[str, Any]:
    return {"link_id": link_id, "subject": subject.kind, "subject_key": subject.key, "theme_id": subject.theme_id,
            "insight_id": subject.insight_id,
            "feedback_ids": list(subject.feedback_ids) if subject.kind != "theme" else None,
            "tracker": tracker, "linked_at": now, "first_report_at": subject.first_report_at, "created_by": by,
            **values}


async def _store(uow_factory: UnitOfWorkFactory, subject: Subject, issue_key: str | None,
                 row: dict[str, Any]) -> dict[str, Any]:
    """Insert the link (409 when the subject is linked to that issue already); returns it as stored."""
    try:
        async with uow_factory() as uow:
            repo = LinkRepository(uow.session)
            if issue_key is not None and await repo.linked(subject.key, issue_key):
                raise LinkError(409, "issue", f"{subject.name} is linked to {issue_key} already.")
            await repo.add(row)
            await uow.commit()
    except IntegrityError:
        raise LinkError(409, "issue", f"{subject.name} is linked to {issue_key} already.") from None
    return await _get(uow_factory, row["link_id"])


async def _get(uow_factory: UnitOfWorkFactory, link_id: str) -> dict[str, Any]:
    async with uow_factory() as uow:
        link = await LinkRepository(uow.session).get(link_id)
    assert link is not None
    return link


async def link_existing(uow_factory: UnitOfWorkFactory, trackers: Trackers, subject: Subject, issue: str,
                        by: str | None) -> dict[str, Any]:
    """Link ``subject`` to the issue a URL or key names; its title and status come from the tracker when it is
    configured (a tracker away: stored as given, its status comes back by ``tracker.v1``)."""
    try:
        ref = parse_issue_ref(issue)
    except InvalidIssueRef as exc:
        raise LinkError(422, "issue", str(exc)) from None
    title, status, url = None, "open", ref.url
    if trackers.configured(ref.tracker):
        try:
            found = await trackers.get(ref)
            title, status, url = found.title, found.status, found.ref.url or url
        except TrackerError as exc:
            if exc.status == 404:
                raise LinkError(422, "issue", f"{ref.key}: no such issue in {ref.tracker}.") from None
            if not exc.retryable:
                raise LinkError(502, "issue", f"{ref.tracker} refused to show {ref.key}: {exc}") from None
            log.warning("tracker away: issue linked as given", issue_key=ref.key, error=str(exc))
    now = datetime.now(UTC)
    row = _row(subject, str(uuid.uuid4()), ref.tracker, by, now, issue_key=ref.key, url=url, title=title,
               status=status, created_issue=False)
    return await _store(uow_factory, subject, ref.key, row)


async def _subject_text(uow_factory: UnitOfWorkFactory, analytics: AnalyticsQueries, subject: Subject,
                        public_url: str) -> tuple[str, str]:
    """The new issue's title and Markdown body: counts, trend, customers and mrr, quotes, a link back."""
    now = ceil_hour(datetime.now(UTC))
    page = f"/dashboard/themes/{quote(subject.theme_id, safe='')}" if subject.theme_id else "/"
    link_back = public_url.rstrip("/") + page
    async with uow_factory() as uow:
        repo = LinkRepository(uow.session)
        if subject.kind == "theme" and subject.theme_id is not None:
            pool = await repo.quote_pool(subject.theme_id, _QUOTE_POOL)
        else:
            pool = await repo.items(list(subject.feedback_ids))
    if subject.kind == "theme" and subject.theme_id is not None:
        every = {r.id: r for r in await rank_themes(analytics, None, 100.0)}
        week = Window(now - timedelta(days=7), now)
        recent = {r.id: r for r in await rank_themes(analytics, week, 100.0)}
        report = every.get(subject.theme_id)
        if report is not None:
            await add_top_customers(analytics, None, [report])
        last = recent.get(subject.theme_id)
        stats = SubjectStats(name=subject.name, items=report.count if report else 0,
                             customers=report.customers if report else 0,
                             affected_mrr=report.affected_mrr if report else 0.0,
                             negative=report.negative_count if report else 0,
                             last_7d=last.count if last else 0,
                             previous_7d=(last.previous_count if last else None) or 0)
        top: list[tuple[str, float | None]] = [(c.id, c.mrr) for c in report.top_customers] if report else []
    else:
        customers = loop_customers(pool)
        stats = SubjectStats(name=subject.name, items=len(pool), customers=len(customers),
                             affected_mrr=round(sum(c.mrr or 0.0 for c in customers), 2),
                             negative=sum(1 for i in pool if i.negative))
        top = [(c.id, c.mrr) for c in customers[:5]]
    return issue_text(stats, pick_quotes(pool), top, link_back)


async def create_link(uow_factory: UnitOfWorkFactory, trackers: Trackers, analytics: AnalyticsQueries,
                      subject: Subject, spec: CreateSpec, by: str | None,
                      public_url: str) -> tuple[dict[str, Any], bool]:
    """File an issue for ``subject`` and link it; returns (the link, whether the issue exists yet: False while it
    is still being created after a retryable failure)."""
    if (missing := await trackers.missing(spec.tracker)) is not None:
        raise LinkError(422, "create.tracker", missing)
    title, body = await _subject_text(uow_factory, analytics, subject, public_url)
    now = datetime.now(UTC)
    link_id = str(uuid.uuid4())
    request = {"tracker": spec.tracker, "target": spec.target, "target_field": spec.target_field,
               "issue_type": spec.issue_type, "labels": list(spec.labels), "title": title, "body": body}
    # Until the call below answers, a crash leaves the link to the worker (after the longest the call can take).
    grace = timedelta(seconds=2 * trackers.settings.timeout_seconds + 30)
    await _store(uow_factory, subject, None, _row(subject, link_id, spec.tracker, by, now, status="creating",
                                                  created_issue=True, create_request=request,
                                                  next_attempt_at=now + grace))
    outcome = await _attempt(uow_factory, trackers, link_id, request, attempts=0, linked_at=now)
    if isinstance(outcome, LinkError):
        raise outcome
    return await _get(uow_factory, link_id), outcome


def _draft(link_id: str, request: dict[str, Any]) -> IssueDraft:
    return IssueDraft(target=request["target"], title=request["title"], body=request["body"], marker=link_id,
                      labels=tuple(request.get("labels") or ()), issue_type=request.get("issue_type") or "Bug")


def _refusal(exc: TrackerError, request: dict[str, Any]) -> LinkError:
    tracker = request["tracker"]
    if isinstance(exc, TrackerNotConfigured):
        return LinkError(422, "create.tracker", str(exc))
    if exc.status in (401, 403):
        return LinkError(502, "create.tracker", f"{tracker} refused aggregation's credentials ({exc.status}): "
                                                f"check its TRACKER_* settings")
    if exc.status == 404:
        return LinkError(422, request.get("target_field") or "create", f"{tracker} has no {request['target']!r} "
                                                                       f"(or the token cannot see it)")
    if exc.status in (400, 409, 410, 422):
        return LinkError(422, "create", f"{tracker} refused the issue: {exc}")
    return LinkError(502, "create.tracker", f"{tracker} failed: {exc}")


async def _attempt(uow_factory: UnitOfWorkFactory, trackers: Trackers, link_id: str, request: dict[str, Any],
                   attempts: int, linked_at: datetime) -> bool | LinkError:
    """One attempt at creating the link's issue, and its outcome stored: True made (or found by its marker),
    False to be retried, a :class:`LinkError` when the tracker refused for good (the link is then removed if this
    was the first attempt, marked ``failed`` otherwise)."""
    try:
        issue = await trackers.create(request["tracker"], _draft(link_id, request))
    except TrackerError as exc:
        now = datetime.now(UTC)
        async with uow_factory() as uow:
            repo = LinkRepository(uow.session)
            if exc.retryable and now - as_utc(linked_at) < GIVE_UP_AFTER:
                await repo.update(link_id, attempts=attempts + 1, last_error=str(exc)[:2000],
                                  next_attempt_at=now + timedelta(seconds=retry_delay(attempts + 1, exc.retry_after)))
                outcome: bool | LinkError = False
            elif attempts == 0 and not exc.retryable:
                await repo.delete(link_id)
                outcome = _refusal(exc, request)
            else:
                await repo.update(link_id, status="failed", attempts=attempts + 1, next_attempt_at=None,
                                  last_error=str(exc)[:2000])
                outcome = _refusal(exc, request)
            await uow.commit()
        log.warning("tracker issue not created", link_id=link_id, tracker=request["tracker"], error=str(exc),
                    retryable=exc.retryable, attempts=attempts + 1)
        return outcome
    async with uow_factory() as uow:
        await LinkRepository(uow.session).update(
            link_id, issue_key=issue.ref.key, url=issue.ref.url, title=issue.title, status=issue.status,
            issue_created_at=as_utc(issue.created_at) if issue.created_at else datetime.now(UTC),
            attempts=attempts + 1, next_attempt_at=None, last_error=None)
        await uow.commit()
    log.info("tracker issue created", link_id=link_id, issue_key=issue.ref.key, attempts=attempts + 1)
    return True


async def retry_pending(uow_factory: UnitOfWorkFactory, trackers: Trackers, limit: int = 20) -> float | None:
    """Make the due attempts of the issues being created; returns the seconds until the next one is due (None:
    nothing pending)."""
    async with uow_factory() as uow:
        due = await LinkRepository(uow.session).due(datetime.now(UTC), limit)
    for link in due:
        if link["create_request"] is None:
            continue
        await _attempt(uow_factory, trackers, link["link_id"], link["create_request"], link["attempts"] or 0,
                       link["linked_at"])
    async with uow_factory() as uow:
        upcoming = await LinkRepository(uow.session).next_due()
    return max(0.0, (upcoming - datetime.now(UTC)).total_seconds()) if upcoming is not None else None
