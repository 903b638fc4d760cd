"""Overload degrades, never locks: 200 concurrent clients against a service served as ``python -m <service>``
serves it (uvicorn, in a process of its own, with a real broker and store).

Each client sends its request again as soon as it is answered, or after the ``Retry-After`` of a refusal. Every
answer during the storm is a 200/202, or a 503 (or ingest's per-key 429) problem with ``Retry-After`` (never a
500, never a hang), and 95% come within a few seconds (the excess is refused at once rather than queued behind
the store's pool); ``/healthz`` answers within a second throughout (polled from a process of its own) and after;
once the storm is over the same request succeeds again at once. The numbers seen are printed (``-s`` shows
them). Aggregation gets the storm of the incident that asked for this (``GET /v1/feedback?limit=200`` over 600
stored items); each other service its own busiest request.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aggregation_testkit import classified

from feedbackloop.contracts.topics import FEEDBACK_CLASSIFIED
from feedbackloop.keys import KeyStore
from feedbackloop.runtime.kafka import ensure_topics
from feedbackloop.settings import KafkaSettings
from feedbackloop_testing import free_port, publish_events, wait_for

CLIENTS = 200
STORM_SECONDS = float(os.environ.get("OVERLOAD_STORM_SECONDS", "8"))
HEALTHZ_BUDGET = 1.0
#: 95% of requests are served or refused within this: they do not wait behind a queue the size of the storm.
ANSWER_BUDGET = 5.0
ITEMS = 600


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    key: str

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture
def start_service(tmp_path: Path, kafka_settings: KafkaSettings,
                  database_url: Callable[[str], str]) -> Iterator[Callable[..., Served]]:
    """Starts ``python -m <service>`` on a free port with a fresh store, the test's broker and an admin key."""
    started: list[Served] = []
    asyncio.run(ensure_topics(kafka_settings.model_copy(update={"topic_partitions": 1})))

    def start(service: str, **extra: str) -> Served:
        keys = tmp_path / "keys.json"
        key = KeyStore(keys).create("overload test", ["admin"])[1]
        port = free_port()
        prefix = f"{service.upper()}_"
        env = {k: v for k, v in os.environ.items() if not k.startswith((prefix, "FEEDBACKLOOP_", "KAFKA_"))}
        env.update({f"{prefix}PORT": str(port), f"{prefix}DATABASE_URL": database_url(service),
                    "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers, "KAFKA_TOPIC_PARTITIONS": "1",
                    "FEEDBACKLOOP_KEYS_FILE": str(keys), "FEEDBACKLOOP_LOG_FORMAT": "console"},  # as `make run`
                   **{prefix + k.upper(): v for k, v in extra.items()})
        log = tmp_path / f"{service}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen([sys.executable, "-m", service], env=env, stdout=out, stderr=subprocess.STDOUT)
        served = Served(f"http://127.0.0.1:{port}", process, log, key)
        started.append(served)
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"{service} exited early:\n{served.tail()}"
            assert time.monotonic() < deadline, f"{service} not ready in 120 s:\n{served.tail()}"
            try:
                if httpx.get(f"{served.url}/readyz", timeout=2).status_code == 200:
                    return served
            except httpx.HTTPError:
                pass
            time.sleep(0.2)

    yield start
    for served in started:
        served.process.terminate()
        try:
            served.process.wait(30)
        except subprocess.TimeoutExpired:
            served.process.kill()
            served.process.wait()


_PROBE = """
import json, sys, time, httpx
url, latencies, failures = sys.argv[1], [], []
with httpx.Client(timeout=10) as client:
    while not sys.stdin.readline().startswith("stop"):
        started = time.monotonic()
        try:
            status = client.get(url + "/healthz").status_code
            if status != 200:
                failures.append(f"healthz {status}")
        except httpx.HTTPError as exc:
            failures.append(f"healthz {exc!r}")
        latencies.append(time.monotonic() - started)
        print("next", flush=True)
print(json.dumps({"latencies": latencies, "failures": failures}), flush=True)
"""


