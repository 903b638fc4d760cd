"""privacy.v1 on a real broker: aggregation deletes the items, their urgent insights and evidence, anonymises the
customer's counters, once, and never stores an erased item whose classified event arrives later."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from aggregation.config import AggregationSettings
from aggregation.domain.urgent import urgent_insight_id
from aggregation.main import create_app
from feedbackloop.contracts import (
    FEEDBACK_CLASSIFIED,
    PRIVACY,
    ClassifiedFeedback,
    ErasureRequest,
    feedback_id_for,
)
from feedbackloop.runtime import ensure_topics
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import publish_events, query_store, serve_app, store_url, wait_for

T0 = datetime.now(UTC) - timedelta(hours=2)


def _item(ext: str, customer: str, urgency: str, text: str) -> ClassifiedFeedback:
    return ClassifiedFeedback.model_validate({
        "feedback_id": feedback_id_for("api", ext), "source": "api", "external_id": ext, "channel": "ticket",
        "text": text, "customer": {"id": customer, "name": customer.title(), "plan": "enterprise", "mrr": 100.0},
        "created_at": T0, "received_at": T0, "revision": 1, "sentiment": {"label": "negative", "score": -0.6},
        "kind": "bug", "themes": [{"id": "export", "name": "Export", "confidence": 0.9}], "urgency": urgency,
        "model": {"name": "rules", "version": "1"}, "classified_at": T0,
    })


async def test_privacy_event_erases_items_insights_and_the_customer_once(
    tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, read_key: str
) -> None:
    acme_urgent = _item("1", "acme", "critical", "Acme: export lost all our invoices")
    acme = _item("2", "acme", "normal", "Acme: export is slow")
    globex = _item("3", "globex", "normal", "Globex: export is slow too")
    late = _item("4", "acme", "normal", "Acme: still in flight when the erasure came")
    after = _item("5", "globex", "normal", "Globex: and again")
    settings = AggregationSettings(database_url=store_url(tmp_path, "aggregation"), kafka=kafka_settings,
                                   common=common_settings)
    db = settings.database_url
    await ensure_topics(kafka_settings)
    await publish_events(kafka_settings, FEEDBACK_CLASSIFIED, (acme_urgent, acme, globex), key="feedback_id",
                         partition=0)

    async with serve_app(create_app(settings)) as url, \
            httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {read_key}"}) as client:
        async def listed() -> list[dict[str, Any]]:
            response = await client.get("/v1/feedback", params={"limit": 100})
            return response.json()["items"] if response.status_code == 200 else []

        await wait_for(listed, lambda items: len(items) == 3, what="the three items listed")
        urgent = str(urgent_insight_id(acme_urgent.feedback_id))
        insights = (await client.get("/v1/insights")).json()["items"]
        assert urgent in {i["insight_id"] for i in insights}, insights

        request = ErasureRequest(request_id=uuid.uuid4(), customer_id="acme",
                                 feedback_ids=[acme_urgent.feedback_id, late.feedback_id],  # acme's 2nd: by customer
                                 requested_at=datetime.now(UTC), reason="test")
        await publish_events(kafka_settings, PRIVACY, (request, request), key="request_id", partition=0)
        await wait_for(lambda: query_store(db, "SELECT request_id FROM erasures"),
                       lambda rows: rows == [(str(request.request_id),)], what="the erasure recorded")
        await publish_events(kafka_settings, FEEDBACK_CLASSIFIED, (late, after), key="feedback_id", partition=0)
        items = await wait_for(listed, lambda items: str(after.feedback_id) in {i["feedback_id"] for i in items},
                               what="the item after the late one listed")

        assert {i["feedback_id"] for i in items} == {str(globex.feedback_id), str(after.feedback_id)}
        assert "Acme" not in str(items)
        insights = (await client.get("/v1/insights")).json()["items"]
        assert urgent not in {i["insight_id"] for i in insights}
        assert not any(str(acme_urgent.feedback_id) in i.get("evidence", []) for i in insights)

    label = f"erased:{request.request_id}"
    customer_keys = {r[0] for r in await query_store(db, "SELECT key FROM rollups WHERE dimension = 'customer'")}
    assert "acme" not in customer_keys and label in customer_keys and "globex" in customer_keys
    assert not await query_store(db, "SELECT 1 FROM rollups WHERE key LIKE '%acme'")
    assert not await query_store(db, "SELECT 1 FROM theme_customers WHERE customer_id = 'acme'")
    assert not await query_store(db, "SELECT 1 FROM label_keys WHERE value = 'acme'")
    assert not await query_store(db, "SELECT 1 FROM outbox WHERE key = :k", k=urgent), "no retained urgent event"
    erased = {r[0] for r in await query_store(db, "SELECT feedback_id FROM erased_items")}
    assert erased == {str(acme_urgent.feedback_id), str(acme.feedback_id), str(late.feedback_id)}
    assert len(await query_store(db, "SELECT 1 FROM feedback WHERE customer_id = 'acme'")) == 0
