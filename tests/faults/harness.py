"""The fault-injection harness: the four services as separate processes, a steady stream, a webhook receiver.

A :class:`Stack` starts the embedded broker and each service as its own ``python -m <service>`` process (not
under the launcher, which stops everything when one child dies), so that a test can kill, stop and restart
any one of them. A :class:`Stream` posts items to ingest at a steady pace, retrying a batch until it is
answered ``202`` (what a real client does), and remembers every accepted id. A :class:`Receiver` is a real
local webhook endpoint that records each delivery's ``webhook-id`` and feedback id and can go down (its
port closed) and come back. :func:`check` compares the end state with what was accepted and returns one
table row.

Waits are conditions with deadlines (:func:`feedbackloop_testing.wait_for`), generous because CI's two
cores are shared; a deadline that passes fails with what was seen (how many items were still missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response

from feedbackloop.contracts import feedback_id_for
from feedbackloop.keys import KeyStore
from feedbackloop.runtime.kafka import ensure_topics
from feedbackloop.settings import KafkaSettings
from feedbackloop_testing import (
    broker_kind_under_test,
    free_port,
    make_test_broker,
    postgres_store_url,
    serve_app,
    wait_for,
)

SERVICES = ("ingest", "classification", "aggregation", "notification")
#: Most items one scenario posts (the stream stops earlier once its faults are over) — unless FAULTS_ITEMS is
#: given: then every scenario streams exactly that many (`make test-faults FAULTS_ITEMS=10000`, the scale proof).
ITEMS = int(os.environ.get("FAULTS_ITEMS", "1000"))
ALL_ITEMS = "FAULTS_ITEMS" in os.environ
#: The stream's pace in items per second: a scenario's faults all land while it runs.
RATE = float(os.environ.get("FAULTS_RATE", "10"))
#: Deadline of each wait for the loop to converge (seconds).
DEADLINE = float(os.environ.get("FAULTS_DEADLINE", "240"))
RECEIVER_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PARTITIONS = 3

TEXTS = (
    "The app crashes when I export a report",
    "Please add dark mode to the mobile app",
    "Love the new dashboard, great work!",
    "How do I reset my password?",
    "Billing charged me twice, this is unacceptable",
    "Login is very slow since the last update",
    "The search does not find archived tickets",
    "Would be great to have an API for exports",
)
PLANS = ("free", "pro", "enterprise", "pro", "free")


def plan_of(n: int) -> str:
    return PLANS[n % len(PLANS)]


class Proc:
    """One service process; its output goes to a log file in the stack's folder."""

    def __init__(self, name: str, module: str, env: dict[str, str], log: Path, port: int) -> None:
        self.name, self.module, self.env, self.log, self.port = name, module, env, log, port
        self.process: subprocess.Popen[bytes] | None = None
        self._log_from = 0  # where this start's output begins in the log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self._log_from = out.tell()
            self.process = subprocess.Popen([sys.executable, "-m", self.module], env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def _lost_its_port(self) -> bool:
        """Exited because its port was taken between our pick and its bind (another scenario's process, or an
        outgoing connection given that port by the kernel): the pick is ours to redo, not the service's fault."""
        if self.process is None or self.process.poll() is None:
            return False
        with open(self.log, "rb") as log:
            log.seek(self._log_from)
            return b"address already in use" in log.read().lower()

    def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def sigterm(self, timeout: float = 40) -> int:
        """SIGTERM and wait for the exit; a process that does not stop in time fails the scenario."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.name} did not stop within {timeout}s of SIGTERM; see {self.log}") from exc

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def ready(self, client: httpx.AsyncClient) -> bool:
        if self._lost_its_port():
            self.port = free_port()
            self.env = {**self.env, f"{self.module.upper()}_PORT": str(self.port)}
            self.start()
            return False
        try:
            return (await client.get(f"{self.url}/readyz", timeout=2)).status_code == 200
        except httpx.HTTPError:
            return False


class Receiver:
    """A local webhook endpoint that records each delivery; :meth:`down` closes its port, :meth:`up` reopens it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.deliveries: list[tuple[str, str]] = []  # (webhook-id, feedback_id) per attempt received
        self._server: contextlib.AbstractAsyncContextManager[str] | None = None
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = json.loads(await request.body())
            feedback_id = body["data"].get("feedback_id", body["data"].get("insight_id", "?"))
            self.deliveries.append((request.headers["webhook-id"], str(feedback_id)))
            return Response(status_code=204)

        self.app = app

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def up(self) -> None:
        self._server = serve_app(self.app, self.port)
        await self._server.__aenter__()

    async def down(self) -> None:
        if self._server is not None:
            await self._server.__aexit__(None, None, None)
            self._server = None

    def notified(self) -> Counter[str]:
        """Distinct webhook-ids per feedback id (a retry of one delivery keeps its webhook-id)."""
        return Counter(feedback_id for _, feedback_id in set(self.deliveries))


class Stack:
    """Broker + the four services as separate processes, each with its own SQLite store in ``folder``.

    The broker is the kind under test (``FEEDBACKLOOP_TEST_BROKER``), or Apache Kafka whenever ``brokers`` is 3.
    """

    def __init__(self, folder: Path, copies: dict[str, int] | None = None, env: dict[str, str] | None = None,
                 brokers: int = 1, postgres: bool = False) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.broker = make_test_broker(folder, nodes=brokers, log=open(folder / "broker.log", "ab"))  # noqa: SIM115
        durable = brokers > 1 or broker_kind_under_test() == "apache"
        keys = folder / "keys.json"
        self.key = KeyStore(keys).create("faults", ["admin"])[1]
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("INGEST_", "CLASSIFICATION_", "AGGREGATION_", "NOTIFICATION_", "FEEDBACKLOOP_",
                                     "KAFKA_"))}
        base.update({"KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap, "KAFKA_TOPIC_PARTITIONS": str(PARTITIONS),
                     "FEEDBACKLOOP_KEYS_FILE": str(keys), "FEEDBACKLOOP_LOG_LEVEL": "WARNING",
                     "NOTIFICATION_RETRY_SCHEDULE": "0,0.5,1,2,4,8,8,8,8,8,8,8,8,8,8",
                     "NOTIFICATION_RETRY_JITTER": "0", "PYTHONUNBUFFERED": "1",
                     "KAFKA_REPLICATION_FACTOR": str(self.broker.replication_factor),
                     # a broker that lost its data is noticed within 2 s (default 15 s), so recovery stays quick;
                     # Apache Kafka keeps what it acknowledged, so the check is off there (as in production)
                     "FEEDBACKLOOP_BROKER_CHECK_SECONDS": "0" if durable else "2",
                     # Classification on its rules: start-up and labelling stay light on two shared cores, and an
                     # item's labels do not depend on the batch it was encoded in (the int8 embedding model's do,
                     # a little). FAULTS_EMBEDDINGS=1 runs the suite with the model.
                     "CLASSIFICATION_EMBEDDINGS": "true" if os.environ.get("FAULTS_EMBEDDINGS") == "1" else "false"})
        for name in SERVICES:  # PostgreSQL: one database per service on the session's throwaway cluster
            base[f"{name.upper()}_DATABASE_URL"] = (postgres_store_url(folder, name) if postgres
                                                    else f"sqlite+aiosqlite:///{folder}/{name}.db")
        base.update(env or {})
        self.env = base
        self.procs: dict[str, list[Proc]] = {}
        for name in SERVICES:
            self.procs[name] = []
            for copy in range((copies or {}).get(name, 1)):
                port = free_port()
                env_copy = {**base, f"{name.upper()}_PORT": str(port)}
                self.procs[name].append(Proc(f"{name}#{copy}", name, env_copy, folder / f"{name}-{copy}.log", port))
        self.receiver = Receiver()
        self.headers = {"authorization": f"Bearer {self.key}"}

    def __getitem__(self, name: str) -> Proc:
        return self.procs[name][0]

    @property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=self.broker.bootstrap, topic_partitions=PARTITIONS,
                             replication_factor=self.broker.replication_factor)

    async def start(self) -> None:
        await asyncio.to_thread(self.broker.start)
        await ensure_topics(self.kafka)
        await self.receiver.up()
        for procs in self.procs.values():
            procs[0].start()
        await self.wait_ready([procs[0] for procs in self.procs.values()])
        extra = [proc for procs in self.procs.values() for proc in procs[1:]]
        for proc in extra:
            proc.start()
        if extra:
            await self.wait_ready(extra)
        await self.add_rule()

    async def wait_ready(self, procs: list[Proc] | None = None, timeout: float = 90) -> float:
        """Wait until every given process (default: all) answers /readyz 200; returns the seconds it took."""
        started = time.monotonic()
        wanted = procs or [p for ps in self.procs.values() for p in ps]
        async with httpx.AsyncClient() as client:
            for proc in wanted:
                try:
                    await wait_for(lambda p=proc: p.ready(client), bool, timeout=timeout, interval=0.2,  # type: ignore[misc]
                                   what=f"{proc.name} /readyz")
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\n--- {proc.log}:\n{proc.tail()}") from None
        return time.monotonic() - started

    async def add_rule(self) -> None:
        rule = {"name": "enterprise feedback", "team": "faults",
                "match": {"all": [{"field": "event", "op": "eq", "value": "feedback"},
                                  {"field": "customer.plan", "op": "eq", "value": "enterprise"}]},
                "channels": [{"type": "webhook", "url": self.receiver.url, "secret": RECEIVER_SECRET}]}
        async with httpx.AsyncClient(headers=self.headers, timeout=10) as client:
            response = await client.post(f"{self['notification'].url}/v1/rules", json=rule)
            assert response.status_code == 201, response.text

    async def stop(self) -> None:
        for procs in self.procs.values():
            for proc in procs:
                proc.stop()
        await self.receiver.down()
        self.broker.stop()

    def replay_all(self, since: str = "1h") -> str:
        """``feedbackloop replay all --since`` as an operator runs it, with each service's store URL."""
        done = subprocess.run([sys.executable, "-m", "feedbackloop.cli.main", "replay", "all", "--since", since],
                              env=self.env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stderr

    def dlq_replay(self, topic: str) -> str:
        done = subprocess.run([sys.executable, "-m", "feedbackloop.cli.main", "dlq", "replay", topic,
                               "--bootstrap", self.broker.bootstrap], env=self.env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stderr

    async def stored(self) -> list[dict[str, Any]]:
        """Every item aggregation holds (all pages of GET /v1/feedback)."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        async with httpx.AsyncClient(base_url=self["aggregation"].url, headers=self.headers, timeout=20) as client:
            while True:
                params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
                response = await client.get("/v1/feedback", params=params)
                response.raise_for_status()
                page = response.json()
                items += page["items"]
                cursor = page.get("next_cursor")
                if not cursor:
                    return items

    async def missing(self, wanted: set[str]) -> set[str]:
        """The ids of ``wanted`` aggregation does not hold yet."""
        return wanted - {i["feedback_id"] for i in await self.stored()}


@dataclass
class Stream:
    """Posts items to ingest in batches at a steady pace until :meth:`finish`; a refused batch is retried.

    A batch answered anything but ``202`` (a timeout, a 503 while the store is locked, ingest down) is posted
    again, as a real client does; ids are deterministic, so a retry never makes a second item. Every
    answer's status is counted in ``statuses``, and each 503's ``Retry-After`` is kept.
    """

    stack: Stack
    scenario: str
    limit: int = ITEMS
    batch: int = max(10, round(RATE / 10))  # ten posts a second at most: one request in flight keeps up
    rate: float = RATE  # items per second
    accepted: dict[str, int] = field(default_factory=dict)  # feedback_id → n
    sent: int = 0
    retries: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    retry_after: set[str] = field(default_factory=set)
    _end: int = -1
    _task: asyncio.Task[None] | None = None

    def item(self, n: int) -> dict[str, Any]:
        return {"source": "api", "external_id": f"{self.scenario}-{n}", "text": f"{TEXTS[n % len(TEXTS)]} (#{n})",
                "customer": {"id": f"c{n % 37}", "plan": plan_of(n)}}

    def expected_id(self, n: int) -> str:
        return str(feedback_id_for("api", f"{self.scenario}-{n}"))

    def start(self) -> None:
        self._end = self.limit
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        interval = self.batch / self.rate
        # a request may wait out the store's 30 s busy timeout before its 503: the client waits longer
        async with httpx.AsyncClient(headers=self.stack.headers, timeout=60) as client:
            next_at = time.monotonic()
            first = 0
            while first < self._end:
                numbers = list(range(first, min(first + self.batch, self._end)))
                body = [self.item(n) for n in numbers]
                self.sent = numbers[-1] + 1
                while True:
                    # each try goes to the next copy of ingest, as a load balancer would after a failure
                    ingest = self.stack.procs["ingest"][self.retries % len(self.stack.procs["ingest"])]
                    try:
                        response = await client.post(f"{ingest.url}/v1/feedback", json=body)
                        self.statuses[str(response.status_code)] += 1
                        if response.status_code == 503 and "retry-after" in response.headers:
                            self.retry_after.add(response.headers["retry-after"])
                        if response.status_code == 202:
                            ids = response.json()["feedback_ids"]
                            assert ids == [self.expected_id(n) for n in numbers], "ingest answered other ids"
                            self.accepted.update(zip(ids, numbers, strict=True))
                            break
                    except httpx.HTTPError as exc:
                        self.statuses[type(exc).__name__] += 1
                    self.retries += 1
                    await asyncio.sleep(0.3)
                first = numbers[-1] + 1
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def advance(self, items: int) -> None:
        """Wait until ``items`` more items have been accepted (or the stream reached its limit)."""
        target = min(len(self.accepted) + items, self.limit)
        await wait_for(self._progress, lambda n: n >= target, timeout=DEADLINE, interval=0.05,
                       what=f"{target} items of the stream accepted (statuses so far: {dict(self.statuses)})")

    async def _progress(self) -> int:
        assert self._task is not None
        if self._task.done():
            self._task.result()
        return len(self.accepted)

    async def finish(self, tail: int = 40) -> None:
        """Post ``tail`` more items (the loop works after the fault too), or on to ``limit`` when FAULTS_ITEMS is
        given, then stop and wait for the last answer."""
        assert self._task is not None
        self._end = self.limit if ALL_ITEMS else min(self.limit, self.sent + tail)
        await asyncio.wait_for(self._task, timeout=DEADLINE + (self._end - self.sent) / self.rate)


@dataclass
class Row:
    scenario: str
    sent: int
    accepted: int
    stored: int
    duplicates: int
    lost: int
    notifications_expected: int
    notified: int
    notification_duplicates: int
    notifications_lost: int
    wrong_labels: int
    recover_s: float
    seconds: float
    notes: str = ""

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.lost or self.notification_duplicates or self.notifications_lost
                    or self.wrong_labels) and self.stored == self.accepted


async def converged(stack: Stack, wanted: set[str], what: str, timeout: float = DEADLINE) -> None:
    """Wait until aggregation holds every id of ``wanted``; on the deadline fail saying how many are missing."""
    await wait_for(lambda: stack.missing(wanted), lambda gone: not gone, timeout=timeout, interval=0.5,
                   what=f"{what}: {len(wanted)} items in aggregation (last seen: the missing ids)")


async def recovery_time(stack: Stack, before: set[str], lifted_at: float, timeout: float = DEADLINE) -> float:
    """Seconds from the fault being lifted until every item accepted before the fault is in aggregation."""
    await converged(stack, before, "the items accepted before the fault", timeout)
    return time.monotonic() - lifted_at


async def previews(stack: Stack, items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The labels POST /v1/classify gives each item (by feedback id), 100 per request."""
    out: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(headers=stack.headers, timeout=30) as client:
        for first in range(0, len(items), 100):
            chunk = items[first:first + 100]
            body = [{"text": i["text"], "customer": i["customer"]} for i in chunk]
            response = await client.post(f"{stack['classification'].url}/v1/classify", json=body)
            response.raise_for_status()
            for item, labels in zip(chunk, response.json()["items"], strict=True):
                out[item["feedback_id"]] = labels
    return out


def _label_view(data: dict[str, Any]) -> tuple[Any, ...]:
    return (data["kind"], data["sentiment"]["label"], data["urgency"], data.get("product_area"),
            tuple(sorted(t["id"] for t in data["themes"])))


async def check(stack: Stack, stream: Stream, started: float, recover_s: float, *, notes: str = "",
                extra_expected: set[str] | None = None, timeout: float = DEADLINE) -> Row:
    """Wait for the loop to converge on what was accepted, then count what is missing or doubled."""
    accepted = set(stream.accepted) | (extra_expected or set())
    enterprise = {fid for fid, n in stream.accepted.items() if plan_of(n) == "enterprise"}
    waited: list[str] = []
    try:
        await converged(stack, accepted, "all accepted items", timeout)
        await wait_for(_notified_async(stack), lambda got: enterprise <= set(got), timeout=timeout, interval=0.5,
                       what=f"{len(enterprise)} notifications at the receiver")
    except AssertionError as exc:
        waited.append(str(exc)[:300])  # counted as lost below; the row says how many
    items = await stack.stored()
    ids = [i["feedback_id"] for i in items]
    counts = Counter(ids)
    stored = set(ids) & accepted
    duplicates = sum(c - 1 for c in counts.values()) + sum(1 for i in items if i.get("revision", 1) != 1)
    # the right labels: the same as a POST /v1/classify preview of the item's text and customer
    mine = [i for i in items if i["feedback_id"] in stream.accepted]
    expected_labels = await previews(stack, mine)
    wrong = sum(1 for i in mine if _label_view(i) != _label_view(expected_labels[i["feedback_id"]]))
    notified = stack.receiver.notified()
    return Row(scenario=stream.scenario, sent=stream.sent, accepted=len(accepted), stored=len(stored),
               duplicates=duplicates + len(set(ids) - accepted), lost=len(accepted - set(ids)),
               notifications_expected=len(enterprise), notified=len(set(notified) & enterprise),
               notification_duplicates=sum(c - 1 for c in notified.values()) + len(set(notified) - enterprise),
               notifications_lost=len(enterprise - set(notified)), wrong_labels=wrong,
               recover_s=round(recover_s, 1), seconds=round(time.monotonic() - started, 1),
               notes="; ".join([notes, *waited]) if waited else notes)


def _notified_async(stack: Stack) -> Callable[[], Awaitable[Counter[str]]]:
    async def probe() -> Counter[str]:
        return stack.receiver.notified()

    return probe


@contextlib.asynccontextmanager
async def running(folder: Path, copies: dict[str, int] | None = None,
                  env: dict[str, str] | None = None, brokers: int = 1, postgres: bool = False) -> AsyncIterator[Stack]:
    stack = Stack(folder, copies, env, brokers, postgres)
    try:
        await stack.start()
        yield stack
    finally:
        await stack.stop()
