"""POST /v1/feedback against a real server, a real SQLite file and a real broker."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer

from feedbackloop.contracts import FEEDBACK_RAW, decode, feedback_id_for
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import serve_app, store_url, wait_for
from ingest.config import IngestSettings
from ingest.main import create_app


def _settings(tmp_path: Path, kafka: KafkaSettings, common: CommonSettings) -> IngestSettings:
    return IngestSettings(database_url=store_url(tmp_path, "ingest"), kafka=kafka, common=common)


async def _read_topic(kafka: KafkaSettings, expected: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        FEEDBACK_RAW.name,
        bootstrap_servers=kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    values: list[bytes] = []
    try:

        async def more() -> int:
            batch = await consumer.getmany(timeout_ms=200)
            values.extend(r.value for rs in batch.values() for r in rs)
            return len(values)

        await wait_for(more, lambda n: n >= expected, what=f"{expected} events on {FEEDBACK_RAW.name}")
        await more()
    finally:
        await consumer.stop()
    return values


async def test_item_is_stored_redacted_and_published_once(
    tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str
) -> None:
    body = {
        "source": "api",
        "external_id": "42",
        "text": "Checkout crashes, write to jane.doe@example.com or call +44 20 7946 0958",
        "author": {"email": "Jane.Doe@example.com"},
        "customer": {"id": "acme", "plan": "enterprise"},
    }
    async with serve_app(create_app(_settings(tmp_path, kafka_settings, common_settings))) as url:
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {admin_key}"}) as client:
            first = await client.post("/v1/feedback", json=body)
            again = await client.post("/v1/feedback", json=[body])
        assert first.status_code == 202, first.text
        assert first.json() == again.json() == {"feedback_ids": [str(feedback_id_for("api", "42"))]}
        values = await _read_topic(kafka_settings, 1)

    assert len(values) == 1, "a delivery posted twice must be published once"
    event = decode(FEEDBACK_RAW, values[0])
    assert event.type == "feedbackloop.feedback.raw.v1" and event.subject == str(feedback_id_for("api", "42"))
    assert event.data.text == "Checkout crashes, write to [EMAIL] or call [PHONE]"
    assert event.data.redactions == {"email": 1, "phone": 1}
    assert "example.com" not in values[0].decode()
    assert event.data.author.email_hash and len(event.data.author.email_hash) == 64
    assert json.loads(values[0])["specversion"] == "1.0"


async def test_bad_input_names_the_field_and_stores_nothing(
    tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str
) -> None:
    good = {"source": "api", "external_id": "1", "text": "fine"}
    async with serve_app(create_app(_settings(tmp_path, kafka_settings, common_settings))) as url:
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {admin_key}"}) as client:
            malformed = await client.post(
                "/v1/feedback", content=b'{"source": ', headers={"content-type": "application/json"}
            )
            missing = await client.post("/v1/feedback", json=[good, {"source": "api", "external_id": "2"}])
            wrong_type = await client.post("/v1/feedback", json={**good, "customer": {"mrr": "lots"}})
            too_many = await client.post("/v1/feedback", json=[good] * 1001)
            too_big = await client.post("/v1/feedback", json={**good, "text": "x" * (1 << 20)})
            no_key = await client.post("/v1/feedback", json=good, headers={"authorization": ""})
            stored = await client.post("/v1/feedback", json=good)

    assert malformed.status_code == 400 and malformed.headers["content-type"] == "application/problem+json"
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "1.text"
    assert wrong_type.status_code == 422 and wrong_type.json()["errors"][0]["field"] == "customer.mrr"
    assert too_many.status_code == 413
    assert too_big.status_code == 413
    assert no_key.status_code == 401
    assert stored.status_code == 202
    # Only the last, valid post reached the topic: the rejected batch with a good item stored nothing.
    values = await _read_topic(kafka_settings, 1)
    # external_id leaves ingest as a keyed pseudonym: the item is known by its feedback id
    assert [decode(FEEDBACK_RAW, v).data.feedback_id for v in values] == [feedback_id_for("api", "1")]


async def test_connector_sources_are_reserved_for_their_signed_webhooks(
    tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str
) -> None:
    """A write key posting `source: zendesk, external_id: 6001` would squat the id of the genuine signed ticket
    6001, which would then be dropped as a duplicate: the API refuses every connector's source name."""
    forged = {"source": "zendesk", "external_id": "6001", "text": "Forged ticket"}
    good = {"source": "api", "external_id": "6001", "text": "fine"}
    async with serve_app(create_app(_settings(tmp_path, kafka_settings, common_settings))) as url:
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {admin_key}"}) as client:
            single = await client.post("/v1/feedback", json=forged)
            batch = await client.post("/v1/feedback", json=[good, {**forged, "source": "slack"}])
            stored = await client.post("/v1/feedback", json=good)

    assert single.status_code == 422 and single.headers["content-type"] == "application/problem+json"
    problem = single.json()
    assert problem["errors"][0]["field"] == "source" and problem["errors"][0]["type"] == "reserved_source"
    assert "reserved for its signed webhook" in problem["errors"][0]["message"]
    assert "INGEST_ZENDESK_SECRET" in problem["detail"]
    assert batch.status_code == 422 and [e["field"] for e in batch.json()["errors"]] == ["1.source"]
    assert stored.status_code == 202
    values = await _read_topic(kafka_settings, 1)
    assert [decode(FEEDBACK_RAW, v).data.source for v in values] == ["api"], "the refused requests stored nothing"
