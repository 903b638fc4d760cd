"""POST /v1/webhooks/{source} and GET /v1/sources against one real server, a real store and a real broker; with
the project's own vendor fixtures and, as the ``handed_data`` tier, with the real payloads handed to the project."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from feedbackloop.contracts import FEEDBACK_RAW, decode
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import handed_data, serve_app, store_url, wait_for
from ingest.config import IngestSettings
from ingest.main import create_app

SECRET = "integration-secret"
OWN = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"


@dataclass(frozen=True)
class Payloads:
    """Which vendor payloads the test posts, and what the Freshdesk ticket says (an API item repeats its words)."""

    handed: bool
    slack: str
    canny: str
    freshdesk: str
    freshdesk_text: str
    same_words: str
    requester: str

    def body(self, name: str) -> bytes:
        return Path(handed_data(f"fixtures/webhooks/{name}")).read_bytes() if self.handed else (OWN / name).read_bytes()


OWN_PAYLOADS = Payloads(
    handed=False, slack="slack/thread_reply.json", canny="canny/post_created.json",
    freshdesk="freshdesk/ticket_created.json",
    freshdesk_text="The reports page shows nothing but a spinner since Monday. Chrome and Firefox both.",
    same_words="the reports page shows nothing but a spinner since monday chrome and firefox both",
    requester="Ada.Okafor@example.com",
)
HANDED_PAYLOADS = Payloads(
    handed=True, slack="slack/message_thread_reply.json", canny="canny/post_created.json",
    freshdesk="freshdesk/ticket_created.json", freshdesk_text="Test ticket description ☃.",
    same_words="test ticket description ☃", requester="Requester-Bob@example.com",
)


async def _events(kafka: KafkaSettings, expected: int) -> list[bytes]:
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


def _slack(body: bytes, ts: int | None = None) -> dict[str, str]:
    stamp = str(ts if ts is not None else int(time.time()))
    sig = "v0=" + hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"x-slack-signature": sig, "x-slack-request-timestamp": stamp, "content-type": "application/json"}


def _canny(nonce: str) -> dict[str, str]:
    sig = base64.b64encode(hmac.new(SECRET.encode(), nonce.encode(), hashlib.sha256).digest()).decode()
    return {"canny-nonce": nonce, "canny-signature": sig, "canny-timestamp": str(int(time.time() * 1000))}


@pytest.mark.parametrize("payloads", [
    pytest.param(OWN_PAYLOADS, id="own"), pytest.param(HANDED_PAYLOADS, id="handed", marks=pytest.mark.handed_data)
])
async def test_webhooks_verify_store_publish_and_report(
    payloads: Payloads, tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings,
    admin_key: str,
) -> None:
    settings = IngestSettings(
        database_url=store_url(tmp_path, "ingest"),
        kafka=kafka_settings,
        common=common_settings,
        slack_secret=SECRET,
        canny_secret=SECRET,
        freshdesk_secret=SECRET,
        source_rate_per_minute=12,
    )
    slack_body = payloads.body(payloads.slack)
    canny_body = payloads.body(payloads.canny)
    freshdesk_body = payloads.body(payloads.freshdesk)
    async with serve_app(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as client:
        accepted = await client.post("/v1/webhooks/slack", content=slack_body, headers=_slack(slack_body))
        again = await client.post("/v1/webhooks/slack", content=slack_body, headers=_slack(slack_body))
        forged = await client.post(
            "/v1/webhooks/slack", content=slack_body, headers={**_slack(slack_body), "x-slack-signature": "v0=00"}
        )
        stale = await client.post("/v1/webhooks/slack", content=slack_body, headers=_slack(slack_body, 1_000_000))
        challenge = json.dumps({"type": "url_verification", "challenge": "c-42"}).encode()
        handshake = await client.post("/v1/webhooks/slack", content=challenge, headers=_slack(challenge))
        unknown = json.dumps({"type": "app_rate_limited"}).encode()
        ignored = await client.post("/v1/webhooks/slack", content=unknown, headers=_slack(unknown))
        malformed = await client.post("/v1/webhooks/slack", content=b"{not json", headers=_slack(b"{not json"))
        not_configured = await client.post("/v1/webhooks/zendesk", content=b"{}")
        unknown_source = await client.post("/v1/webhooks/myspace", content=b"{}")
        canny_first = await client.post("/v1/webhooks/canny", content=canny_body, headers=_canny("nonce-1"))
        canny_replay = await client.post("/v1/webhooks/canny", content=canny_body, headers=_canny("nonce-1"))
        # The same customer writes the same words by email (Freshdesk) and through the API: linked, not dropped.
        fresh = await client.post(f"/v1/webhooks/freshdesk?token={SECRET}", content=freshdesk_body)
        api = await client.post(
            "/v1/feedback",
            headers={"authorization": f"Bearer {admin_key}"},
            json={
                "source": "api",
                "external_id": "dup-1",
                "text": payloads.same_words,
                "author": {"email": payloads.requester},
            },
        )
        flood = [await client.post("/v1/webhooks/typeform", content=b"{}") for _ in range(13)]
        sources = await client.get("/v1/sources", headers={"authorization": f"Bearer {admin_key}"})
        metrics = (await client.get("/metrics")).text
        values = await _events(kafka_settings, 4)

    assert accepted.status_code == 202, accepted.text
    assert again.json() == accepted.json() and len(accepted.json()["feedback_ids"]) == 1
    assert forged.status_code == 401 and forged.json()["check"] == "signature"
    assert SECRET not in forged.text
    assert stale.status_code == 401 and stale.json()["check"] == "timestamp"
    assert handshake.status_code == 200 and handshake.json() == {"challenge": "c-42"}
    assert (
        ignored.status_code == 202
        and ignored.json()["ignored"] is True
        and "app_rate_limited" in ignored.json()["reason"]
    )
    assert malformed.status_code == 400
    assert not_configured.status_code == 401 and "INGEST_ZENDESK_SECRET" in not_configured.json()["detail"]
    assert unknown_source.status_code == 404
    assert canny_first.status_code == 202 and canny_replay.status_code == 401
    assert canny_replay.json()["check"] == "nonce"
    assert fresh.status_code == 202 and api.status_code == 202
    assert [r.status_code for r in flood][-1] == 429 and int(flood[-1].headers["retry-after"]) >= 1

    events = {decode(FEEDBACK_RAW, v).data.source: decode(FEEDBACK_RAW, v).data for v in values}
    assert set(events) == {"slack", "canny", "freshdesk", "api"} and len(values) == 4
    assert events["api"].duplicate_of == events["freshdesk"].feedback_id
    assert events["freshdesk"].duplicate_of is None and events["freshdesk"].text == payloads.freshdesk_text
    assert payloads.requester.lower() not in b"".join(values).decode().lower()

    by_source = {s["source"]: s for s in sources.json()["items"]}
    slack = by_source["slack"]
    assert slack["configured"] is True and slack["deliveries_24h"] == 7 and slack["items_24h"] == 2
    assert slack["rejections_24h"] == {"malformed_json": 1, "signature": 1, "timestamp": 1}
    assert by_source["zendesk"]["status"] == "not_configured"
    assert by_source["canny"]["rejections_24h"] == {"nonce": 1}
    assert by_source["typeform"]["rejections_24h"] == {"not_configured": 12, "rate_limited": 1}
    assert (
        ('feedbackloop_ingest_webhook_deliveries_total'
         '{outcome="rejected",reason="signature",service="ingest",source="slack"}') in metrics
    )
