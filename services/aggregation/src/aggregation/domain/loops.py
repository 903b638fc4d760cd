"""Closing the loop: what a tracker change or a release does to a link, the ``loop_closed`` and ``loop_regression``
insights, the issue text aggregation files, the retry schedule of an issue being created, and the loop KPIs. Pure.

A link follows one tracker issue for a theme, an insight or a set of items. Its loop closes **once**: when the
issue is first done (``tracker.v1``) or a release names it (``releases.v1``), whichever comes first; the other,
later, changes nothing (a release after a tracker close is only recorded on the link). A reopened issue goes back
to ``open`` and keeps ``closed_at``: the loop closed, the customers were told. A new item of the theme created
after ``closed_at`` is a possible regression: one ``loop_regression`` insight per loop, re-published with
``revision`` + 1 as more items come.
"""

from __future__ import annotations

import random
import statistics
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from aggregation.domain.items import as_utc
from feedbackloop.contracts import Insight
from feedbackloop.contracts.events import (
    Conversation,
    IssueStatus,
    LoopClosure,
    LoopCustomer,
    LoopIssue,
    LoopRelease,
    Release,
    TrackerChange,
    TrackerName,
)

__all__ = ["EVIDENCE_CAP", "GIVE_UP_AFTER", "QUOTE_CHARS", "LinkFacts", "LinkTimes", "LoopItem", "LoopKpis",
           "SubjectStats", "TrackerUpdate", "closed_insight", "issue_text", "link_times", "loop_closure",
           "loop_customers", "loop_cutoff", "loop_insight_id", "loop_item", "loop_kpis", "on_release",
           "on_tracker_change",
           "pick_quotes", "regression_insight", "retry_delay"]

LinkStatus = Literal["creating", "open", "in_progress", "done", "cancelled", "failed"]
#: Item ids an insight names at most (``evidence``).
EVIDENCE_CAP = 100
#: Quotes in a new issue at most, and the characters of each.
QUOTES = 5
QUOTE_CHARS = 300
#: An issue the tracker keeps refusing with retryable errors is given up on after this long (status ``failed``).
GIVE_UP_AFTER = timedelta(hours=24)
_FIRST_RETRY_S = 2.0
_MAX_RETRY_S = 1800.0
_NAMESPACE = uuid.UUID("3b6c2f8e-5d1a-5e47-8b0c-9a7d4e2f1c63")


@dataclass(frozen=True)
class LinkFacts:
    """What a decision needs of a stored link."""

    link_id: str
    subject: Literal["theme", "insight", "items"]
    tracker: TrackerName
    issue_key: str | None
    status: LinkStatus
    linked_at: datetime
    theme_id: str | None = None
    url: str | None = None
    title: str | None = None
    closed_at: datetime | None = None
    release_id: str | None = None


@dataclass(frozen=True)
class TrackerUpdate:
    """What a ``tracker.v1`` change does to a link: its new status, title and url, and whether its loop closes now."""

    status: IssueStatus
    title: str | None
    url: str | None
    closes: bool


def on_tracker_change(link: LinkFacts, change: TrackerChange) -> TrackerUpdate:
    """The link follows the issue's state; the loop closes on the first ``done`` of a loop not closed yet (a done
    after a reopen, or after a release closed it, closes nothing again)."""
    return TrackerUpdate(status=change.status, title=change.title or link.title, url=change.url or link.url,
                         closes=change.status == "done" and link.closed_at is None)


def on_release(link: LinkFacts) -> tuple[bool, bool]:
    """(closes the loop now, records the release on the link) for a release naming the link's issue."""
    return link.closed_at is None, link.release_id is None


@dataclass(frozen=True)
class LoopItem:
    """An item of a loop, as the store keeps it: who sent it and where to answer them."""

    feedback_id: str
    created_at: datetime
    customer_id: str | None = None
    plan: str | None = None
    mrr: float | None = None
    owner: str | None = None
    author_id: str | None = None
    conversation: Conversation | None = None
    negative: bool = False
    text: str = ""

    @property
    def who(self) -> str | None:
        """The customer the item counts for: its account, else ``author:<pseudonym>``; None for neither."""
        if self.customer_id:
            return self.customer_id
        return f"author:{self.author_id}" if self.author_id else None


