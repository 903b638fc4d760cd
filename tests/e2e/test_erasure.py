"""Erasure (GDPR) end to end, on the processes `make run` starts: `feedbackloop erase --customer` removes one
customer's text from every service, and leaves the other customer's alone."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from feedbackloop_testing import query_store, serve_app, wait_for
from tests.e2e.system import System

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = System.on_free_ports(tmp_path_factory.mktemp("var"))
    running.start()
    yield running
    code = running.stop()
    assert code == 0, "".join(running.output[-40:])


async def test_erase_one_customer_everywhere_and_keep_the_other(system: System) -> None:
    run = uuid.uuid4().hex[:8]
    erased_customer, kept_customer = f"acme-{run}", f"globex-{run}"
    texts = {erased_customer: f"Acme {run}: the invoice export crashes on every run",
             kept_customer: f"Globex {run}: the invoice export crashes on every run"}
    hooks = FastAPI()

    @hooks.post("/hook")
    async def hook(request: Request) -> dict[str, bool]:
        return {"ok": True}

    headers = {"authorization": f"Bearer {system.api_key}"}
    async with serve_app(hooks) as hook_url, httpx.AsyncClient(headers=headers, timeout=10) as client:
        rule = await client.post(f"{system.url('notification')}/v1/rules", json={
            "name": f"all {run}", "team": "support", "match": {"all": []},
            "channels": [{"type": "webhook", "url": f"{hook_url}/hook", "secret": "e2e-secret"}]})
        assert rule.status_code == 201, rule.text
        posted = await client.post(f"{system.url('ingest')}/v1/feedback", json=[
            {"source": "api", "external_id": f"{customer}-1", "text": text,
             "author": {"email": f"someone@{customer}.test"}, "customer": {"id": customer, "plan": "enterprise"}}
            for customer, text in texts.items()])
        assert posted.status_code == 202, posted.text
        erased_id, kept_id = posted.json()["feedback_ids"]

        async def aggregated() -> dict[str, str]:
            response = await client.get(f"{system.url('aggregation')}/v1/feedback", params={"limit": 200})
            return {i["feedback_id"]: i["text"] for i in response.json()["items"]}

        async def deliveries() -> dict[str, dict[str, Any]]:
            listed = (await client.get(f"{system.url('notification')}/v1/deliveries",
                                       params={"rule_id": rule.json()["id"], "limit": 100})).json()["items"]
            return {d["subject"]: (await client.get(f"{system.url('notification')}/v1/deliveries/{d['id']}")).json()
                    for d in listed}

        await wait_for(aggregated, lambda items: {erased_id, kept_id} <= set(items), what="both items aggregated",
                       timeout=90)
        # sent and recorded: an erasure that finds a delivery still pending fails it instead (it never goes out)
        await wait_for(deliveries, lambda ds: {erased_id, kept_id} <= set(ds)
                       and all(d["status"] == "succeeded" for d in ds.values()), what="both items delivered",
                       timeout=60)

        erase = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "feedbackloop.cli.main", "erase", "--customer", erased_customer,
             "--reason", "e2e", "--url", system.url("ingest"), "--key", system.api_key],
            capture_output=True, text=True, timeout=60)
        assert erase.returncode == 0, erase.stderr
        request_id = erase.stdout.strip()
        assert uuid.UUID(request_id) and "1 item(s) erased" in erase.stderr

        shown = await wait_for(lambda: client.get(f"{system.url('ingest')}/v1/erasures/{request_id}"),
                               lambda r: r.status_code == 200 and r.json()["published"], what="the event published")
        assert shown.json()["feedback_ids"] == [erased_id]

        items = await wait_for(aggregated, lambda items: erased_id not in items, what="aggregation erased it",
                               timeout=60)
        assert items[kept_id] == texts[kept_customer]
        assert (await client.get(f"{system.url('aggregation')}/v1/feedback/{erased_id}")).status_code == 404

        def blanked(ds: dict[str, dict[str, Any]]) -> bool:
            return "erased" in ds[erased_id]["payload"]

        routed = await wait_for(deliveries, blanked, what="notification blanked its delivery", timeout=60)
        assert texts[erased_customer] not in str(routed[erased_id]) and erased_customer not in str(routed[erased_id])
        assert routed[erased_id]["status"] == "succeeded", "the delivery log row stays"
        assert routed[kept_id]["payload"]["data"]["text"] == texts[kept_customer]

    classification = system.database_urls["classification"]

    async def classified() -> set[str]:
        return {r[0] for r in await query_store(classification, "SELECT feedback_id FROM classifications")}

    left = await wait_for(classified, lambda ids: erased_id not in ids, what="classification erased it", timeout=60)
    assert kept_id in left
    outbox = await query_store(classification, "SELECT key FROM outbox WHERE key = :k", k=erased_id)
    assert outbox == [], "no retained classified event of the erased item"
    ingest_rows = await query_store(system.database_urls["ingest"],
                                    "SELECT feedback_id, item, raw FROM feedback_items WHERE feedback_id IN (:a, :b)",
                                    a=erased_id, b=kept_id)
    by_id = {fid: f"{item}{raw}" for fid, item, raw in ingest_rows}
    assert texts[erased_customer] not in by_id[erased_id] and erased_customer not in by_id[erased_id]
    assert texts[kept_customer] in by_id[kept_id]
