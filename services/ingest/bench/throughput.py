"""Benchmark: ingest throughput on loopback — single-item posts, 1,000-item batches, signed Zendesk webhooks.

    .venv/bin/python services/ingest/bench/throughput.py [--seconds 10] [--concurrency 16]

Starts a real embedded broker and ingest (``python -m ingest``, its own process, SQLite in a temporary
folder, the outbox relay publishing to the broker as in production), then drives it for ``--seconds`` per
scenario from a bounded asyncio httpx client (``--concurrency`` requests in flight). Every request carries
new items, so each one is a durable write (202 only after commit). Prints a table (items/s, requests/s,
p50/p99 latency, errors) and writes JSON to ``var/bench/ingest.json``. Numbers depend on the machine and
on what else runs on it: the JSON records the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from feedbackloop.broker import EmbeddedBroker
from feedbackloop.keys import KeyStore
from feedbackloop.testing import free_port

SECRET = "bench-zendesk-secret"
TEXT = ("Checkout crashes on iOS when I pay with Apple Pay; support said to reinstall but it still fails "
        "after the latest update, and my team cannot invoice customers this week.")

Request = tuple[str, bytes, dict[str, str], int]  # path, body, headers, items


def _single(n: int) -> Request:
    body = json.dumps({"source": "bench", "external_id": f"s-{n}", "text": f"{TEXT} #{n}"}).encode()
    return "/v1/feedback", body, {"content-type": "application/json"}, 1


def _batch(n: int) -> Request:
    items = [{"source": "bench", "external_id": f"b-{n}-{i}", "text": f"{TEXT} #{n}.{i}"} for i in range(1000)]
    return "/v1/feedback", json.dumps(items).encode(), {"content-type": "application/json"}, 1000


def _zendesk(n: int) -> Request:
    now = datetime.now(UTC)
    payload = {
        "type": "zen:event-type:ticket.created", "account_id": 1, "id": f"evt-{n}", "time": now.isoformat(),
        "zendesk_event_version": "2022-11-06", "subject": f"zen:ticket:{n}",
        "detail": {"id": str(100000 + n), "subject": "Checkout crash", "description": f"{TEXT} #{n}",
                   "requester_id": str(n % 500), "organization_id": "42", "created_at": now.isoformat(),
                   "tags": ["ios"]},
    }
    body = json.dumps(payload).encode()
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    sig = base64.b64encode(hmac.new(SECRET.encode(), stamp.encode() + body, hashlib.sha256).digest()).decode()
    headers = {"content-type": "application/json", "x-zendesk-webhook-signature": sig,
               "x-zendesk-webhook-signature-timestamp": stamp}
    return "/v1/webhooks/zendesk", body, headers, 1


SCENARIOS: dict[str, Callable[[int], Request]] = {
    "single item": _single, "1,000-item batch": _batch, "zendesk webhook": _zendesk,
}


async def _drive(url: str, key: str, make: Callable[[int], Request], seconds: float, concurrency: int,
                 counter: itertools.count[int]) -> dict[str, float | int]:
    latencies: list[float] = []
    items = errors = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {key}"}, limits=limits,
                                 timeout=120) as client:

        async def worker() -> None:
            nonlocal items, errors
            while time.monotonic() < deadline:
                path, body, headers, count = make(next(counter))
                started = time.perf_counter()
                try:
                    response = await client.post(path, content=body, headers=headers)
                    ok = response.status_code == 202 and "feedback_ids" in response.json()
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                if ok:
                    items += count
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(latencies), "items": items, "errors": errors, "seconds": round(elapsed, 2),
        "requests_per_second": round(len(latencies) / elapsed, 1), "items_per_second": round(items / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else 0.0,
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1) if ordered else 0.0,
    }


async def _ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"ingest exited with {process.returncode} during start-up")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError("ingest was not ready within 60 s")


def run(seconds: float, concurrency: int) -> dict[str, object]:
    broker = EmbeddedBroker(port=free_port())
    broker.start()
    with tempfile.TemporaryDirectory() as folder:
        keys = Path(folder) / "keys.json"
        key = KeyStore(keys).create("bench", ["write"])[1]
        port = free_port()
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "FEEDBACKLOOP_KEYS_FILE": str(keys),
               "FEEDBACKLOOP_LOG_LEVEL": "WARNING", "INGEST_PORT": str(port),
               "INGEST_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/ingest.db", "INGEST_ZENDESK_SECRET": SECRET,
               "INGEST_SOURCE_RATE_PER_MINUTE": "100000000", "INGEST_KEY_RATE_PER_MINUTE": "100000000"}
        process = subprocess.Popen([sys.executable, "-m", "ingest"], env=env, stdin=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(_ready(url, process))
            counter = itertools.count()
            results = {name: asyncio.run(_drive(url, key, make, seconds, concurrency, counter))
                       for name, make in SCENARIOS.items()}
        finally:
            process.terminate()
            process.wait(30)
            broker.stop()
    return {
        "scenarios": results, "seconds_per_scenario": seconds, "concurrency": concurrency,
        "store": "SQLite (one file, synchronous=FULL)", "broker": "embedded (Tansu)",
        "at": datetime.now(UTC).isoformat(),
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the end)",
        "note": "shared machine: other engineers were running tests and benchmarks at the same time",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 10)))
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    result = run(args.seconds, args.concurrency)
    print(f"{'scenario':<18} {'items/s':>9} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} "
          f"{'errors':>7}")
    for name, r in result["scenarios"].items():  # type: ignore[attr-defined]
        print(f"{name:<18} {r['items_per_second']:>9} {r['requests_per_second']:>11} {r['p50_ms']:>8} "
              f"{r['p99_ms']:>8} {r['requests']:>9} {r['errors']:>7}")
    print(f"concurrency {result['concurrency']}, {result['seconds_per_scenario']} s each; {result['machine']}")
    print(f"note: {result['note']}")
    out = Path("var/bench/ingest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