def loop_item(feedback_id: str, created_at: datetime, data: Mapping[str, Any]) -> LoopItem:
    """The :class:`LoopItem` of a stored item's ``feedback.classified.v1`` data."""
    customer = data.get("customer") or {}
    author = data.get("author") or {}
    conversation = data.get("conversation")
    sentiment = data.get("sentiment") or {}
    return LoopItem(feedback_id=feedback_id, created_at=as_utc(created_at), customer_id=customer.get("id"),
                    plan=customer.get("plan"), mrr=customer.get("mrr"), owner=customer.get("owner"),
                    author_id=author.get("id"),
                    conversation=Conversation.model_validate(conversation) if conversation else None,
                    negative=sentiment.get("label") == "negative", text=str(data.get("text") or ""))


def _newest_first(items: Iterable[LoopItem]) -> list[LoopItem]:
    return sorted(items, key=lambda i: (i.created_at, i.feedback_id), reverse=True)


def loop_customers(items: Iterable[LoopItem]) -> list[LoopCustomer]:
    """One entry per customer (``author:<id>`` for an item without an account; items with neither are left out),
    with plan, mrr and owner from their newest item that has each, their items and support conversations newest
    first (each conversation once). Ordered by mrr (highest first), then id."""
    grouped: dict[str, list[LoopItem]] = {}
    for item in _newest_first(items):
        if item.who is not None:
            grouped.setdefault(item.who, []).append(item)
    customers = []
    for who, theirs in grouped.items():
        conversations: list[Conversation] = []
        for item in theirs:
            if item.conversation is not None and item.conversation not in conversations:
                conversations.append(item.conversation)
        customers.append(LoopCustomer(
            id=who, plan=next((i.plan for i in theirs if i.plan), None),
            mrr=next((i.mrr for i in theirs if i.mrr is not None), None),
            owner=next((i.owner for i in theirs if i.owner), None),
            items=[uuid.UUID(i.feedback_id) for i in theirs], conversations=conversations))
    customers.sort(key=lambda c: (-(c.mrr or 0.0), c.id))
    return customers


def loop_cutoff(closed_at: datetime) -> datetime:
    """The end of what a loop closed at ``closed_at`` answers: items created before it are in the loop, items
    after it are possible regressions. Trackers stamp to the second (GitHub ``closed_at``), so a whole-second time
    stands for the whole second: an item that arrived in the same second as the close is in the loop."""
    at = as_utc(closed_at)
    return at + timedelta(seconds=1) if at.microsecond == 0 else at


def loop_closure(link: LinkFacts, items: Iterable[LoopItem], closed_at: datetime, release: Release | None,
                 status: IssueStatus) -> LoopClosure:
    """The ``loop`` of the insights about ``link``: the items created up to ``closed_at`` and their customers."""
    kept = [i for i in items if i.created_at < loop_cutoff(closed_at)]
    return LoopClosure(
        link_id=link.link_id, theme=link.theme_id,
        issue=LoopIssue(issue_key=link.issue_key or "", tracker=link.tracker, url=link.url, title=link.title,
                        status=status),
        release=LoopRelease(release_id=release.release_id, version=release.version, link=release.link)
        if release is not None else None,
        linked_at=as_utc(link.linked_at), closed_at=as_utc(closed_at), items=len(kept),
        customers=loop_customers(kept))


def loop_insight_id(link_id: str, what: Literal["closed", "regression"]) -> str:
    """The deterministic insight id of a link's ``loop_closed`` or ``loop_regression`` insight."""
    return str(uuid.uuid5(_NAMESPACE, f"{link_id}:{what}"))


def _subject_name(closure: LoopClosure, theme_name: str | None) -> str:
    return theme_name or closure.theme or closure.issue.title or closure.issue.issue_key


def _window(items: Sequence[LoopItem], start: datetime, end: datetime) -> dict[str, datetime]:
    first = min((i.created_at for i in items), default=start)
    return {"from": min(first, end), "to": end}


def closed_insight(closure: LoopClosure, items: Sequence[LoopItem], theme_name: str | None,
                   now: datetime) -> Insight:
    """The ``loop_closed`` insight: "Fixed: <theme> — <n> customers to tell", evidence the loop's items, newest
    first (at most :data:`EVIDENCE_CAP`)."""
    kept = _newest_first(i for i in items if i.created_at < loop_cutoff(closure.closed_at))
    n = len(closure.customers)
    mrr = round(sum(c.mrr or 0.0 for c in closure.customers), 2)
    metrics: dict[str, float | int | str | None] = {
        "items": closure.items, "customers": n, "affected_mrr": mrr, "issue_key": closure.issue.issue_key,
        "owners": len({c.owner for c in closure.customers if c.owner}),
        "conversations": sum(len(c.conversations) for c in closure.customers)}
    if closure.release is not None:
        metrics["release_version"] = closure.release.version
    return Insight.model_validate({
        "insight_id": loop_insight_id(closure.link_id, "closed"), "type": "loop_closed",
        "title": f"Fixed: {_subject_name(closure, theme_name)} — {n} customer{'' if n == 1 else 's'} to tell",
        "theme": closure.theme, "window": _window(kept, closure.linked_at, closure.closed_at),
        "metrics": metrics, "severity": "info",
        "evidence": [i.feedback_id for i in kept[:EVIDENCE_CAP]], "created_at": now, "loop": closure})


