"""Benchmark: notification's consumer end to end — ``feedback.classified.v1`` events routed, then delivered.

    .venv/bin/python services/notification/bench/consumer_throughput.py [--events 10000] [--profile out.txt]

Starts a real embedded broker, a webhook receiver (uvicorn, its own process, answers 200 to every POST) and
notification itself (``python -m notification``, its own process, SQLite in a temporary folder) with a rules file
of 20 rules over 5 teams (a few match each event; two rules throttled with a window that never fills, one team
with quiet hours that are not now, so every match is sent at once). Once the service is ready it publishes
``--events`` classified events as fast as the broker takes them and polls the store until

* **routed**: every event is marked processed (its deliveries queued in the same transaction), and
* **delivered**: every queued delivery succeeded (signed, POSTed, attempt recorded),

timing both from the first publish. Prints items/s for each, p50/p99 of publish→queued and publish→delivered
per delivery (under a burst: mostly time spent waiting in line), the CPU the service used, and writes JSON to
``var/bench/notification-consumer.json``. ``--profile FILE`` records the service with py-spy (raw collapsed
stacks) while the events are handled. Numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiokafka import AIOKafkaProducer

from feedbackloop.broker import EmbeddedBroker
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, ClassifiedFeedback, encode, new_envelope
from feedbackloop.runtime.kafka import ensure_topics
from feedbackloop.settings import KafkaSettings
from feedbackloop_testing import free_port, wait_ready

TEAMS = ["support", "billing", "enterprise", "product", "mobile"]
KINDS = ["bug", "feature_request", "question", "complaint", "praise", "other"]
PLANS = ["free", "pro", "enterprise"]
URGENCIES = ["low", "normal", "high", "critical"]
SENTIMENTS = ["positive", "neutral", "negative", "mixed"]
THEMES = ["billing", "pricing", "mobile", "login", "performance", "export", "search", "onboarding"]
TEXTS = ["The invoice page crashes when I open last month's statement",
         "Please add an export to CSV for the usage report",
         "The app is slow to load the dashboard every morning",
         "Login with SSO fails after the update; my team is locked out",
         "Love the new search, it finds everything instantly"]


def _eq(field: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": "eq", "value": value}


def _rules(hook: str) -> dict[str, Any]:
    """20 rules over 5 teams; an event matches about three of them."""
    conditions: list[tuple[str, dict[str, Any]]] = [
        ("support", {"all": [_eq("kind", "bug")]}),
        ("support", {"all": [{"field": "urgency", "op": "in", "value": ["critical"]}]}),
        ("support", {"all": [_eq("kind", "question"), _eq("customer.plan", "enterprise")]}),
        ("support", {"any": [_eq("sentiment.label", "negative"), _eq("kind", "complaint")]}),
        ("billing", {"all": [_eq("themes.id", "billing")]}),
        ("billing", {"all": [{"field": "themes.id", "op": "in", "value": ["billing", "pricing"]},
                             _eq("sentiment.label", "negative")]}),
        ("billing", {"all": [{"field": "text", "op": "contains", "value": "invoice"}]}),
        ("billing", {"all": [_eq("customer.plan", "pro"), _eq("themes.id", "pricing")]}),
        ("enterprise", {"all": [_eq("customer.plan", "enterprise"), {"field": "customer.mrr", "op": "gte",
                                                                        "value": 5000}]}),
        ("enterprise", {"all": [_eq("customer.plan", "enterprise"), _eq("kind", "complaint")]}),
        ("enterprise", {"all": [_eq("customer.plan", "enterprise"), _eq("urgency", "high")]}),
        ("enterprise", {"not": {"any": [_eq("customer.plan", "free"), _eq("customer.plan", "pro")]}}),
        ("product", {"all": [_eq("kind", "feature_request")]}),
        ("product", {"all": [_eq("kind", "praise"), _eq("sentiment.label", "positive")]}),
        ("product", {"all": [_eq("themes.id", "search")]}),
        ("product", {"all": [_eq("themes.id", "export"), _eq("kind", "feature_request")]}),
        ("mobile", {"all": [_eq("themes.id", "mobile")]}),
        ("mobile", {"all": [_eq("channel", "review")]}),
        ("mobile", {"all": [{"field": "text", "op": "contains", "value": "crash"}]}),
        ("mobile", {"all": [_eq("themes.id", "performance"), _eq("urgency", "critical")]}),
    ]
    quiet_start = datetime.now(UTC) + timedelta(hours=6)  # quiet hours, but not during the run
    rules = []
    for n, (team, match) in enumerate(conditions):
        rule: dict[str, Any] = {"name": f"{team} rule {n}", "team": team, "match": match,
                                "channels": [{"type": "webhook", "url": f"{hook}/hooks/{n}",
                                              "secret": f"bench-secret-{n}"}]}
        if n in (1, 12):
            rule["throttle"] = {"limit": 10_000, "window_s": 3600}  # never fills at 10,000 events
        rules.append(rule)
    teams: list[dict[str, Any]] = [{"name": t} for t in TEAMS]
    teams[3]["quiet_hours"] = {"start": quiet_start.strftime("%H:%M"),
                               "end": (quiet_start + timedelta(hours=1)).strftime("%H:%M"), "timezone": "UTC"}
    return {"teams": teams, "rules": rules}


def _events(count: int, seed: int) -> list[tuple[str, bytes, bytes]]:
    """``count`` encoded classified events: (event id, value, key)."""
    rnd = random.Random(seed)
    now = datetime.now(UTC)
    out = []
    for n in range(count):
        plan = rnd.choice(PLANS)
        item = ClassifiedFeedback.model_validate({
            "feedback_id": str(uuid.UUID(int=rnd.getrandbits(128))), "source": "zendesk",
            "external_id": f"bench-{n}", "channel": rnd.choice(["ticket", "chat", "review", "email"]),
            "text": f"{rnd.choice(TEXTS)} (#{n})", "created_at": now, "received_at": now,
            "customer": {"id": f"c-{n % 700}", "plan": plan, "mrr": rnd.choice([0, 900, 5000, 20000])},
            "revision": 1, "sentiment": {"label": rnd.choice(SENTIMENTS), "score": round(rnd.uniform(-1, 1), 2)},
            "kind": rnd.choice(KINDS), "urgency": rnd.choice(URGENCIES),
            "themes": [{"id": t, "name": t.title(), "confidence": 0.8} for t in rnd.sample(THEMES, rnd.choice([1, 2]))],
            "model": {"name": "bench", "version": "1"}})
        envelope = new_envelope(FEEDBACK_CLASSIFIED, item, source="/bench", event_id=f"bench-{seed}-{n}")
        out.append((envelope.id, encode(envelope), (envelope.subject or envelope.id).encode()))
    return out


RECEIVER = """
import sys, uvicorn
count = 0
async def app(scope, receive, send):
    global count
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    if scope["method"] == "POST":
        count += 1
        body = b""
    else:
        body = str(count).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, lifespan="off")
