"""Closing the loop, decided without a store: customers grouped with owners and conversations, a loop closing
once, a regression raised once then revised, the issue text, the retry schedule and the loop KPIs."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from aggregation.domain.loops import (
    LinkFacts,
    LinkTimes,
    LoopItem,
    SubjectStats,
    closed_insight,
    issue_text,
    loop_closure,
    loop_customers,
    loop_cutoff,
    loop_insight_id,
    loop_item,
    loop_kpis,
    on_release,
    on_tracker_change,
    pick_quotes,
    regression_insight,
    retry_delay,
)
from feedbackloop.contracts import Insight, Release, TrackerChange
from feedbackloop.contracts.events import Conversation

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LINK = LinkFacts(link_id="9f1c8d2e-0000-4000-8000-000000000001", subject="theme", tracker="github",
                 issue_key="github:acme/web#42", status="open", linked_at=T0, theme_id="account.login",
                 url="https://github.com/acme/web/issues/42", title="Login fails")


def _id(n: int) -> str:
    return str(uuid.UUID(int=n))


def _item(n: int, minutes: int, customer: str | None, *, owner: str | None = None, mrr: float | None = None,
          author: str | None = None, conversation: str | None = None, negative: bool = True,
          text: str = "Cannot log in") -> LoopItem:
    data = {"customer": {"id": customer, "plan": "pro" if customer else None, "mrr": mrr, "owner": owner},
            "author": {"id": author}, "sentiment": {"label": "negative" if negative else "positive"}, "text": text,
            "conversation": {"source": "zendesk", "id": conversation} if conversation else None}
    return loop_item(_id(n), T0 + timedelta(minutes=minutes), data)


def _change(status: str, title: str | None = None) -> TrackerChange:
    return TrackerChange.model_validate({"issue_key": LINK.issue_key, "tracker": "github", "status": status,
                                         "action": "closed", "changed_at": T0 + timedelta(days=3), "title": title})


def test_customers_grouped_with_owner_items_and_conversations_newest_first() -> None:
    items = [_item(1, 0, "acme", owner="ann@us.example", mrr=2000, conversation="T-1"),
             _item(2, 30, "acme", mrr=2000, conversation="T-2"),
             _item(3, 40, "acme", conversation="T-1"),  # the same ticket again: listed once, at its newest
             _item(4, 10, None, author="p-77", conversation="T-9"),
             _item(5, 20, "globex", owner="bob@us.example", mrr=50),
             _item(6, 50, None)]  # neither account nor author: nobody to tell
    customers = loop_customers(items)
    assert [c.id for c in customers] == ["acme", "globex", "author:p-77"], "highest mrr first"
    acme = customers[0]
    assert acme.owner == "ann@us.example" and acme.mrr == 2000 and acme.plan == "pro"
    assert [str(i) for i in acme.items] == [_id(3), _id(2), _id(1)]
    assert acme.conversations == [Conversation(source="zendesk", id="T-1"), Conversation(source="zendesk", id="T-2")]
    assert customers[2].owner is None and [str(i) for i in customers[2].items] == [_id(4)]


def test_the_loop_closes_once_whichever_comes_first() -> None:
    first = on_tracker_change(LINK, _change("done", "Login fails after update"))
    assert first.closes and first.status == "done" and first.title == "Login fails after update"
    closed = LinkFacts(**{**LINK.__dict__, "status": "done", "closed_at": T0 + timedelta(days=3)})
    reopened = on_tracker_change(closed, _change("open"))
    assert not reopened.closes and reopened.status == "open" and reopened.title == LINK.title
    assert not on_tracker_change(closed, _change("done")).closes, "done again after a reopen closes nothing"
    assert not on_tracker_change(LINK, _change("cancelled")).closes
    assert on_release(LINK) == (True, True)
    assert on_release(closed) == (False, True), "a release after the tracker's done is only recorded"
    released = LinkFacts(**{**closed.__dict__, "release_id": "r-1"})
    assert on_release(released) == (False, False)


def test_closed_insight_counts_items_up_to_the_close_and_names_the_release() -> None:
    items = [_item(1, 0, "acme", owner="ann@us.example", mrr=2000), _item(2, 60, "globex", mrr=50),
             _item(3, 60 * 24 * 5, "initech")]  # after the close: not in this loop
    release = Release.model_validate({"release_id": "r-7", "version": "4.3.0", "kind": "release",
                                      "released_at": T0 + timedelta(days=3), "issues": [LINK.issue_key]})
    closure = loop_closure(LINK, items, T0 + timedelta(days=3), release, "done")
    assert closure.items == 2 and [c.id for c in closure.customers] == ["acme", "globex"]
    assert closure.release is not None and closure.release.version == "4.3.0"
    insight = closed_insight(closure, items, "Login & authentication", T0 + timedelta(days=3, seconds=5))
    assert insight.type == "loop_closed" and insight.severity == "info" and insight.loop == closure
    assert str(insight.insight_id) == loop_insight_id(LINK.link_id, "closed")
    assert insight.title == "Fixed: Login & authentication — 2 customers to tell"
    assert [str(e) for e in insight.evidence] == [_id(2), _id(1)]
    assert insight.metrics["release_version"] == "4.3.0" and insight.metrics["owners"] == 1
    Insight.model_validate(insight.model_dump(mode="json", by_alias=True))  # the contract accepts it


def test_regression_once_then_revised_with_the_grown_count() -> None:
    closure = loop_closure(LINK, [_item(1, 0, "acme")], T0 + timedelta(days=1), None, "done")
    later = T0 + timedelta(days=2)
    first = regression_insight(closure, [_item(10, 60 * 30, "acme")], None, "Login", later)
    assert first.type == "loop_regression" and first.severity == "warning" and first.revision == 1
    assert str(first.insight_id) == loop_insight_id(LINK.link_id, "regression")
    assert first.metrics["regressed_items"] == 1
    assert first.title == "Regression? Login — 1 new report since the fix"
    again = regression_insight(closure, [_item(11, 60 * 40, "globex"), _item(12, 60 * 41, None, author="p")],
                               first, "Login", later + timedelta(hours=3))
    assert again.insight_id == first.insight_id and again.revision == 2 and again.updated_at is not None
    assert again.created_at == first.created_at and again.metrics["regressed_items"] == 3
    assert [str(e) for e in again.evidence] == [_id(12), _id(11), _id(10)]
    same = regression_insight(closure, [_item(10, 60 * 30, "acme")], again, "Login", later)
    assert same.metrics == again.metrics, "an item counted before is not counted again"


def test_issue_text_has_counts_trend_customers_quotes_and_the_link_back() -> None:
    items = [_item(n, n, "acme", negative=n % 2 == 0, text=f"quote {n} " + "x" * (400 if n == 8 else 0))
             for n in range(1, 10)]
    quotes = pick_quotes(items)
    assert len(quotes) == 5 and quotes[0].startswith("quote 8") and len(quotes[0]) == 300
    assert [q.split()[1] for q in quotes] == ["8", "6", "4", "2", "9"], "negative first, newest first"
    title, body = issue_text(SubjectStats("Login & authentication", 42, 9, 8400.0, 30, previous_7d=10, last_7d=20),
                             quotes, [("acme", 2400.0)], "http://127.0.0.1:8003/dashboard/themes/account.login")
    assert title == "Login & authentication: 42 reports from 9 customers"
    assert "$8,400" in body and "+100% vs the 7 days before" in body and "- acme — $2,400/month" in body
    assert body.count("\n> ") == 5 and "(http://127.0.0.1:8003/dashboard/themes/account.login)" in body


def test_retries_back_off_with_jitter_and_honour_retry_after() -> None:
    rng = random.Random(1)
    delays = [retry_delay(n, None, rng) for n in range(1, 12)]
    assert 1.5 <= delays[0] <= 2.5 and all(d <= 1800 * 1.25 for d in delays)
    assert delays[5] > delays[1] * 4, "exponential"
    assert retry_delay(1, 120.0, rng) >= 120.0


def test_loop_kpis_over_a_window() -> None:
    start, end = T0, T0 + timedelta(days=7)
    links = [
        LinkTimes(linked_at=T0 + timedelta(hours=1), status="done", theme_id="a", created_issue=True,
                  first_report_at=T0 - timedelta(days=1), issue_created_at=T0 + timedelta(hours=1),
                  closed_at=T0 + timedelta(days=2), loop_closed_at=T0 + timedelta(days=2, seconds=10),
                  customers_told=4, regression_at=T0 + timedelta(days=3)),
        LinkTimes(linked_at=T0 + timedelta(days=1), status="open", theme_id="b", first_report_at=T0),
        LinkTimes(linked_at=T0 - timedelta(days=30), status="cancelled", theme_id="c"),
        LinkTimes(linked_at=end + timedelta(hours=1), status="open", theme_id="d"),  # after the window
    ]
    k = loop_kpis(links, start, end, linked_items=10, closed_items=4)
    assert (k.links, k.open, k.closed, k.issues_created, k.customers_told, k.regressions) == (2, 1, 1, 1, 4, 1)
    assert k.median_time_to_issue_s == (25 * 3600 + 86400) / 2
    assert k.median_time_to_close_s == 3 * 86400 and k.median_time_to_told_s == 3 * 86400 + 10
    assert k.closed_item_share == 0.4


def test_a_close_stamped_to_the_second_takes_the_items_of_that_second() -> None:
    closed = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)  # GitHub's closed_at: whole seconds
    same_second = closed.replace(microsecond=600_000)
    assert loop_cutoff(closed) > same_second
    assert loop_cutoff(same_second) == same_second  # a precise stamp is taken as it is
    assert loop_cutoff(closed) <= closed.replace(second=6)
