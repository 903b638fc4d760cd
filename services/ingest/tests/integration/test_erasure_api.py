"""POST /v1/erasures against a real server, store and broker: ingest blanks its copies and publishes privacy.v1."""

from __future__ import annotations

from pathlib import Path

import httpx

from feedbackloop.contracts import PRIVACY, feedback_id_for
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import query_store, read_events, serve_app, store_url, wait_for
from ingest.config import IngestSettings
from ingest.main import create_app


def _item(external_id: str, customer: str, email: str) -> dict[str, object]:
    return {"source": "api", "external_id": external_id, "text": f"Invoice export broken for {customer}",
            "author": {"email": email, "name": "Jane"}, "customer": {"id": customer, "plan": "pro"}}


async def test_erasure_blanks_the_items_and_publishes_one_event(
    tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str, read_key: str
) -> None:
    url_db = store_url(tmp_path, "ingest")
    settings = IngestSettings(database_url=url_db, kafka=kafka_settings, common=common_settings)
    items = [_item("1", "acme", "jane@acme.test"), _item("2", "acme", "joe@acme.test"),
             _item("3", "globex", "jane@acme.test"), _item("4", "globex", "ann@globex.test")]
    async with serve_app(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {admin_key}"}) as client:
            assert (await client.post("/v1/feedback", json=items)).status_code == 202
            missing = await client.post("/v1/erasures", json={"reason": "no one named"})
            assert missing.status_code == 422, missing.text
            assert {e["field"] for e in missing.json()["errors"]} == {"customer_id", "author_email"}
            reader = await client.post("/v1/erasures", json={"customer_id": "acme"},
                                       headers={"authorization": f"Bearer {read_key}"})
            assert reader.status_code == 403, reader.text

            accepted = await client.post("/v1/erasures", json={"customer_id": "acme", "author_email":
                                                               "JANE@acme.test", "reason": "GDPR art. 17"})
            assert accepted.status_code == 202, accepted.text
            assert accepted.json()["items"] == 3
            request_id = accepted.json()["request_id"]

            shown = await wait_for(lambda: client.get(f"/v1/erasures/{request_id}"),
                                   lambda r: r.status_code == 200 and r.json()["published"], what="published")
            assert shown.json()["customer_id"] == "acme" and "acme.test" not in shown.text
            assert (await client.get(f"/v1/erasures/{feedback_id_for('x', 'y')}")).status_code == 404
            again = await client.post("/v1/feedback", json=items[0])  # a redelivery of an erased item
            assert again.status_code == 202 and again.json()["feedback_ids"] == [str(feedback_id_for("api", "1"))]

    erased = {str(feedback_id_for("api", n)) for n in ("1", "2", "3")}
    rows = await query_store(url_db, "SELECT feedback_id, item, raw FROM feedback_items")
    for feedback_id, item, raw in rows:
        body = f"{item}{raw}"
        if feedback_id in erased:
            assert raw is None and "Invoice" not in body and "acme" not in body and "Jane" not in body, body
        else:
            assert "Invoice export broken for globex" in body
    outbox = await query_store(url_db, "SELECT key FROM outbox WHERE topic = 'feedback.raw.v1'")
    assert {k for (k,) in outbox} == {str(feedback_id_for("api", "4"))}, "erased items' events are not replayable"

    events = await read_events(kafka_settings, PRIVACY, lambda e: len(e) >= 1, what="the privacy.v1 event")
    assert len(events) == 1
    event = events[0]
    assert event.subject == request_id and str(event.data.request_id) == request_id
    assert {str(f) for f in event.data.feedback_ids} == erased
    assert event.data.customer_id == "acme" and event.data.author_email_hash and event.data.reason == "GDPR art. 17"
