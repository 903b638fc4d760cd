"""Benchmark: signed webhook deliveries per second from the delivery worker to a local receiver.

    .venv/bin/python services/notification/bench/deliveries.py [--events 2000] [--concurrency 16]

Queues ``--events`` matching events (one rule, one webhook channel) in a fresh SQLite store, then runs the real
:class:`~notification.worker.DeliveryWorker` — claim, sign, POST, record each attempt — against a local uvicorn
receiver until every delivery succeeded. Prints a table and writes JSON to ``var/bench/notification.json``.
No broker: this measures the delivery path, not Kafka. Numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, Response

from feedbackloop.db import UnitOfWorkFactory, create_engine, session_factory, upgrade
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import serve_app
from notification.config import NotificationSettings
from notification.domain.targets import TargetPolicy
from notification.main import MIGRATIONS
from notification.service.routing import route_event
from notification.service.rules import RuleDraft, create_rule
from notification.store.models import runtime_tables
from notification.worker import DeliveryWorker


async def run(events: int, concurrency: int) -> dict[str, object]:
    received = 0
    receiver = FastAPI()

    @receiver.post("/hook")
    async def hook() -> Response:
        nonlocal received
        received += 1
        return Response(status_code=204)

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        url = f"sqlite+aiosqlite:///{db}"
        settings = NotificationSettings(database_url=url, delivery_concurrency=concurrency, kafka=KafkaSettings(),
                                        common=CommonSettings(keys_file=Path(folder) / "keys.json"),
                                        retry_schedule="0,1,1", delivery_poll_interval=0.05)
        engine = create_engine(url)
        await upgrade(engine, MIGRATIONS)
        uow = UnitOfWorkFactory(session_factory(engine), runtime_tables, source="/bench")
        async with serve_app(receiver) as base:
            await create_rule(uow, RuleDraft("all", "bench", {"all": []}, [
                {"type": "webhook", "url": f"{base}/hook", "secret": "bench-secret"}]),
                TargetPolicy(https_only=False, allow_private=True))
            data = {"kind": "bug", "text": "x" * 400, "customer": {"plan": "enterprise"}}
            started = time.perf_counter()
            for start in range(0, events, 200):
                async with uow() as unit:
                    for i in range(start, min(events, start + 200)):
                        await route_event(unit, "feedback", f"evt-{i}", data, schedule=(0.0,))
                    await unit.commit()
            queued_s = time.perf_counter() - started
            worker = DeliveryWorker(settings, uow, session_factory(engine))
            started = time.perf_counter()
            task = asyncio.create_task(worker.run())
            while True:
                with sqlite3.connect(db) as conn:
                    (done,) = conn.execute("SELECT count(*) FROM deliveries WHERE status = 'succeeded'").fetchone()
                if done >= events:
                    break
                await asyncio.sleep(0.05)
            sent_s = time.perf_counter() - started
            worker.stop()
            await task
        await engine.dispose()
    return {"events": events, "concurrency": concurrency, "queue_seconds": round(queued_s, 3),
            "queued_per_second": round(events / queued_s, 1), "deliver_seconds": round(sent_s, 3),
            "deliveries_per_second": round(events / sent_s, 1), "received": received,
            "at": datetime.now(UTC).isoformat(), "machine": f"{platform.node()} ({os.cpu_count()} CPUs, "
            f"load {os.getloadavg()[0]:.1f})", "note": "shared machine: other engineers were running at the same time"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    result = asyncio.run(run(args.events, args.concurrency))
    print(f"{'events':>8} {'concurrency':>11} {'queued/s':>9} {'delivered/s':>12} {'received':>9}  machine")
    print(f"{result['events']:>8} {result['concurrency']:>11} {result['queued_per_second']:>9} "
          f"{result['deliveries_per_second']:>12} {result['received']:>9}  {result['machine']}")
    print(f"note: {result['note']}")
    out = Path("var/bench/notification.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