"""


def _cpu_seconds(pid: int | None) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _counts(db: Path) -> tuple[int, int, int]:
    """(events processed, deliveries queued, deliveries succeeded) so far."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        (processed,) = conn.execute("SELECT count(*) FROM processed_events WHERE topic = ?",
                                    (FEEDBACK_CLASSIFIED.name,)).fetchone()
        queued, done = conn.execute("SELECT count(*), coalesce(sum(status = 'succeeded'), 0) FROM deliveries"
                                    ).fetchone()
    return processed, queued, done


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"p50_s": 0.0, "p99_s": 0.0}
    return {"p50_s": round(ordered[len(ordered) // 2], 3),
            "p99_s": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3)}


def _latencies(db: Path, published: dict[str, float]) -> dict[str, dict[str, float]]:
    queued, delivered = [], []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        for event_id, created, sent in conn.execute("SELECT event_id, created_at, delivered_at FROM deliveries"):
            start = published.get(event_id)
            if start is None:
                continue
            queued.append(_epoch(created) - start)
            if sent is not None:
                delivered.append(_epoch(sent) - start)
    return {"publish_to_queued": _percentiles(queued), "publish_to_delivered": _percentiles(delivered)}


def _epoch(stored: str) -> float:
    value = datetime.fromisoformat(stored)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()




async def _drive(kafka: KafkaSettings, db: Path, events: list[tuple[str, bytes, bytes]],
                 timeout: float) -> dict[str, Any]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    published: dict[str, float] = {}
    started = time.perf_counter()
    try:
        sends = []
        for event_id, value, key in events:
            published[event_id] = time.time()
            sends.append(await producer.send(FEEDBACK_CLASSIFIED.name, value, key=key))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    publish_s = time.perf_counter() - started
    routed_s = delivered_s = None
    queued = done = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processed, queued, done = _counts(db)
        now = time.perf_counter() - started
        if routed_s is None and processed >= len(events):
            routed_s = now
        if routed_s is not None and done >= queued:
            delivered_s = now
            break
        await asyncio.sleep(0.1)
    if delivered_s is None:
        raise TimeoutError(f"not done in {timeout:.0f} s: {processed} events processed, {done}/{queued} delivered")
    return {"publish_s": publish_s, "routed_s": routed_s, "delivered_s": delivered_s, "deliveries": queued,
            "published": published}


def _start_service(folder: Path, bootstrap: str, hook_port: int, port: int,
                   extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``python -m notification`` on ``port`` with the bench's rules file, its store in ``folder``."""
    rules = folder / "rules.yaml"
    rules.write_text(yaml.safe_dump(_rules(f"http://127.0.0.1:{hook_port}")))
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "FEEDBACKLOOP_KEYS_FILE": str(folder / "keys.json"),
           "FEEDBACKLOOP_LOG_LEVEL": "WARNING", "NOTIFICATION_PORT": str(port),
           "NOTIFICATION_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'notification.db'}",
           "NOTIFICATION_RULES_FILE": str(rules), "NOTIFICATION_ALLOW_PRIVATE_TARGETS": "true", **extra_env}
    return subprocess.Popen([sys.executable, "-m", "notification"], env=env, stdin=subprocess.DEVNULL)


def run(events: int, seed: int, profile: Path | None, timeout: float, extra_env: dict[str, str]) -> dict[str, Any]:
    broker = EmbeddedBroker(port=free_port())
    broker.start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            hook_port, port = free_port(), free_port()
            processes.append(subprocess.Popen([sys.executable, "-c", RECEIVER, str(hook_port)],
                                              stdin=subprocess.DEVNULL))
            db = Path(folder) / "notification.db"
            kafka = KafkaSettings(bootstrap_servers=broker.bootstrap)
            asyncio.run(ensure_topics(kafka))
            service = _start_service(Path(folder), broker.bootstrap, hook_port, port, extra_env)
            processes.append(service)
            asyncio.run(wait_ready(f"http://127.0.0.1:{port}", service))
            encoded = _events(events, seed)
            spy = None
            if profile is not None:
                spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-o", str(profile),
                                        "-f", "raw", "--rate", "100", "--pid", str(service.pid)],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
                time.sleep(1.0)
            cpu = _cpu_seconds(service.pid)
            driven = asyncio.run(_drive(kafka, db, encoded, timeout))
            cpu = _cpu_seconds(service.pid) - cpu
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
            latencies = _latencies(db, driven.pop("published"))
            received = int(httpx.get(f"http://127.0.0.1:{hook_port}/count", timeout=10).text)
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(30)
        broker.stop()
    deliveries = driven["deliveries"]
    return {
        "events": events, "deliveries": deliveries, "received": received,
        "deliveries_per_event": round(deliveries / events, 2),
        "publish_seconds": round(driven["publish_s"], 2),
        "routed_seconds": round(driven["routed_s"], 2),
        "routed_events_per_second": round(events / driven["routed_s"], 1),
        "routed_deliveries_per_second": round(deliveries / driven["routed_s"], 1),
        "delivered_seconds": round(driven["delivered_s"], 2),
        "delivered_per_second": round(deliveries / driven["delivered_s"], 1),
        "delivered_events_per_second": round(events / driven["delivered_s"], 1),
        "latency": latencies,
        "service_cpu_seconds": round(cpu, 1),
        "rules": 20, "teams": len(TEAMS), "seed": seed, "profile": str(profile) if profile else None,
        "env": extra_env,
        "store": "SQLite (one file, WAL, synchronous=FULL)", "broker": "embedded (Tansu)",
        "at": datetime.now(UTC).isoformat(),
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the end)",
        "note": "shared machine: other engineers were running tests and benchmarks at the same time",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    parser.add_argument("--profile", type=Path, help="record the service with py-spy into this file (raw)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an extra setting for the service (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("var/bench/notification-consumer.json"))
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    result = run(args.events, args.seed, args.profile, args.timeout, extra)
    lat = result["latency"]
    print(f"{'events':>7} {'deliveries':>10} {'routed s':>9} {'routed ev/s':>12} {'delivered s':>12} "
          f"{'delivered/s':>12} {'queued p50/p99 s':>17} {'delivered p50/p99 s':>20} {'CPU s':>6}")
    print(f"{result['events']:>7} {result['deliveries']:>10} {result['routed_seconds']:>9} "
          f"{result['routed_events_per_second']:>12} {result['delivered_seconds']:>12} "
          f"{result['delivered_per_second']:>12} "
          f"{lat['publish_to_queued']['p50_s']:>8}/{lat['publish_to_queued']['p99_s']:<8} "
          f"{lat['publish_to_delivered']['p50_s']:>10}/{lat['publish_to_delivered']['p99_s']:<9} "
          f"{result['service_cpu_seconds']:>6}")
    print(f"received {result['received']} webhooks; publish took {result['publish_seconds']} s; {result['machine']}")
    print(f"note: {result['note']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
