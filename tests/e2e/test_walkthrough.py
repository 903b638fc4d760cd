"""The README walkthrough, end to end, on the processes `make run` starts.

One system is started for the module (start-up and the consumer-group joins cost seconds); each
test then drives it the way a user does: curl-like HTTP, a local webhook receiver, the `tail`
command and a second Kafka client library.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from standardwebhooks import Webhook

from feedbackloop.contracts import FEEDBACK_CLASSIFIED, decode, feedback_id_for
from feedbackloop_testing import serve_app, wait_for
from tests.e2e.system import System

pytestmark = pytest.mark.e2e
SECRET = "whsec_" + "c2VjcmV0LWZvci10aGUtd2Fsa3Rocm91Z2gtdGVzdA=="


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = System.on_free_ports(tmp_path_factory.mktemp("var"))
    seconds = running.start()
    print(f"\nmake-run-equivalent up and ready in {seconds:.1f}s")
    yield running
    code = running.stop()
    assert code == 0, "".join(running.output[-40:])
    assert "all stopped" in "".join(running.output[-10:])


@asynccontextmanager
async def receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A local webhook receiver that verifies the Standard Webhooks signature of every request."""
    received: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, bool]:
        body = await request.body()
        payload = Webhook(SECRET).verify(body, dict(request.headers))
        received.append({"id": request.headers["webhook-id"], "payload": payload, "at": time.monotonic()})
        return {"ok": True}

    async with serve_app(app) as url:
        yield f"{url}/hook", received


def auth(system: System) -> dict[str, str]:
    return {"authorization": f"Bearer {system.api_key}"}


async def test_post_feedback_is_classified_aggregated_and_routed(system: System) -> None:
    async with receiver() as (hook_url, received), httpx.AsyncClient(headers=auth(system), timeout=10) as client:
        rule = await client.post(f"{system.url('notification')}/v1/rules", json={
            "name": "enterprise bugs", "team": "payments",
            "match": {"all": [{"field": "kind", "op": "eq", "value": "bug"},
                              {"field": "customer.plan", "op": "eq", "value": "enterprise"}]},
            "channels": [{"type": "webhook", "url": hook_url, "secret": SECRET}]})
        assert rule.status_code == 201, rule.text

        external_id = str(uuid.uuid4())
        body = {"source": "api", "external_id": external_id,
                "text": "Checkout crashes on iOS when I pay with Apple Pay",
                "customer": {"id": "acme", "plan": "enterprise"}}
        posted_at = time.monotonic()
        response = await client.post(f"{system.url('ingest')}/v1/feedback", json=body)
        assert response.status_code == 202, response.text
        feedback_id = response.json()["feedback_ids"][0]
        assert feedback_id == str(feedback_id_for("api", external_id))

        async def listed() -> list[dict[str, Any]]:
            page = await client.get(f"{system.url('aggregation')}/v1/feedback", params={"limit": 20})
            return [i for i in page.json()["items"] if i["feedback_id"] == feedback_id]

        items = await wait_for(listed, bool, timeout=20, what="the item in aggregation")
        classified_after = time.monotonic() - posted_at
        item = items[0]
        assert item["kind"] == "bug" and item["revision"] == 1
        preview = await client.post(f"{system.url('classification')}/v1/classify", json={"text": body["text"]})
        expected = preview.json()
        assert item["sentiment"]["label"] == expected["sentiment"]["label"], "the stored labels are the classifier's"
        assert [t["id"] for t in item["themes"]] == [t["id"] for t in expected["themes"]]
        assert {"sentiment", "themes", "urgency", "language", "model"} <= set(item)

        themes = (await client.get(f"{system.url('aggregation')}/v1/themes")).json()["items"]
        assert themes, "the item's themes are counted"
        for theme in item["themes"]:
            assert any(t["id"] == theme["id"] and t["count"] >= 1 for t in themes)

        await wait_for(lambda: _now(received), lambda r: len(r) >= 1, timeout=20, what="the webhook delivery")
        notified_after = received[0]["at"] - posted_at
        assert received[0]["payload"]["data"]["feedback_id"] == feedback_id

        async def mine() -> list[dict[str, Any]]:
            deliveries = (await client.get(f"{system.url('notification')}/v1/deliveries")).json()["items"]
            return [d for d in deliveries if d["event_id"] and d["rule_id"] == rule.json()["id"]]

        # the receiver has the webhook a moment before notification records the attempt's answer
        recorded = await wait_for(mine, lambda ds: len(ds) == 1 and ds[0]["status"] != "pending", timeout=20,
                                  what="the delivery recorded")
        assert recorded[0]["status"] == "succeeded" and recorded[0]["id"] == received[0]["id"]

        # The same delivery again changes nothing downstream.
        again = await client.post(f"{system.url('ingest')}/v1/feedback", json=body)
        assert again.json()["feedback_ids"] == [feedback_id]
        await asyncio.sleep(2)
        assert len(received) == 1
        assert len(await listed()) == 1
    print(f"\nPOST → classified and listed: {classified_after:.2f}s; POST → webhook received: {notified_after:.2f}s")


