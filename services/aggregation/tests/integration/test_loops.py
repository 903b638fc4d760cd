"""Closing the loop against a real broker, store and HTTP server, and the GitHub stand-in.

A theme gets an issue filed on the stand-in (one issue, its summary and at most five quotes); a set of items is
linked to that issue by URL; 429s and a lost answer while filing end in exactly one issue each, made by the retry
worker; a ``tracker.v1`` done event closes the theme's loop once (one ``loop_closed`` insight naming customers,
owners and conversations), a release naming an issue closes another link's loop, and a new item after the close
raises one ``loop_regression`` insight, revised as more come. The KPIs, the themes list and the dashboard show it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aggregation_testkit import classified

from aggregation.config import AggregationSettings
from aggregation.main import create_app
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, INSIGHTS, ClassifiedFeedback, TrackerChange
from feedbackloop.contracts.topics import TRACKER
from feedbackloop.keys import KeyStore
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop.trackers import TrackerSettings
from feedbackloop_testing import publish_events, read_events, serve_app, store_url, wait_for
from feedbackloop_testing.standins import StandinServer

LOGIN = {"id": "account.login", "name": "Login & authentication", "confidence": 0.9}
BILLING = {"id": "billing", "name": "Billing", "confidence": 0.9}


@pytest.fixture
def write_key(keys_file: Path) -> str:
    return KeyStore(keys_file).create("test writer", ["read", "write"])[1]


def _trackers(standins: StandinServer) -> TrackerSettings:
    env = {k.removeprefix("TRACKER_").lower(): v for k, v in standins.env().items() if k.startswith("TRACKER_")}
    return TrackerSettings.model_validate(env)


def _items(now: datetime) -> Iterator[ClassifiedFeedback]:
    customers = [("acme", "ann@us.example", 2000.0), ("globex", "bob@us.example", 300.0), ("initech", None, 50.0)]
    for n in range(8):
        cid, owner, mrr = customers[n % 3]
        yield classified(f"login-{n}", created_at=now - timedelta(days=3, hours=n),
                         received_at=now - timedelta(days=3), text=f"I cannot log in since the update, attempt {n}",
                         themes=[LOGIN],
                         customer={"id": cid, "name": cid.title(), "plan": "pro", "mrr": mrr, "owner": owner},
                         conversation={"source": "zendesk", "id": f"T-{n}"} if n % 2 == 0 else None)
    for n in range(3):
        yield classified(f"billing-{n}", created_at=now - timedelta(days=2, hours=n),
                         received_at=now - timedelta(days=2), text=f"Charged twice {n}", themes=[BILLING])


def _marked(issues: list[dict[str, Any]], link_id: str) -> list[dict[str, Any]]:
    return [i for i in issues if link_id in (i.get("body") or "")]


async def test_links_issues_loops_regressions_and_kpis(tmp_path: Path, kafka_settings: KafkaSettings,
                                                       common_settings: CommonSettings, write_key: str,
                                                       standins: StandinServer) -> None:
    now = datetime.now(UTC)
    items = list(_items(now))
    settings = AggregationSettings(database_url=store_url(tmp_path, "aggregation"), kafka=kafka_settings,
                                   common=common_settings, detect_interval_seconds=3600,
                                   link_retry_interval_seconds=0.2)
    async with serve_app(create_app(settings, _trackers(standins))) as url, \
            httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {write_key}"}, timeout=30) as client:
        await wait_for(lambda: client.get("/readyz"), lambda r: r.status_code == 200, what="aggregation ready")
        await publish_events(kafka_settings, FEEDBACK_CLASSIFIED, items, key="feedback_id")
        await wait_for(lambda: client.get("/v1/feedback", params={"limit": 200}),
                       lambda r: len(r.json()["items"]) == len(items), what="every item stored")

        # File an issue for the theme: one issue, with the counts, at most five quotes and the link back.
        made = await client.post("/v1/themes/account.login/links",
                                 json={"create": {"tracker": "github", "repository": "acme/web"}, "labels": ["fb"]})
        assert made.status_code == 201, made.text
        theme_link = made.json()
        assert theme_link["status"] == "open" and theme_link["issue_key"].startswith("github:acme/web#")
        assert theme_link["created_issue"] is True and made.headers["location"] == f"/v1/links/{theme_link['link_id']}"
        [issue] = standins.issues("github")
        assert issue["title"] == "Login & authentication: 8 reports from 3 customers"
        assert issue["body"].count("\n> ") == 5 and "/dashboard/themes/account.login" in issue["body"]
        assert "cannot log in since the update" in issue["body"]

        # Link a set of items to that issue by URL; GET shows it; the same link again is a conflict.
        ids = [str(i.feedback_id) for i in items[:2]]
        linked = await client.post("/v1/links", json={"feedback_ids": ids, "issue": theme_link["url"]})
        assert linked.status_code == 201, linked.text
        items_link = linked.json()
        assert items_link["issue_key"] == theme_link["issue_key"] and items_link["created_issue"] is False
        assert items_link["title"] == issue["title"]
        shown = await client.get(f"/v1/links/{items_link['link_id']}")
        assert shown.status_code == 200 and shown.json()["feedback_ids"] == sorted(ids)
        again = await client.post("/v1/links", json={"feedback_ids": ids, "issue": theme_link["issue_key"]})
        assert again.status_code == 409 and again.json()["errors"][0]["field"] == "issue"
        bad = await client.post("/v1/themes/account.login/links", json={"issue": "not an issue"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "issue"
        assert (await client.post("/v1/themes/nope/links", json={"issue": "jira:AUTH-1"})).status_code == 404
        standins.missing("github", "acme/gone")
        refused = await client.post("/v1/themes/billing/links",
                                    json={"create": {"tracker": "github", "repository": "acme/gone"}})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "create.repository"
        assert len((await client.get("/v1/links", params={"theme": "billing"})).json()["items"]) == 0

        # 429 twice while filing: 202 creating, then the worker files exactly one issue.
        standins.fault("github", status=429, retry_after=0.1, times=2, method="POST")
        pending = await client.post("/v1/themes/billing/links",
                                    json={"create": {"tracker": "github", "repository": "acme/web"}})
        assert pending.status_code == 202 and pending.json()["status"] == "creating", pending.text
        location = pending.headers["location"]
        done = await wait_for(lambda: client.get(location), lambda r: r.json()["status"] == "open", timeout=60,
                              what="the worker files the issue")
        assert done.json()["attempts"] >= 2
        assert len(_marked(standins.issues("github"), pending.json()["link_id"])) == 1

        # The tracker files it but the answer is lost: still exactly one issue.
        standins.fault("github", "lose_answer", method="POST")
        lost = await client.post("/v1/insights/00000000-0000-0000-0000-000000000000/links", json={"issue": "x"})
        assert lost.status_code == 404
        lost = await client.post("/v1/links", json={"feedback_ids": [str(items[-1].feedback_id)],
                                                    "create": {"tracker": "github", "repository": "acme/web"}})
        assert lost.status_code in (201, 202), lost.text
        lost_link = (await wait_for(lambda: client.get(f"/v1/links/{lost.json()['link_id']}"),
                                    lambda r: r.json()["status"] == "open", timeout=60, what="found by its marker")
                     ).json()
        assert len(_marked(standins.issues("github"), lost_link["link_id"])) == 1
        assert len(standins.issues("github")) == 3

        # The theme's issue is done: its links follow; the theme's loop closes once, with its customers.
        closed_at = now - timedelta(hours=1)
        change = TrackerChange(issue_key=theme_link["issue_key"], tracker="github", status="done", action="closed",
                               resolution="completed", changed_at=closed_at, title="Login fails after the update",
                               url=theme_link["url"])
        await publish_events(kafka_settings, TRACKER, [change, change], key="issue_key", partition=0)
        theme_done = (await wait_for(lambda: client.get(f"/v1/links/{theme_link['link_id']}"),
                                     lambda r: r.json()["loop_closed_at"] is not None, what="the loop closed")).json()
        assert theme_done["status"] == "done" and theme_done["customers_told"] == 3
        assert theme_done["title"] == "Login fails after the update"
        items_done = (await client.get(f"/v1/links/{items_link['link_id']}")).json()
        assert items_done["status"] == "done" and items_done["customers_told"] == 2

        # A release naming the billing issue closes that link's loop, with the release in it.
        billing_key = done.json()["issue_key"]
        released = await client.post("/v1/releases", json={"version": "4.3.0", "issues": [billing_key, "nonsense"],
                                                           "released_at": (now - timedelta(minutes=30)).isoformat()})
        assert released.status_code == 202, released.text
        billing = (await wait_for(lambda: client.get(location), lambda r: r.json()["loop_closed_at"] is not None,
                                  what="the release closes the billing loop")).json()
        assert billing["release"]["version"] == "4.3.0" and billing["status"] == "done"

        # A new login item after the close: one regression insight; a second one revises it.
        for n in range(2):
            fresh = classified(f"again-{n}", created_at=now - timedelta(minutes=10 - n), received_at=now,
                               text="Locked out again", themes=[LOGIN], customer={"id": "acme", "mrr": 2000.0})
            await publish_events(kafka_settings, FEEDBACK_CLASSIFIED, [fresh], key="feedback_id")
            await wait_for(lambda: client.get(f"/v1/links/{theme_link['link_id']}"),
                           lambda r, n=n: r.json()["regressed_items"] == n + 1, what=f"regression {n + 1} flagged")

        events = await read_events(kafka_settings, INSIGHTS, lambda es: sum(
            e.data.type == "loop_regression" for e in es) >= 2, what="the loop insights")
        closed = [e.data for e in events if e.data.type == "loop_closed"]
        assert len(closed) == 3, "one per link: theme, item set (same issue) and billing, never twice"
        login = next(i for i in closed if i.loop is not None and i.loop.link_id == theme_link["link_id"])
        assert login.loop is not None and login.title == "Fixed: Login & authentication — 3 customers to tell"
        by_id = {c.id: c for c in login.loop.customers}
        assert by_id["acme"].owner == "ann@us.example" and by_id["initech"].owner is None
        assert login.loop.items == 8 and len(login.evidence) == 8
        assert [c.id for c in by_id["acme"].conversations] == ["T-0", "T-6"], "newest first"
        regression = [e.data for e in events if e.data.type == "loop_regression"]
        assert [r.revision for r in regression] == [1, 2]
        assert len({str(r.insight_id) for r in regression}) == 1 and regression[1].metrics["regressed_items"] == 2

        # KPIs, the themes list and the dashboard.
        kpis = (await client.get("/v1/kpis", params={"window": "7d"})).json()["loop"]
        assert kpis["links"] == 4 and kpis["closed"] == 3 and kpis["issues_created"] == 3
        assert kpis["customers_told"] == 3 + 2 + 1 and kpis["regressions"] == 1
        assert kpis["closed_item_share"] == round(11 / 13, 4), "the two items after the close are not answered"
        themes = {t["id"]: t for t in (await client.get("/v1/themes")).json()["items"]}
        assert [x["issue_key"] for x in themes["account.login"]["links"]] == [theme_link["issue_key"]]
        loop = (await client.get("/v1/themes/account.login/loop")).json()
        assert loop["loop"]["closed"] == 1 and loop["links"][0]["time_to_close_s"] is not None
        page = (await client.get("/")).text
        assert 'id="loop"' in page and theme_link["issue_key"] in page and "loop closed" in page
        assert theme_link["issue_key"] in (await client.get("/dashboard/themes/account.login")).text

        gone = await client.delete(f"/v1/links/{items_link['link_id']}")
        assert gone.status_code == 204
        assert (await client.get(f"/v1/links/{items_link['link_id']}")).status_code == 404
