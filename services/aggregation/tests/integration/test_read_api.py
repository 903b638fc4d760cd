"""Aggregation against a real broker, a real SQLite file and a real HTTP server.

Classified events go in on ``feedback.classified.v1`` the way classification publishes them; the
checks read the results back through the HTTP API and the ``insights.v1`` topic.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from aggregation.config import AggregationSettings
from aggregation.main import create_app
from feedbackloop.contracts import (
    FEEDBACK_CLASSIFIED,
    INSIGHTS,
    ClassifiedFeedback,
    decode,
    encode,
    feedback_id_for,
    new_envelope,
)
from feedbackloop.contracts.envelope import Envelope
from feedbackloop.http import encode_cursor
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import serve_app, store_url, wait_for

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

# external id, minutes after T0, source, kind, sentiment, urgency, channel, customer, plan, themes, area, text
_ROWS: list[tuple[Any, ...]] = [
    ("1", 0, "api", "bug", "negative", "normal", "ticket", "acme", "enterprise", ["checkout"], "payments",
     "Checkout crashes on iOS"),
    ("2", 10, "zendesk", "feature_request", "positive", "low", "chat", "globex", "pro", ["export"], "reports",
     "Please add CSV export"),
    ("3", 20, "api", "complaint", "negative", "high", "email", "acme", "enterprise", ["checkout", "billing"],
     "payments", "Charged twice at CHECKOUT"),
    ("4", 20, "zendesk", "question", "neutral", "normal", "survey", "initech", "free", ["billing"], "billing",
     "How do invoices work?"),
    ("5", 30, "api", "bug", "negative", "critical", "ticket", "umbrella", "enterprise", ["login"], "auth",
     "Login is down for everyone"),
    ("6", 40, "zendesk", "praise", "positive", "low", "review", "globex", "pro", ["export"], "reports",
     "Love the new export"),
    ("7", 50, "api", "bug", "mixed", "normal", "community", "initech", "free", [], None, "Sometimes 100% slow"),
    ("8", 60, "api", "complaint", "negative", "high", "ticket", "umbrella", "enterprise", ["login", "checkout"],
     "auth", "Locked out after checkout"),
]
_NAMES = {"checkout": "Checkout", "export": "Export", "billing": "Billing", "login": "Login"}


def _item(ext: str, minutes: int, source: str, kind: str, sentiment: str, urgency: str, channel: str, customer: str,
          plan: str, themes: list[str], area: str | None, text: str, revision: int = 1) -> ClassifiedFeedback:
    return ClassifiedFeedback.model_validate({
        "feedback_id": feedback_id_for(source, ext), "source": source, "external_id": ext, "channel": channel,
        "text": text, "customer": {"id": customer, "name": customer.title(), "plan": plan, "mrr": 100.0},
        "created_at": T0 + timedelta(minutes=minutes), "received_at": T0 + timedelta(minutes=minutes, seconds=5),
        "revision": revision, "sentiment": {"label": sentiment, "score": -0.5 if sentiment == "negative" else 0.4},
        "kind": kind, "themes": [{"id": t, "name": _NAMES[t], "confidence": 0.8} for t in themes],
        "product_area": area, "urgency": urgency, "language": "en", "model": {"name": "rules", "version": "1"},
        "classified_at": T0 + timedelta(hours=1),
    })


def _settings(tmp_path: Path, kafka: KafkaSettings, common: CommonSettings) -> AggregationSettings:
    return AggregationSettings(database_url=store_url(tmp_path, "aggregation"), kafka=kafka,
                               common=common)


def _envelope(item: ClassifiedFeedback) -> Envelope[Any]:
    return new_envelope(FEEDBACK_CLASSIFIED, item, source="/feedbackloop/classification")


async def _produce(producer: AIOKafkaProducer, envelopes: Iterable[Envelope[Any]],
                   partition: int | None = None) -> list[int]:
    """Send each event keyed by its item; returns the partitions they went to."""
    sent = []
    for env in envelopes:
        meta = await producer.send_and_wait(FEEDBACK_CLASSIFIED.name, encode(env), key=env.subject.encode(),
                                            partition=partition)
        sent.append(meta.partition)
    return sent


def _newest_first(items: Iterable[ClassifiedFeedback]) -> list[str]:
    ordered = sorted(items, key=lambda i: (i.created_at, str(i.feedback_id)), reverse=True)
    return [str(i.feedback_id) for i in ordered]


def _theme_counts(items: Iterable[ClassifiedFeedback]) -> dict[str, tuple[int, int]]:
    counts: dict[str, tuple[int, int]] = {}
    for item in items:
        for theme in item.themes:
            total, negative = counts.get(theme.id, (0, 0))
            counts[theme.id] = (total + 1, negative + (item.sentiment.label == "negative"))
    return counts


async def _all_pages(client: httpx.AsyncClient, path: str, params: dict[str, Any]) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        response = await client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "pagination does not end"


async def _themes(client: httpx.AsyncClient, **params: Any) -> dict[str, tuple[int, int]]:
    response = await client.get("/v1/themes", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return {t["id"]: (t["count"], t["negative_count"]) for t in response.json()["items"]}


async def _read_insights(kafka: KafkaSettings, expected: int) -> list[Envelope[Any]]:
    consumer = AIOKafkaConsumer(INSIGHTS.name, bootstrap_servers=kafka.bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    values: list[bytes] = []
    try:
        async def more() -> int:
            batch = await consumer.getmany(timeout_ms=200)
            values.extend(r.value for rs in batch.values() for r in rs if r.value is not None)
            return len(values)

        await wait_for(more, lambda n: n >= expected, what=f"{expected} events on {INSIGHTS.name}")
        await more()
    finally:
        await consumer.stop()
    return [decode(INSIGHTS, v) for v in values]


async def test_items_themes_corrections_and_urgent_insights(tmp_path: Path, kafka_settings: KafkaSettings,
                                                            common_settings: CommonSettings, read_key: str) -> None:
    items = {str(i.feedback_id): i for i in (_item(*row) for row in _ROWS)}
    first = {fid: _envelope(item) for fid, item in items.items()}
    one = str(feedback_id_for("api", "1"))
    five = str(feedback_id_for("api", "5"))

    async with serve_app(create_app(_settings(tmp_path, kafka_settings, common_settings))) as url, \
            httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {read_key}"}) as client:
        await wait_for(lambda: client.get("/readyz"), lambda r: r.status_code == 200, what="aggregation ready")
        producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
        await producer.start()
        try:
            await _produce(producer, first.values())
            await wait_for(lambda: client.get("/v1/feedback", params={"limit": 200}),
                           lambda r: r.status_code == 200 and len(r.json()["items"]) == len(items),
                           what="every item listed")

            # The list: each item is exactly its event's data; pages cover every item once, in order.
            pages = await _all_pages(client, "/v1/feedback", {"limit": 3})
            assert [len(p) for p in pages] == [3, 3, 2]
            listed = [i for p in pages for i in p]
            assert [i["feedback_id"] for i in listed] == _newest_first(items.values())
            single = await _all_pages(client, "/v1/feedback", {"limit": 1})  # a page ends inside the 12:20 tie
            assert [i["feedback_id"] for p in single for i in p] == _newest_first(items.values())
            assert all(i == items[i["feedback_id"]].model_dump(mode="json", by_alias=True) for i in listed)

            # Each filter selects what it says, alone and combined, also across pages.
            checks: list[tuple[dict[str, Any], Callable[[ClassifiedFeedback], bool]]] = [
                ({"theme": "checkout"}, lambda i: any(t.id == "checkout" for t in i.themes)),
                ({"product_area": "payments"}, lambda i: i.product_area == "payments"),
                ({"kind": "bug"}, lambda i: i.kind == "bug"),
                ({"sentiment": "negative"}, lambda i: i.sentiment.label == "negative"),
                ({"urgency": "high"}, lambda i: i.urgency == "high"),
                ({"source": "zendesk"}, lambda i: i.source == "zendesk"),
                ({"channel": "ticket"}, lambda i: i.channel == "ticket"),
                ({"customer": "acme"}, lambda i: i.customer.id == "acme"),
                ({"plan": "enterprise"}, lambda i: i.customer.plan == "enterprise"),
                ({"q": "checkout"}, lambda i: "checkout" in i.text.lower()),
                ({"q": "100%"}, lambda i: "100%" in i.text),
                ({"q": "_"}, lambda i: False),
                ({"from": (T0 + timedelta(minutes=20)).isoformat(), "to": (T0 + timedelta(minutes=50)).isoformat()},
                 lambda i: T0 + timedelta(minutes=20) <= i.created_at < T0 + timedelta(minutes=50)),
                ({"plan": "enterprise", "sentiment": "negative", "theme": "login"},
                 lambda i: i.customer.plan == "enterprise" and i.sentiment.label == "negative"
                 and any(t.id == "login" for t in i.themes)),
            ]
            for params, keep in checks:
                expected = _newest_first(i for i in items.values() if keep(i))
                got = [i["feedback_id"] for p in await _all_pages(client, "/v1/feedback", {**params, "limit": 2})
                       for i in p]
                assert got == expected, params
                assert expected or params == {"q": "_"}, f"{params} selects nothing: a weak check"

            one_item = await client.get(f"/v1/feedback/{one}")
            assert one_item.status_code == 200 and one_item.json() == items[one].model_dump(mode="json", by_alias=True)

            # Themes: counts of the latest revision of each item, most frequent first, paginated.
            assert await _themes(client) == _theme_counts(items.values())
            theme_pages = await _all_pages(client, "/v1/themes", {"limit": 2})
            flat = [t for p in theme_pages for t in p]
            assert [t["id"] for t in flat] == [t["id"] for t in sorted(flat, key=lambda t: (-t["impact"], t["id"]))]
            assert sorted(t["id"] for t in flat) == sorted(_theme_counts(items.values())), "each theme once"
            checkout = next(t for t in flat if t["id"] == "checkout")
            assert {k: checkout[k] for k in ("id", "name", "count", "negative_count", "negative_share", "customers",
                                             "affected_mrr", "trend")} == {
                "id": "checkout", "name": "Checkout", "count": 3, "negative_count": 3, "negative_share": 1.0,
                "customers": 2, "affected_mrr": 200.0, "trend": {"previous_count": None, "change": None}}
            window = {"from": (T0 + timedelta(hours=1)).isoformat(), "to": (T0 + timedelta(hours=2)).isoformat()}
            assert await _themes(client, **window) == _theme_counts(
                i for i in items.values() if T0 + timedelta(hours=1) <= i.created_at < T0 + timedelta(hours=2))
            assert (await client.get("/v1/themes", params={"from": (T0 + timedelta(minutes=10)).isoformat()})
                    ).status_code == 422, "rollups are hourly: a window must start on a whole hour"

            # A correction (revision 2) moves item 1 from checkout to billing and makes it critical.
            corrected = items[one].model_copy(update={
                "revision": 2, "urgency": "critical", "sentiment": items[one].sentiment.model_copy(
                    update={"label": "neutral"}),
                "themes": [items[one].themes[0].model_copy(update={"id": "billing", "name": "Billing"})],
                "corrected_by": "alice"})
            items[one] = corrected
            second = _envelope(corrected)
            await _produce(producer, [second])
            await wait_for(lambda: client.get(f"/v1/feedback/{one}"), lambda r: r.json().get("revision") == 2,
                           what="revision 2 applied")
            assert await _themes(client) == _theme_counts(items.values())
            assert (await _themes(client))["checkout"] == (2, 2)

            # On item 1's partition, in order: the same event again, revision 2 again under a new event id
            # (its changed text must not land), revision 1 arriving late, then a new item 9 that marks when
            # the three have been handled.
            same_revision = _envelope(corrected.model_copy(update={"text": "same revision, must be ignored"}))
            late = _envelope(_item(*_ROWS[0]))
            [partition] = set(await _produce(producer, [second, same_revision, late]))
            marker = _item("9", 70, "api", "other", "neutral", "low", "api", "acme", "enterprise", [], None, "Hi")
            items[str(marker.feedback_id)] = marker
            await _produce(producer, [_envelope(marker)], partition=partition)
            await wait_for(lambda: client.get(f"/v1/feedback/{marker.feedback_id}"), lambda r: r.status_code == 200,
                           what="marker item stored")
            assert (await client.get(f"/v1/feedback/{one}")).json() == corrected.model_dump(mode="json", by_alias=True)
            assert await _themes(client) == _theme_counts(items.values())

            # Revision 3 stays critical: applied, but the item is not flagged a second time.
            third = corrected.model_copy(update={"revision": 3, "product_area": "payments-v3"})
            items[one] = third
            await _produce(producer, [_envelope(third)])
            await wait_for(lambda: client.get(f"/v1/feedback/{one}"), lambda r: r.json().get("revision") == 3,
                           what="revision 3 applied")
            assert (await client.get(f"/v1/feedback/{one}")).json() == third.model_dump(mode="json", by_alias=True)
            assert await _themes(client) == _theme_counts(items.values())
            billing = await client.get("/v1/feedback", params={"theme": "billing"})
            assert [i["feedback_id"] for i in billing.json()["items"]] == _newest_first(
                i for i in items.values() if any(t.id == "billing" for t in i.themes))
        finally:
            await producer.stop()

        # Urgent items: item 5 (critical at revision 1) and item 1 (critical from revision 2), once each.
        urgent_ids = {str(uuid.uuid5(uuid.UUID(five), "urgent_item")), str(uuid.uuid5(uuid.UUID(one), "urgent_item"))}
        events = await _read_insights(kafka_settings, 2)
        assert sorted(e.subject for e in events) == sorted(urgent_ids), "each urgent item is published once"
        by_subject = {e.subject: e.data for e in events}
        flagged_one = by_subject[str(uuid.uuid5(uuid.UUID(one), "urgent_item"))]
        assert flagged_one.type == "urgent_item" and flagged_one.severity == "critical"
        assert [str(e) for e in flagged_one.evidence] == [one] and flagged_one.metrics == {}
        assert flagged_one.window.from_ == flagged_one.window.to == items[one].created_at
        assert flagged_one.title == "Critical bug from Acme (enterprise)"
        assert all(e.id == e.subject for e in events)

        listed_insights = await client.get("/v1/insights")
        assert listed_insights.status_code == 200
        body = listed_insights.json()
        assert [i["insight_id"] for i in body["items"]] == [str(uuid.uuid5(uuid.UUID(one), "urgent_item")),
                                                            str(uuid.uuid5(uuid.UUID(five), "urgent_item"))]
        assert body["items"][0] == flagged_one.model_dump(mode="json", by_alias=True)
        insight_pages = await _all_pages(client, "/v1/insights", {"limit": 1, "type": "urgent_item",
                                                                  "severity": "critical"})
        assert [len(p) for p in insight_pages] == [1, 1]
        assert {p[0]["insight_id"] for p in insight_pages} == urgent_ids
        assert (await client.get("/v1/insights", params={"severity": "info"})).json()["items"] == []
        assert (await client.get("/v1/insights", params={"type": "spike"})).json()["items"] == []


async def test_bad_requests_are_problems_naming_the_parameter(tmp_path: Path, kafka_settings: KafkaSettings,
                                                              common_settings: CommonSettings, read_key: str) -> None:
    async with serve_app(create_app(_settings(tmp_path, kafka_settings, common_settings))) as url, \
            httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {read_key}"}) as client:

        async def problem(path: str, params: dict[str, Any] | None = None, **kwargs: Any) -> tuple[int, set[str]]:
            response = await client.get(path, params=params, **kwargs)
            assert response.headers["content-type"] == "application/problem+json", response.text
            return response.status_code, {e["field"] for e in response.json().get("errors", [])}

        for path in ("/v1/feedback", "/v1/themes", "/v1/insights", f"/v1/feedback/{uuid.uuid4()}"):
            assert (await problem(path, headers={"authorization": ""}))[0] == 401, path
            assert (await problem(path, headers={"authorization": "Bearer flk_wrong"}))[0] == 401, path
        for path in ("/v1/feedback", "/v1/themes", "/v1/insights"):
            assert await problem(path, {"cursor": "!!not-a-cursor"}) == (400, {"cursor"}), path
            assert await problem(path, {"cursor": encode_cursor(["x", 1, 2])}) == (400, {"cursor"}), path
            assert await problem(path, {"limit": 1000}) == (422, {"limit"}), path
            assert await problem(path, {"limit": 0}) == (422, {"limit"}), path
            assert await problem(path, {"colour": "red"}) == (422, {"colour"}), path
        assert await problem("/v1/feedback", {"cursor": encode_cursor(["not a time", "x"])}) == (400, {"cursor"})
        assert await problem("/v1/feedback", {"cursor": encode_cursor([1, 2])}) == (400, {"cursor"})
        assert await problem("/v1/themes", {"cursor": encode_cursor(["3", "x"])}) == (400, {"cursor"})
        assert await problem("/v1/themes", {"window": "7 days"}) == (422, {"window"})
        assert await problem("/v1/kpis", {"window": "0d"}) == (422, {"window"})
        assert await problem("/v1/kpis", {"to": "2025-03-01T12:30:00Z"}) == (422, {"to"})
        assert await problem("/v1/themes/login/timeseries", {"bucket": "minute"}) == (422, {"bucket"})
        assert await problem("/v1/themes/login/timeseries", {"bucket": "hour", "from": "2020-01-01T00:00:00Z",
                                                              "to": "2025-01-01T00:00:00Z"}) == (422, {"from"})
        assert await problem("/v1/insights", {"cursor": encode_cursor(["2025-01-01T00:00:00", 7])}) == (400,
                                                                                                       {"cursor"})
        for name, value in (("kind", "rant"), ("sentiment", "angry"), ("urgency", "asap"), ("channel", "fax")):
            assert await problem("/v1/feedback", {name: value}) == (422, {name})
        inverted = {"from": "2025-03-02T00:00:00Z", "to": "2025-03-01T00:00:00Z"}
        assert await problem("/v1/feedback", inverted) == (422, {"to"})
        assert await problem("/v1/themes", inverted) == (422, {"to"})
        assert await problem("/v1/feedback", {"from": "yesterday"}) == (422, {"from"})
        assert await problem("/v1/insights", {"type": "gossip"}) == (422, {"type"})
        assert await problem("/v1/insights", {"severity": "meh"}) == (422, {"severity"})
        assert await problem("/v1/feedback/not-a-uuid") == (422, {"feedback_id"})
        assert (await problem(f"/v1/feedback/{uuid.uuid4()}"))[0] == 404
        # The happy path on an empty store, for contrast.
        empty = await client.get("/v1/feedback", params={"kind": "bug", "limit": 200})
        assert empty.status_code == 200 and empty.json() == {"items": [], "next_cursor": None}