@dataclass
class Probe:
    """Polls ``/healthz`` every 0.1 s from a process of its own, so that the storm's clients (this process)
    cannot delay it: what it measures is the server's responsiveness alone."""

    url: str
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        process = subprocess.Popen([sys.executable, "-c", _PROBE, self.url], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
        assert process.stdin is not None and process.stdout is not None
        while not self.stop.wait(0.1):
            process.stdin.write("go\n")
            process.stdin.flush()
            process.stdout.readline()
        process.stdin.write("stop\n")
        process.stdin.flush()
        for line in process.stdout:
            if line.startswith("{"):
                seen = json.loads(line)
                self.latencies, self.failures = seen["latencies"], seen["failures"]
        process.wait(10)


@dataclass(frozen=True)
class Ask:
    """One request of the storm, and the status that means it was served."""

    method: str
    path: str
    body: Callable[[int], object] | None = None  # the n-th request's JSON body
    ok: int = 200

    def json(self, n: int) -> object:
        return None if self.body is None else self.body(n)


async def _storm(url: str, ask: Ask, headers: dict[str, str]) -> tuple[Counter[str], list[str], list[float]]:
    """``CLIENTS`` clients, each on its own connection, sending ``ask`` again and again for ``STORM_SECONDS``."""
    seen: Counter[str] = Counter()
    wrong: list[str] = []
    took: list[float] = []
    numbers = itertools.count()
    tls = ssl.create_default_context()  # one for all: building 200 would stall this loop for seconds
    clients = [httpx.AsyncClient(base_url=url, headers=headers, timeout=60, verify=tls,
                                 limits=httpx.Limits(max_connections=1)) for _ in range(CLIENTS)]
    until = time.monotonic() + STORM_SECONDS

    async def client(http: httpx.AsyncClient) -> None:
        async with http:
            while time.monotonic() < until:
                started = time.monotonic()
                try:
                    answer = await http.request(ask.method, ask.path, json=ask.json(next(numbers)))
                except httpx.HTTPError as exc:
                    seen["error"] += 1
                    wrong.append(repr(exc))
                    continue
                finally:
                    took.append(time.monotonic() - started)
                seen[str(answer.status_code)] += 1
                if answer.status_code in (429, 503):  # refused, with when to come back
                    if "retry-after" not in answer.headers or \
                            answer.headers["content-type"] != "application/problem+json":
                        wrong.append(f"{answer.status_code} without Retry-After or problem body: "
                                     f"{dict(answer.headers)}")
                    await asyncio.sleep(float(answer.headers.get("retry-after", "1")))  # as it says
                elif answer.status_code != ask.ok:
                    wrong.append(f"{answer.status_code} {answer.text[:300]}")

    await asyncio.gather(*(client(http) for http in clients))
    return seen, wrong, sorted(took)


async def _degrades_and_recovers(served: Served, ask: Ask) -> None:
    headers = {"authorization": f"Bearer {served.key}"}
    probe = Probe(served.url)
    watcher = threading.Thread(target=probe.run, daemon=True)
    watcher.start()
    started = time.monotonic()
    try:
        seen, wrong, took = await _storm(served.url, ask, headers)
    finally:
        storm = time.monotonic() - started
        probe.stop.set()
        watcher.join(15)
    worst = max(probe.latencies, default=float("nan"))
    p50, p95 = took[len(took) // 2], took[int(len(took) * 0.95)]
    print(f"\noverload: {ask.method} {ask.path}, {CLIENTS} clients for {storm:.1f} s: {dict(seen)}; answers in "
          f"p50 {p50:.2f} s, p95 {p95:.2f} s, max {took[-1]:.2f} s; /healthz worst {worst:.3f} s over "
          f"{len(probe.latencies)} probes")

    after = time.monotonic()
    async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=30) as client:
        health = await client.get("/healthz")
        health_seconds = time.monotonic() - after
        again = await client.request(ask.method, ask.path, json=ask.json(-1))
    recovered = time.monotonic() - after
    print(f"overload: after the storm /healthz in {health_seconds:.3f} s, the same request in {recovered:.2f} s")

    assert served.process.poll() is None, served.tail()
    assert not wrong, f"{len(wrong)} wrong answers, e.g. {wrong[:5]}\n{served.tail()}"
    assert not probe.failures, probe.failures[:5]
    assert seen[str(ask.ok)] > 0, seen
    assert p95 < ANSWER_BUDGET, f"p95 answer {p95:.1f} s: requests queued instead of being refused"
    assert worst < HEALTHZ_BUDGET, f"/healthz took {worst:.2f} s during the storm"
    assert health.status_code == 200 and health_seconds < HEALTHZ_BUDGET, health_seconds
    assert again.status_code == ask.ok and recovered < 5, (again.status_code, recovered)
    assert "Traceback" not in served.log.read_text(errors="replace"), served.tail()


async def test_aggregation_degrades_under_200_clients_and_recovers(start_service: Callable[..., Served],
                                                                   kafka_settings: KafkaSettings) -> None:
    served = start_service("aggregation", detect_interval_seconds="3600")
    text = "The export to CSV times out for our whole team every Monday morning, please fix it. " * 8
    events = [classified(str(n), text=text) for n in range(ITEMS)]
    await publish_events(kafka_settings, FEEDBACK_CLASSIFIED, events, key="feedback_id")
    async with httpx.AsyncClient(base_url=served.url, headers={"authorization": f"Bearer {served.key}"}) as client:
        await wait_for(lambda: client.get("/v1/feedback", params={"limit": 200}),
                       lambda r: r.status_code == 200 and r.json()["next_cursor"] is not None,
                       what=f"{ITEMS} items stored", timeout=90)
    await _degrades_and_recovers(served, Ask("GET", "/v1/feedback?limit=200"))


@pytest.mark.parametrize(("service", "ask", "extra"), [
    ("ingest", Ask("POST", "/v1/feedback", lambda n: {"source": "api", "external_id": f"storm-{n}",
                                                      "text": "Checkout crashes when I pay with Apple Pay"}, ok=202),
     {}),
    ("classification", Ask("POST", "/v1/classify", lambda n: {"text": "The app crashes on login since the update"}),
     {"embeddings": "false"}),
    ("notification", Ask("GET", "/v1/deliveries?limit=100"), {}),
], ids=["ingest", "classification", "notification"])
async def test_each_service_degrades_under_200_clients_and_recovers(start_service: Callable[..., Served],
                                                                    service: str, ask: Ask,
                                                                    extra: dict[str, str]) -> None:
    await _degrades_and_recovers(start_service(service, **extra), ask)
