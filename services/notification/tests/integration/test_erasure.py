"""privacy.v1 on a real broker: notification blanks the deliveries' payloads about erased items (the log rows
stay), once, and queues nothing for an erased item whose classified event arrives later."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from notification_testkit import Receiver, classified, insight, notification_settings

from feedbackloop.contracts import FEEDBACK_CLASSIFIED, INSIGHTS, PRIVACY, ErasureRequest, Insight, encode
from feedbackloop.contracts.envelope import new_envelope
from feedbackloop.contracts.topics import Topic
from feedbackloop.runtime import ensure_topics
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import query_store, serve_app, wait_for
from notification.domain.erasure import ERASED_ERROR
from notification.main import create_app


async def _send(kafka: KafkaSettings, *events: tuple[Topic, Any]) -> None:
    """Publish on partition 0 of each topic, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for topic, payload in events:
            envelope = new_envelope(topic, payload, source="/test")
            await producer.send_and_wait(topic.name, encode(envelope), key=envelope.subject.encode(), partition=0)
    finally:
        await producer.stop()


async def test_privacy_event_blanks_delivery_payloads_and_keeps_the_log(
    tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str
) -> None:
    receiver = Receiver(secrets={"all": "all-secret"})
    settings = notification_settings(tmp_path, kafka_settings, common_settings)
    await ensure_topics(kafka_settings)
    acme = classified(text="Acme Corp: the invoice page crashes", customer={"id": "acme", "name": "Acme Corp"})
    globex = classified(text="Globex: the invoice page crashes", customer={"id": "globex", "name": "Globex"})
    late = classified(text="Acme Corp: in flight when the erasure came", customer={"id": "acme"})
    after = classified(text="Globex: one more", customer={"id": "globex"})
    urgent = Insight.model_validate({**insight().model_dump(), "type": "urgent_item",
                                     "title": "Critical bug from Acme Corp", "evidence": [acme.feedback_id]})
    spike = Insight.model_validate({**insight().model_dump(), "evidence": [acme.feedback_id, globex.feedback_id]})

    async with serve_app(receiver.app()) as hooks, serve_app(create_app(settings)) as url, \
            httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {admin_key}"}) as client:
        created = await client.post("/v1/rules", json={
            "name": "all", "team": "support", "match": {"all": []},
            "channels": [{"type": "webhook", "url": f"{hooks}/hooks/all", "secret": "all-secret"}]})
        assert created.status_code == 201, created.text
        await _send(kafka_settings, (FEEDBACK_CLASSIFIED, acme), (FEEDBACK_CLASSIFIED, globex), (INSIGHTS, urgent),
                    (INSIGHTS, spike))

        async def deliveries() -> list[dict[str, Any]]:
            response = await client.get("/v1/deliveries", params={"limit": 100})
            assert response.status_code == 200, response.text
            return response.json()["items"]  # type: ignore[no-any-return]

        async def payloads() -> dict[str, dict[str, Any]]:
            details = [(await client.get(f"/v1/deliveries/{d['id']}")).json() for d in await deliveries()]
            return {d["subject"]: d for d in details}

        await wait_for(deliveries, lambda ds: len(ds) == 4 and all(d["status"] == "succeeded" for d in ds),
                       what="4 deliveries sent", timeout=40)
        request = ErasureRequest(request_id=uuid.uuid4(), customer_id="acme",
                                 feedback_ids=[acme.feedback_id, late.feedback_id],
                                 requested_at=datetime.now(UTC), reason="test")
        await _send(kafka_settings, (PRIVACY, request), (PRIVACY, request))
        await wait_for(lambda: query_store(settings.database_url, "SELECT request_id FROM erasures"),
                       lambda rows: rows == [(str(request.request_id),)], what="the erasure recorded")
        await _send(kafka_settings, (FEEDBACK_CLASSIFIED, late), (FEEDBACK_CLASSIFIED, after))
        await wait_for(deliveries, lambda ds: any(d["subject"] == str(after.feedback_id) and d["status"] == "succeeded"
                                                  for d in ds), what="the item after the late one delivered",
                       timeout=40)
        shown = await payloads()

    assert str(late.feedback_id) not in shown, "an erased item arriving late queues nothing"
    assert len(shown) == 5 and all(d["status"] == "succeeded" for d in shown.values()), "the log rows stay"
    erased = shown[str(acme.feedback_id)]
    assert "data" not in erased["payload"] and "Acme" not in str(erased["payload"])
    assert erased["payload"]["erased"] == {"request_id": str(request.request_id)}
    assert shown[str(globex.feedback_id)]["payload"]["data"]["text"] == globex.text
    assert "Acme" not in str(shown[str(urgent.insight_id)]["payload"])
    assert shown[str(spike.insight_id)]["payload"]["data"]["evidence"] == [str(globex.feedback_id)]
    assert ERASED_ERROR  # pending deliveries of erased items fail with it (see the unit tests)