def regression_insight(closure: LoopClosure, new_items: Sequence[LoopItem], previous: Insight | None,
                       theme_name: str | None, now: datetime) -> Insight:
    """The ``loop_regression`` insight of a closed loop with ``new_items`` since it closed: revision 1 when
    ``previous`` is None, else ``previous`` re-published with the grown count, ``revision`` + 1 and ``updated_at``.
    Evidence: every regressed item known, newest first (at most :data:`EVIDENCE_CAP`)."""
    known = {str(e) for e in previous.evidence} if previous is not None else set()
    fresh = _newest_first(i for i in new_items if i.feedback_id not in known)
    evidence = [i.feedback_id for i in fresh] + ([str(e) for e in previous.evidence] if previous else [])
    count = len(fresh) + (int(previous.metrics.get("regressed_items") or 0) if previous is not None else 0)
    latest = max((i.created_at for i in fresh), default=closure.closed_at)
    first = min((i.created_at for i in fresh), default=closure.closed_at)
    metrics: dict[str, float | int | str | None] = {"regressed_items": count,
                                                      "issue_key": closure.issue.issue_key}
    data: dict[str, Any] = {
        "insight_id": loop_insight_id(closure.link_id, "regression"), "type": "loop_regression",
        "title": f"Regression? {_subject_name(closure, theme_name)} — {count} new report{'' if count == 1 else 's'} "
                 f"since the fix",
        "theme": closure.theme,
        "window": {"from": previous.window.from_ if previous is not None else first,
                   "to": max(latest, previous.window.to) if previous is not None else latest},
        "metrics": metrics, "severity": "warning", "evidence": evidence[:EVIDENCE_CAP],
        "created_at": previous.created_at if previous is not None else now, "loop": closure}
    if previous is not None:
        data |= {"revision": previous.revision + 1, "updated_at": now}
    return Insight.model_validate(data)


@dataclass(frozen=True)
class SubjectStats:
    """What a new issue says about what it is linked to (counts from the themes report)."""

    name: str
    items: int
    customers: int
    affected_mrr: float
    negative: int = 0
    previous_7d: int | None = None
    last_7d: int | None = None


def pick_quotes(items: Iterable[LoopItem], n: int = QUOTES) -> list[str]:
    """Up to ``n`` quotes of the items' (redacted) text, negative items first, newest first, each cut to
    :data:`QUOTE_CHARS`; the same text once."""
    ordered = sorted(items, key=lambda i: (i.negative, i.created_at, i.feedback_id), reverse=True)
    quotes: list[str] = []
    for item in ordered:
        text = " ".join(item.text.split())
        if not text:
            continue
        if len(text) > QUOTE_CHARS:
            text = text[: QUOTE_CHARS - 1].rstrip() + "…"
        if text not in quotes:
            quotes.append(text)
        if len(quotes) == n:
            break
    return quotes


def issue_text(stats: SubjectStats, quotes: Sequence[str], top_customers: Sequence[tuple[str, float | None]],
               link_back: str) -> tuple[str, str]:
    """(title, Markdown body) of an issue filed for a theme, an insight or a set of items."""
    n, c = stats.items, stats.customers
    title = f"{stats.name}: {n} report{'' if n == 1 else 's'} from {c} customer{'' if c == 1 else 's'}"
    lines = [f"**{n}** feedback item{'' if n == 1 else 's'} from **{c}** customer{'' if c == 1 else 's'} "
             f"(affected MRR **${stats.affected_mrr:,.0f}**/month); {stats.negative} negative."]
    if stats.last_7d is not None:
        trend = f"Last 7 days: {stats.last_7d} item{'' if stats.last_7d == 1 else 's'}"
        if stats.previous_7d:
            trend += f" ({(stats.last_7d - stats.previous_7d) / stats.previous_7d:+.0%} vs the 7 days before)"
        elif stats.previous_7d == 0 and stats.last_7d:
            trend += " (none the 7 days before)"
        lines.append(trend + ".")
    if top_customers:
        lines += ["", "**Affected customers** (highest MRR first):", ""]
        lines += [f"- {cid}" + (f" — ${mrr:,.0f}/month" if mrr else "") for cid, mrr in top_customers]
    if quotes:
        lines += ["", "**What they say:**", ""]
        lines += [f"> {q}\n" for q in quotes]
    lines += ["", f"[See it on the Feedback Loop dashboard]({link_back})", "",
              "_Filed by Feedback Loop: when this issue is closed as done, or a release names it, every customer "
              "above is told._"]
    return title[:250], "\n".join(lines)


