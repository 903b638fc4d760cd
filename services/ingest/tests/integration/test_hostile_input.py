"""Hostile bodies against a real ingest server: malformed JSON of any depth or number size is a 400 problem, and
a request full of text built to be slow to redact does not stall the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import serve_app
from ingest.config import IngestSettings
from ingest.main import create_app

SLACK_SECRET = "hostile-input-slack-secret"

BODIES = {
    "list nested 10,000 deep": b"[" * 10_000 + b"]" * 10_000,
    "object nested 10,000 deep": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "object nested 100 deep": b'{"text": "hi", "x": ' + b"[" * 100 + b"]" * 100 + b"}",
    "5,000-digit integer": b'{"source": "api", "external_id": "1", "text": "hi", "n": ' + b"9" * 5_000 + b"}",
    "infinite number": b'{"source": "api", "external_id": "1", "text": "hi", "customer": {"mrr": 1e999}}',
    "NaN": b'{"source": "api", "external_id": "1", "text": "hi", "rating": {"kind": "nps", "value": NaN}}',
}


def _slack(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    signature = hmac.new(SLACK_SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"x-slack-signature": f"v0={signature}", "x-slack-request-timestamp": stamp,
            "content-type": "application/json"}


def _settings(database_url: Callable[[str], str], kafka: KafkaSettings, common: CommonSettings) -> IngestSettings:
    return IngestSettings(database_url=database_url("ingest"), kafka=kafka, common=common, slack_secret=SLACK_SECRET)


@pytest.mark.parametrize("route", ["/v1/feedback", "/v1/webhooks/slack"])
async def test_malformed_json_of_any_depth_or_number_size_is_a_400_problem(
    route: str, kafka_settings: KafkaSettings, common_settings: CommonSettings,
    database_url: Callable[[str], str], admin_key: str,
) -> None:
    async with serve_app(create_app(_settings(database_url, kafka_settings, common_settings))) as url:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            answers = {}
            for name, body in BODIES.items():
                headers = _slack(body) if "webhooks" in route else {"authorization": f"Bearer {admin_key}",
                                                                      "content-type": "application/json"}
                answers[name] = await client.post(route, content=body, headers=headers)
            sources = await client.get("/v1/sources", headers={"authorization": f"Bearer {admin_key}"})
    for name, answer in answers.items():
        assert answer.status_code == 400, f"{name}: {answer.status_code} {answer.text[:300]}"
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["title"] == "Malformed JSON" and problem["errors"][0]["field"] == "body", problem
    assert answers["list nested 10,000 deep"].json()["errors"][0]["message"] == "nested too deeply"
    assert answers["object nested 100 deep"].json()["errors"][0]["message"] == "nested deeper than 64 levels"
    assert "digits" in answers["5,000-digit integer"].json()["errors"][0]["message"]
    if "webhooks" in route:  # counted as rejected deliveries, like any other malformed body
        slack = next(s for s in sources.json()["items"] if s["source"] == "slack")
        assert slack["rejections_24h"] == {"malformed_json": len(BODIES)}, slack


async def test_the_event_loop_answers_while_hostile_text_is_redacted(
    kafka_settings: KafkaSettings, common_settings: CommonSettings,
    database_url: Callable[[str], str], admin_key: str,
) -> None:
    """Nine 100 KB texts of digit groups (the slowest kind to redact, ~0.2 s each): /healthz keeps answering.

    The prober is a thread of its own: a client on the server's event loop would be stalled along with it.
    """
    items = [{"source": "api", "external_id": f"hostile-{i}", "text": ("12 " * 34_000)[:100_000]} for i in range(9)]
    waits: list[float] = []
    stop = threading.Event()

    def probe(url: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as prober:
            while not stop.is_set():
                started = time.perf_counter()
                assert prober.get("/healthz").status_code == 200
                waits.append(time.perf_counter() - started)
                stop.wait(0.02)  # the probing interval; the deadline is the POST's own

    async with serve_app(create_app(_settings(database_url, kafka_settings, common_settings))) as url:
        prober = asyncio.create_task(asyncio.to_thread(probe, url))
        try:
            async with httpx.AsyncClient(base_url=url, timeout=120) as client:
                posted = await client.post("/v1/feedback", content=json.dumps(items),
                                           headers={"authorization": f"Bearer {admin_key}",
                                                    "content-type": "application/json"})
        finally:
            stop.set()
            await prober
    assert posted.status_code == 202, posted.text
    assert len(posted.json()["feedback_ids"]) == 9
    assert len(waits) > 5 and max(waits) < 0.5, f"/healthz waited up to {max(waits):.2f} s during the POST"
