"""The service against a real broker, a real SQLite file and a real HTTP server."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from classification.config import ClassificationSettings
from classification.main import create_app
from classification.model.embedding import Encoder
from feedbackloop.contracts import (
    FEEDBACK_CLASSIFIED,
    FEEDBACK_RAW,
    RawFeedback,
    decode,
    encode,
    feedback_id_for,
    new_envelope,
)
from feedbackloop.runtime import ensure_topics
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import query_store, serve_app, store_url, wait_for


def _settings(tmp_path: Path, kafka: KafkaSettings, common: CommonSettings) -> ClassificationSettings:
    return ClassificationSettings(database_url=store_url(tmp_path, "classification"), kafka=kafka,
                                  common=common)


def _raw(external_id: str, text: str, **fields: object) -> RawFeedback:
    now = datetime.now(UTC)
    return RawFeedback.model_validate({"feedback_id": feedback_id_for("api", external_id), "source": "api",
                                       "external_id": external_id, "channel": "api", "text": text,
                                       "created_at": now, "received_at": now, **fields})


async def _read(kafka: KafkaSettings, topic: str, done: Callable[[list[tuple[bytes | None, bytes]]], bool],
                what: str) -> list[tuple[bytes | None, bytes]]:
    """Records (key, value) of ``topic`` from the start, read until ``done(records)``."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    records: list[tuple[bytes | None, bytes]] = []
    try:
        async def more() -> list[tuple[bytes | None, bytes]]:
            batch = await consumer.getmany(timeout_ms=200)
            records.extend((r.key, r.value) for rs in batch.values() for r in rs)
            return records

        await wait_for(more, done, what=what, timeout=45)
    finally:
        await consumer.stop()
    return records


async def test_raw_items_are_classified_once_and_poison_is_dead_lettered(
        tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, encoder: Encoder) -> None:
    bug = _raw("1", "The export crashes with an error every time, we lost all our data!",
               customer={"id": "acme", "plan": "enterprise", "mrr": 5000}, subject="Export broken")
    request = _raw("2", "It would be nice to have a dark mode.")
    praise = _raw("3", "Love the new dashboard, thanks for the great work!", language="en")
    bug_event = new_envelope(FEEDBACK_RAW, bug, source="/test")
    bug_again_new_id = new_envelope(FEEDBACK_RAW, bug, source="/test")  # e.g. re-sent by hand with a new id
    # All on partition 0, in order: when the last item is classified, everything before it has been handled.
    records: list[tuple[bytes, bytes]] = [
        (str(bug.feedback_id).encode(), encode(bug_event)),
        (str(request.feedback_id).encode(), encode(new_envelope(FEEDBACK_RAW, request, source="/test"))),
        (b"poison", b'{"specversion": "1.0", "id": '),  # not JSON
        (str(bug.feedback_id).encode(), encode(bug_event)),  # the same event delivered twice
        (str(bug.feedback_id).encode(), encode(bug_again_new_id)),
        (str(praise.feedback_id).encode(), encode(new_envelope(FEEDBACK_RAW, praise, source="/test"))),
    ]
    await ensure_topics(kafka_settings)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(FEEDBACK_RAW.name, value, key=key, partition=0)
    finally:
        await producer.stop()

    settings = _settings(tmp_path, kafka_settings, common_settings)
    async with serve_app(create_app(settings, encoder=encoder)):
        def has_praise(rs: list[tuple[bytes | None, bytes]]) -> bool:
            return any(decode(FEEDBACK_CLASSIFIED, v).subject == str(praise.feedback_id) for _, v in rs)

        classified = await _read(kafka_settings, FEEDBACK_CLASSIFIED.name, has_praise, "the last item classified")
        dead = await _read(kafka_settings, FEEDBACK_RAW.dlq, lambda rs: len(rs) >= 1, "the poison record in the DLQ")

    events = {decode(FEEDBACK_CLASSIFIED, v).subject: (k, decode(FEEDBACK_CLASSIFIED, v)) for k, v in classified}
    assert len(classified) == 3, "each item is classified once, whatever the duplicates"
    assert set(events) == {str(bug.feedback_id), str(request.feedback_id), str(praise.feedback_id)}
    for subject, (key, event) in events.items():
        assert key == subject.encode()
        assert event.id == str(uuid.uuid5(uuid.UUID(subject), "feedback.classified.v1/1"))
        assert event.type == "feedbackloop.feedback.classified.v1"
        assert event.data.revision == 1 and event.data.model.name == "feedbackloop-embedding"
        assert event.data.classified_at is not None

    bug_out = events[str(bug.feedback_id)][1].data
    assert (bug_out.kind, bug_out.urgency, bug_out.language) == ("bug", "critical", "en")
    assert bug_out.text == bug.text and bug_out.customer.plan == "enterprise" and bug_out.subject == "Export broken"
    assert "data" in {t.id for t in bug_out.themes}
    request_out = events[str(request.feedback_id)][1].data
    assert (request_out.kind, request_out.product_area, request_out.urgency) == ("feature_request", "ui", "low")
    praise_out = events[str(praise.feedback_id)][1].data
    assert (praise_out.kind, praise_out.sentiment.label) == ("praise", "positive")
    assert praise_out.sentiment.score > 0.5

    assert [key for key, _ in dead] == [b"poison"]
    rows = await query_store(settings.database_url,
                             "SELECT feedback_id, revision, kind, sentiment FROM classifications")
    assert sorted(rows) == sorted([(str(bug.feedback_id), 1, "bug", bug_out.sentiment.label),
                                   (str(request.feedback_id), 1, "feature_request", request_out.sentiment.label),
                                   (str(praise.feedback_id), 1, "praise", "positive")])