async def _now(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return value


async def test_batch_of_items_is_accepted_in_one_call(system: System) -> None:
    batch = [{"source": "api", "external_id": f"batch-{uuid.uuid4()}", "text": f"I love the new dashboard {n}"}
             for n in range(1000)]
    async with httpx.AsyncClient(headers=auth(system), timeout=30) as client:
        response = await client.post(f"{system.url('ingest')}/v1/feedback", json=batch)
        assert response.status_code == 202, response.text
        assert len(set(response.json()["feedback_ids"])) == 1000


def test_tail_prints_cloudevents_and_another_client_library_reads_them(system: System) -> None:
    tail = subprocess.run([sys.executable, "-m", "feedbackloop.cli.main", "tail", FEEDBACK_CLASSIFIED.name,
                           "--bootstrap", system.bootstrap, "--count", "1"],
                          capture_output=True, text=True, timeout=60, check=True)
    document = json.loads(tail.stdout.splitlines()[0])
    assert document["specversion"] == "1.0" and document["type"] == "feedbackloop.feedback.classified.v1"
    assert decode(FEEDBACK_CLASSIFIED, tail.stdout.splitlines()[0].encode()).data.revision >= 1

    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": system.bootstrap, "group.id": "e2e-confluent",
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(FEEDBACK_CLASSIFIED.name, timeout=10)
        partitions = list(metadata.topics[FEEDBACK_CLASSIFIED.name].partitions)
        consumer.assign([TopicPartition(FEEDBACK_CLASSIFIED.name, p, 0) for p in partitions])
        deadline = time.monotonic() + 30
        message = None
        while message is None and time.monotonic() < deadline:
            candidate = consumer.poll(1.0)
            if candidate is not None and candidate.error() is None:
                message = candidate
        assert message is not None, "confluent-kafka read nothing"
        event = json.loads(message.value())
        assert event["type"] == "feedbackloop.feedback.classified.v1"
        assert message.key().decode() == event["subject"] == event["data"]["feedback_id"]
        assert dict(message.headers() or [])["traceparent"].startswith(b"00-")
    finally:
        consumer.close()


def test_a_second_run_in_the_same_folder_says_so_in_one_line(system: System) -> None:
    second = subprocess.run(system.command(), env=system.env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert second.stderr.strip().count("\n") == 0 and "already running" in second.stderr
    assert "Traceback" not in second.stderr + second.stdout


def test_a_taken_port_is_named(tmp_path: Path, system: System) -> None:
    other = System.on_free_ports(tmp_path)
    other.ports["ingest"] = system.ports["ingest"]  # held by the running system
    result = subprocess.run(other.command(), env=other.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and f"port {system.ports['ingest']} (ingest) is already in use" in result.stderr
    assert "Traceback" not in result.stderr