def retry_delay(attempts: int, retry_after: float | None, rng: random.Random | None = None) -> float:
    """Seconds before attempt ``attempts`` + 1 of an issue creation: exponential from 2 s, capped at 30 min, with
    ±25 % jitter; never sooner than the tracker's ``retry_after``."""
    base = min(_MAX_RETRY_S, _FIRST_RETRY_S * 2.0 ** max(attempts - 1, 0))
    delay = base * (0.75 + 0.5 * float((rng or random).random()))
    return max(delay, retry_after or 0.0)


@dataclass(frozen=True)
class LinkTimes:
    """The moments of one link the loop KPIs are made of (UTC)."""

    linked_at: datetime
    status: str
    theme_id: str | None = None
    created_issue: bool = False
    first_report_at: datetime | None = None
    issue_created_at: datetime | None = None
    closed_at: datetime | None = None
    loop_closed_at: datetime | None = None
    customers_told: int = 0
    regression_at: datetime | None = None

    @property
    def issue_at(self) -> datetime:
        """When the issue existed for us: created by us, else linked."""
        return self.issue_created_at or self.linked_at


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (as_utc(end) - as_utc(start)).total_seconds())


def link_times(t: LinkTimes) -> dict[str, float | None]:
    """A link's own loop times, seconds from the first report: to issue, to close, to customers told."""
    return {"time_to_issue_s": _seconds(t.first_report_at, t.issue_at) if t.status != "creating" else None,
            "time_to_close_s": _seconds(t.first_report_at, t.closed_at),
            "time_to_told_s": _seconds(t.first_report_at, t.loop_closed_at)}


@dataclass(frozen=True)
class LoopKpis:
    links: int
    open: int
    closed: int
    issues_created: int
    median_time_to_issue_s: float | None
    median_time_to_close_s: float | None
    median_time_to_told_s: float | None
    closed_item_share: float | None
    customers_told: int
    regressions: int
    linked_items: int = 0
    closed_items: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _median(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(float(statistics.median(kept)), 3) if kept else None


def _within(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and as_utc(start) <= as_utc(moment) < as_utc(end)


def loop_kpis(links: Sequence[LinkTimes], start: datetime, end: datetime, linked_items: int,
              closed_items: int) -> LoopKpis:
    """The loop figures of the window [start, end).

    ``links``: links made in the window; ``open``: links existing at the window's end whose loop has not closed and
    whose issue is not cancelled or failed; ``closed``/``customers_told``/time to close and to told: loops closed in
    the window; ``issues_created``/time to issue: issues made (or linked) in the window; ``regressions``: loops
    flagged in the window. ``closed_item_share`` = ``closed_items`` / ``linked_items`` (items created in the window
    in linked themes, and those of them a closed loop answers)."""
    existing = [t for t in links if as_utc(t.linked_at) < as_utc(end)]
    closed = [t for t in existing if _within(t.loop_closed_at, start, end)]
    issued = [t for t in existing if t.status != "creating" and _within(t.issue_at, start, end)]
    return LoopKpis(
        links=sum(1 for t in existing if _within(t.linked_at, start, end)),
        open=sum(1 for t in existing if (t.loop_closed_at is None or as_utc(t.loop_closed_at) >= as_utc(end))
                 and t.status not in ("cancelled", "failed")),
        closed=len(closed),
        issues_created=sum(1 for t in issued if t.created_issue),
        median_time_to_issue_s=_median(_seconds(t.first_report_at, t.issue_at) for t in issued),
        median_time_to_close_s=_median(_seconds(t.first_report_at, t.closed_at) for t in closed),
        median_time_to_told_s=_median(_seconds(t.first_report_at, t.loop_closed_at) for t in closed),
        closed_item_share=round(closed_items / linked_items, 4) if linked_items else None,
        customers_told=sum(t.customers_told for t in closed),
        regressions=sum(1 for t in existing if _within(t.regression_at, start, end)),
        linked_items=linked_items, closed_items=closed_items)