async def test_preview_labels_without_storing(tmp_path: Path, kafka_settings: KafkaSettings,
                                              common_settings: CommonSettings, read_key: str,
                                              encoder: Encoder) -> None:
    settings = _settings(tmp_path, kafka_settings, common_settings)
    async with serve_app(create_app(settings, encoder=encoder)) as url:
        async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {read_key}"}) as client:
            one = await client.post("/v1/classify", json={"text": "How do I reset my password?"})
            many = await client.post("/v1/classify", json=[
                {"text": "The app crashes on start", "customer": {"plan": "enterprise"}},
                {"text": "Ticket 42", "language": "pt-BR"},
                {"text": "Please add an export to Excel", "subject": "Export"},
            ])
            no_key = await client.post("/v1/classify", json={"text": "hi"}, headers={"authorization": ""})
            bad_key = await client.post("/v1/classify", json={"text": "hi"}, headers={"authorization": "Bearer nope"})
            too_many = await client.post("/v1/classify", json=[{"text": "x"}] * 101)
            just_enough = await client.post("/v1/classify", json=[{"text": "x"}] * 100)
            empty = await client.post("/v1/classify", json=[])
            missing = await client.post("/v1/classify", json=[{"text": "fine"}, {"subject": "no text"}])
            malformed = await client.post("/v1/classify", content=b"{", headers={"content-type": "application/json"})
            taxonomy = await client.get("/v1/taxonomy")
            taxonomy_no_key = await client.get("/v1/taxonomy", headers={"authorization": ""})

    assert one.status_code == 200, one.text
    body = one.json()
    assert (body["kind"], body["themes"][0]["id"], body["product_area"]) == ("question", "account.login", "account")
    assert body["model"]["name"] == "feedbackloop-embedding" and body["explanation"]["themes"]["account.login"]

    assert many.status_code == 200, many.text
    items = many.json()["items"]
    assert [i["kind"] for i in items] == ["bug", "other", "feature_request"]
    assert items[0]["urgency"] == "high" and items[1]["language"] == "pt"
    assert items[2]["product_area"] == "data"

    assert no_key.status_code == 401 and no_key.headers["content-type"] == "application/problem+json"
    assert bad_key.status_code == 401
    assert too_many.status_code == 413 and too_many.json()["title"] == "Too many items"
    assert just_enough.status_code == 200 and len(just_enough.json()["items"]) == 100
    assert empty.status_code == 422
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "1.text"
    assert malformed.status_code == 400

    assert taxonomy.status_code == 200, taxonomy.text
    tree = taxonomy.json()
    assert tree["version"] == "default-2026.1"
    account = next(t for t in tree["themes"] if t["id"] == "account")
    assert "account.login" in {c["id"] for c in account["children"]}
    assert taxonomy_no_key.status_code == 401

    assert await query_store(settings.database_url, "SELECT count(*) FROM classifications") == [(0,)]
    assert await query_store(settings.database_url, "SELECT count(*) FROM outbox") == [(0,)]
