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
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
from loadgen import Send, raw_poster  # the root bench folder is not a package

from feedbackloop.broker import EmbeddedBroker
from feedbackloop.keys import KeyStore
from feedbackloop_testing import free_port, wait_ready

T = TypeVar("T")
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
                 counter: itertools.count[int], client: str) -> dict[str, float | int]:
    """``concurrency`` workers, each one keep-alive connection posting back to back until ``seconds`` pass."""
    latencies: list[float] = []
    items = errors = 0
    deadline = time.monotonic() + seconds
    post = raw_poster(url, key) if client == "raw" else _httpx_poster(url, key, concurrency)
    async with post as send:

        async def worker() -> None:
            nonlocal items, errors
            while time.monotonic() < deadline:
                path, body, headers, count = make(next(counter))
                started = time.perf_counter()
                try:
                    ok = await send(path, body, headers)
                except (OSError, asyncio.IncompleteReadError, httpx.HTTPError):
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


@asynccontextmanager
async def _httpx_poster(url: str, key: str, concurrency: int) -> AsyncIterator[Send]:
    """httpx: the reference client, but it spends ~4 ms of CPU per request (more than ingest itself)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {key}"}, limits=limits,
                                 timeout=120) as client:

        async def send(path: str, body: bytes, headers: dict[str, str]) -> bool:
            response = await client.post(path, content=body, headers=headers)
            return response.status_code == 202 and "feedback_ids" in response.json()

        yield send




def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a process has used so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _group_commits(url: str) -> tuple[float, float]:
    """(items, transactions) of ingest's group-commit histogram so far."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line.startswith("feedbackloop_ingest_group_commit_items_")}
    return values.get('feedbackloop_ingest_group_commit_items_sum{service="ingest"}', 0.0), \
        values.get('feedbackloop_ingest_group_commit_items_count{service="ingest"}', 0.0)


def _run_loop(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard] on Linux and macOS
        return asyncio.run(coro)
    return uvloop.run(coro)


def run(seconds: float, concurrency: int, client: str = "raw", only: list[str] | None = None) -> dict[str, object]:
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
        results: dict[str, dict[str, float | int]] = {}
        try:
            asyncio.run(wait_ready(url, process, timeout=60))
            counter = itertools.count()
            for name, make in SCENARIOS.items():
                if only and name not in only:
                    continue
                broker_pid = broker.process.pid if broker.process else None
                server_cpu, broker_cpu = _cpu_seconds(process.pid), _cpu_seconds(broker_pid)
                client_cpu, groups = time.process_time(), _group_commits(url)
                result = _run_loop(_drive(url, key, make, seconds, concurrency, counter, client))
                requests = max(1, int(result["requests"]))
                after = _group_commits(url)
                result["server_cpu_ms_per_request"] = round(
                    (_cpu_seconds(process.pid) - server_cpu) * 1000 / requests, 2)
                result["client_cpu_ms_per_request"] = round((time.process_time() - client_cpu) * 1000 / requests, 2)
                result["broker_cpu_ms_per_request"] = round(
                    (_cpu_seconds(broker_pid) - broker_cpu) * 1000 / requests, 2)
                transactions = after[1] - groups[1]
                result["items_per_transaction"] = round((after[0] - groups[0]) / transactions, 1) if transactions \
                    else 0.0
                result["load_average"] = round(os.getloadavg()[0], 2)
                results[name] = result
        finally:
            process.terminate()
            process.wait(30)
            broker.stop()
    return {
        "scenarios": results, "seconds_per_scenario": seconds, "concurrency": concurrency, "client": client,
        "store": "SQLite (one file, synchronous=FULL)", "broker": "embedded (Tansu)",
        "at": datetime.now(UTC).isoformat(),
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the end)",
        "note": "shared machine: other engineers were running tests and benchmarks at the same time",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 10)))
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw",
                        help="load generator: a minimal keep-alive HTTP/1.1 client (default) or httpx")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS),
                        help="run only this scenario (repeatable); default: all")
    args = parser.parse_args()
    result = run(args.seconds, args.concurrency, args.client, args.scenario)
    print(f"{'scenario':<18} {'items/s':>9} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} "
          f"{'errors':>7} {'items/txn':>9} {'server CPU':>11} {'client CPU':>11} {'load':>5}")
    for name, r in result["scenarios"].items():  # type: ignore[attr-defined]
        print(f"{name:<18} {r['items_per_second']:>9} {r['requests_per_second']:>11} {r['p50_ms']:>8} "
              f"{r['p99_ms']:>8} {r['requests']:>9} {r['errors']:>7} {r['items_per_transaction']:>9} "
              f"{r['server_cpu_ms_per_request']:>8} ms {r['client_cpu_ms_per_request']:>8} ms "
              f"{r['load_average']:>5}")
    print("items/txn: items per group-commit transaction; CPU: milliseconds of CPU per request "
          "(server = the ingest process)")
    print(f"concurrency {result['concurrency']}, client {result['client']}, {result['seconds_per_scenario']} s each; "
          f"{result['machine']}")
    print(f"note: {result['note']}")
    out = Path("var/bench/ingest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
