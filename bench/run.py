"""``make bench``: how fast the loop runs on this machine, in one run, as a table and JSON.

Starts the system as ``make run`` does (``feedbackloop run``: embedded broker, four services, SQLite) on free
ports in a fresh folder under ``var/bench/``, then measures with a bounded async client (httpx) on loopback:

1. ingest, single-item ``POST /v1/feedback`` at a fixed concurrency: requests/s, p50/p99;
2. ingest, batched posts (1,000 items each) at an eighth of that concurrency: items/s, p50/p99 per request;
3. end to end at an offered rate for ``BENCH_SECONDS``: items/s classified (read from
   ``feedback.classified.v1`` with a consumer that stamps arrival), p50/p99 POST→classified, and
   POST→notification sent (a local webhook receiver and a rule matching one item in five), and the CPU each
   process (services, broker, this load generator) spent per item classified: the sum, against the machine's
   cores, is the rate at which the loop saturates them — what stands in the way when the rate falls short;
4. peak RSS of each service (``VmHWM`` in ``/proc/<pid>/status``);
5. step 3 again with a second copy of classification in the same consumer group;
6. step 3 once more on Apache Kafka (``feedbackloop run --kafka apache``, a fresh single node), beside the
   embedded broker's figures, with each broker's peak RSS (``BENCH_KAFKA=embedded`` leaves it out);
7. step 3 at 80 % of the capacity step 3 measured: the latencies the issue's targets speak of;
0. first, before the system starts, the ceilings (:mod:`ceilings`): a bare FastAPI POST under step 1's load,
   and the classification encoder and labelling pipeline alone; the table gives each figure as a ratio to its
   ceiling, which should not vary by machine as the absolute figures do.

Writes ``var/bench/latest.json`` and ``var/bench/<timestamp>.json``. Environment: ``BENCH_SECONDS`` (60),
``BENCH_RATE`` offered end-to-end items/s (600), ``BENCH_CONCURRENCY`` (32), ``BENCH_PROFILE=1`` records every
service with py-spy during each end-to-end phase (:mod:`profiling`; its top frames go into the JSON).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer
from ceilings import bare_post_ceiling, encoder_ceiling  # bench/ is on sys.path when this script runs
from fastapi import FastAPI, Request, Response
from loadgen import raw_poster
from profiling import enabled as profiling_enabled
from profiling import profiled, top_frames

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("ingest", "classification", "aggregation", "notification")
TEXTS = (
    "The app crashes when I export a report to PDF",
    "Please add dark mode to the mobile app",
    "Love the new dashboard, great work team!",
    "How do I reset my password? The link expired",
    "Billing charged me twice this month, unacceptable",
    "Login is very slow since the last update",
    "The search does not find archived tickets",
    "Would be great to have an API for exports",
)
PLANS = ("free", "pro", "enterprise", "pro", "free")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds ``pid`` has used so far (``/proc/<pid>/stat``), or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: the stat file's 14th and 15th fields


def cpu_share(before: dict[str, float], after: dict[str, float], items: int, seconds: float,
              cores: int) -> dict[str, Any]:
    """CPU ms per item of each process between two :meth:`System.cpu_seconds` readings, their sum, the cores
    busy on average, and the rate at which that CPU per item would keep every core busy."""
    used = {name: after[name] - before[name] for name in after if name in before}
    total = sum(used.values())
    return {"ms_per_item": {name: round(s * 1000 / items, 2) for name, s in used.items()} if items else {},
            "total_ms_per_item": round(total * 1000 / items, 2) if items else None,
            "cores_busy": round(total / seconds, 2) if seconds else None, "cores": cores,
            "saturates_at_items_per_s": round(cores * items / total, 1) if total else None}


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


class System:
    """``feedbackloop run`` on free ports, plus optional extra copies of a service in the same consumer group."""

    def __init__(self, folder: Path, kafka: str = "embedded") -> None:
        self.folder = folder
        self.kafka = kafka
        self.broker_port = free_port()
        self.ports = {s: free_port() for s in SERVICES}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(
            ("INGEST_", "CLASSIFICATION_", "AGGREGATION_", "NOTIFICATION_", "FEEDBACKLOOP_", "KAFKA_"))
            or k.startswith("FEEDBACKLOOP_KAFKA_")}  # where Apache Kafka's jars are cached
        self.env.update({f"{s.upper()}_PORT": str(p) for s, p in self.ports.items()})
        # Capacity, not policy, is measured: ingest's per-key limit (3,000 requests a minute) would answer 429.
        self.env.update({"FEEDBACKLOOP_LOG_LEVEL": "WARNING", "NOTIFICATION_RETRY_SCHEDULE": "0,1,2,5",
                         "INGEST_KEY_RATE_PER_MINUTE": "100000000", "INGEST_SOURCE_RATE_PER_MINUTE": "100000000"})
        self.launcher: subprocess.Popen[bytes] | None = None
        self.extra: list[subprocess.Popen[bytes]] = []

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def key(self) -> str:
        return (self.folder / "api-key").read_text().strip()

    async def start(self) -> None:
        self.launcher = subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited
            [sys.executable, "-m", "feedbackloop.cli.main", "run", "--var-dir", str(self.folder), "--broker-port",
             str(self.broker_port), "--kafka", self.kafka], env=self.env, stdout=open(self.folder / "run.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT, start_new_session=True)
        await self.ready([self.url(s) for s in SERVICES])

    async def ready(self, urls: list[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            for url in urls:
                while True:
                    try:
                        if (await client.get(f"{url}/readyz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise SystemExit(f"bench: {url} not ready in {timeout:.0f}s; see {self.folder}/run.log")
                    await asyncio.sleep(0.2)

    async def add_copy(self, service: str) -> None:
        port = free_port()
        env = {**self.env, f"{service.upper()}_PORT": str(port), "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
               "FEEDBACKLOOP_KEYS_FILE": str(self.folder / "keys.json"),
               f"{service.upper()}_DATABASE_URL": f"sqlite+aiosqlite:///{self.folder}/{service}.db",
               f"{service.upper()}_AUTO_MIGRATE": "false"}  # migrated by the first copy; a second would meet a lock
        self.extra.append(subprocess.Popen([sys.executable, "-m", service], env=env,  # noqa: ASYNC220
                                           stdout=open(self.folder / f"{service}-2.log", "ab"),  # noqa: SIM115
                                           stderr=subprocess.STDOUT))
        await self.ready([f"http://127.0.0.1:{port}"])

    def service_pids(self) -> dict[str, list[int]]:
        """Service name → pids, found by the ``-m <service>`` in each child's command line."""
        out: dict[str, list[int]] = {s: [] for s in SERVICES}
        pids = [p.pid for p in self.extra]
        if self.launcher is not None:
            children = Path(f"/proc/{self.launcher.pid}/task/{self.launcher.pid}/children")
            pids += [int(p) for p in children.read_text().split()] if children.exists() else []
        for pid in pids:
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            for name in SERVICES:
                if name.encode() in argv:
                    out[name].append(pid)
        return out

    def peak_rss(self) -> dict[str, list[float | None]]:
        return {name: [peak_rss_mb(p) for p in pids] for name, pids in self.service_pids().items()}

    def broker_pid(self) -> int | None:
        """The broker the launcher started: Tansu (``--listener-url``) or a JVM running ``kafka.Kafka``."""
        if self.launcher is None:
            return None
        # the launcher starts the broker from a worker thread: look at every thread's children
        tasks = Path(f"/proc/{self.launcher.pid}/task")
        for thread in (tasks.iterdir() if tasks.exists() else []):
            try:
                children = [int(p) for p in (thread / "children").read_text().split()]
            except OSError:
                continue
            for pid in children:
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"kafka.Kafka" in argv or b"--listener-url" in argv:
                    return pid
        return None

    def broker_peak_rss(self) -> float | None:
        pid = self.broker_pid()
        return peak_rss_mb(pid) if pid else None

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each service (its copies summed), the broker and this load generator."""
        out = {name: sum(filter(None, (cpu_seconds(p) for p in pids))) for name, pids in self.service_pids().items()}
        broker = self.broker_pid()
        out["broker"] = (cpu_seconds(broker) or 0.0) if broker else 0.0
        out["load generator"] = time.process_time()
        return out

    def stop(self) -> None:
        for process in self.extra:
            process.terminate()
            process.wait(30)
        if self.launcher is not None and self.launcher.poll() is None:
            self.launcher.send_signal(signal.SIGTERM)
            self.launcher.wait(90)


def item(run: str, n: int) -> dict[str, Any]:
    # the run's name is in the text: a phase must not find the texts of an earlier one in the encoder's cache
    return {"source": "bench", "external_id": f"{run}-{n}", "text": f"{TEXTS[n % len(TEXTS)]} ({run} #{n})",
            "customer": {"id": f"c{n % 97}", "plan": PLANS[n % len(PLANS)], "mrr": 100 * (n % 13)}}


async def closed_loop(concurrency: int, seconds: float, call: Callable[[int], Awaitable[int]]) -> dict[str, Any]:
    """``concurrency`` workers calling ``call(n)`` back to back for ``seconds``; counts what it returns."""
    latencies: list[float] = []
    counted = 0
    errors = 0
    next_n = 0
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal counted, errors, next_n
        while time.monotonic() < deadline:
            n = next_n
            next_n += 1
            started = time.perf_counter()
            try:
                got = await call(n)  # not `counted += await …`: that reads `counted` before awaiting
                counted += got
                latencies.append(time.perf_counter() - started)
            except (OSError, asyncio.IncompleteReadError, httpx.HTTPError, AssertionError):
                errors += 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    return {"per_s": round(counted / elapsed, 1), "requests_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": pct(latencies, 0.5), "p99_ms": pct(latencies, 0.99), "errors": errors,
            "concurrency": concurrency, "seconds": round(elapsed, 1)}


JSON_TYPE = {"content-type": "application/json"}
#: Items per request in the batched ingest phase.
BATCH = 1000


async def single_posts(url: str, key: str, seconds: float, concurrency: int) -> dict[str, Any]:
    """Single-item posts from ``concurrency`` keep-alive connections (ingest's phase, and its ceiling's)."""
    async with raw_poster(url, key) as send:
        async def single(n: int) -> int:
            assert await send("/v1/feedback", json.dumps(item("single", n)).encode(), JSON_TYPE)
            return 1

        return await closed_loop(concurrency, seconds, single)


async def ingest_phases(system: System, seconds: float, concurrency: int) -> dict[str, Any]:
    """Single-item and 1,000-item posts (the issue's two ingest rows), from ``concurrency`` (resp. an eighth of
    it) keep-alive connections of the low-overhead client (:mod:`loadgen`: httpx would spend more CPU per request
    than ingest does)."""
    json_type = JSON_TYPE
    single_phase = await single_posts(system.url("ingest"), system.key, seconds, concurrency)
    async with raw_poster(system.url("ingest"), system.key) as send:
        async def batched(n: int) -> int:
            body = json.dumps([item("batch", n * BATCH + i) for i in range(BATCH)]).encode()
            assert await send("/v1/feedback", body, json_type)
            return BATCH

        return {"single": single_phase,
                "batched": await closed_loop(max(2, concurrency // 8), seconds, batched), "batch_items": BATCH}


class Receiver:
    """A webhook endpoint that stamps the arrival of each feedback id."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrived: dict[str, float] = {}
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = json.loads(await request.body())
            self.arrived.setdefault(str(body["data"].get("feedback_id")), time.time())
            return Response(status_code=204)

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                                                    access_log=False))


async def drain(system: System, expected: int, timeout: float | None = None) -> None:
    """Wait until aggregation has handled ``expected`` classified events in total (from its /metrics), so that the
    next phase does not share the machine with a backlog; by default at least 100 items/s is waited for."""
    timeout = timeout if timeout is not None else max(180.0, expected / 100)
    deadline = time.monotonic() + timeout
    handled = 0.0
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            text = (await client.get(f"{system.url('aggregation')}/metrics")).text
            handled = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                          if line.startswith("feedbackloop_events_consumed_total{")
                          and 'topic="feedback.classified.v1"' in line and 'outcome="handled"' in line)
            if handled >= expected:
                return
            await asyncio.sleep(0.5)
    print(f"bench: warning: {handled:.0f} of {expected} items drained after {timeout:.0f}s; the next phase shares "
          "the machine with the rest", file=sys.stderr)



class ClassifiedTail:
    """Records when each item reaches ``feedback.classified.v1`` (first sighting, wall clock) into ``classified``,
    from the topic's end at :meth:`start` until :meth:`stop`."""

    def __init__(self, consumer: AIOKafkaConsumer, classified: dict[str, float]) -> None:
        self._consumer, self._classified = consumer, classified
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, system: System, classified: dict[str, float]) -> ClassifiedTail:
        consumer = AIOKafkaConsumer("feedback.classified.v1", bootstrap_servers=system.bootstrap,
                                    auto_offset_reset="latest", enable_auto_commit=False)
        await consumer.start()
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        await consumer.seek_to_end()
        tail = cls(consumer, classified)
        tail._task = asyncio.create_task(tail._run())
        return tail

    async def _run(self) -> None:
        while not self._stop.is_set():
            for records in (await self._consumer.getmany(timeout_ms=200)).values():
                now = time.time()
                for r in records:
                    self._classified.setdefault(json.loads(r.value)["subject"], now)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        await self._consumer.stop()


async def end_to_end(system: System, run: str, seconds: float, rate: float, receiver: Receiver) -> dict[str, Any]:
    """Offer ``rate`` items/s (batches of 50) for ``seconds``; time each item to classified and to notified."""
    posted: dict[str, float] = {}
    classified: dict[str, float] = {}
    tail = await ClassifiedTail.start(system, classified)
    headers = {"authorization": f"Bearer {system.key}"}
    batch = 50
    cpu_before = system.cpu_seconds()
    started = time.monotonic()
    profile = profiled(system.service_pids() if profiling_enabled() else {}, system.folder, run)
    async with profile as profiles, httpx.AsyncClient(base_url=system.url("ingest"), headers=headers,
                                                      timeout=30) as client:
        async def post(first: int) -> None:
            body = [item(run, n) for n in range(first, first + batch)]
            at = time.time()
            response = await client.post("/v1/feedback", json=body)
            if response.status_code == 202:
                for fid in response.json()["feedback_ids"]:
                    posted[fid] = at

        tasks = []
        n = 0
        while time.monotonic() - started < seconds:
            tasks.append(asyncio.create_task(post(n)))
            n += batch
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        await asyncio.gather(*tasks)
        offered_s = time.monotonic() - started
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not set(posted) <= set(classified):  # noqa: ASYNC110 - a deadline poll
            await asyncio.sleep(0.5)
        cpu_after, cpu_window = system.cpu_seconds(), time.monotonic() - started
    await tail.stop()
    top = top_frames(profiles, 15) if profiling_enabled() else {}  # the raw files are read once
    for service, frames in top.items():
        print(f"bench: {run} {service} top frames: " + "; ".join(f"{f} {share} %" for f, share in frames[:5]),
              file=sys.stderr)
    enterprise = [fid for fid, at in posted.items() if fid in receiver.arrived]
    done = [classified[f] for f in posted if f in classified]
    first_post = min(posted.values()) if posted else 0.0
    span = (max(done) - first_post) if done else 0.0
    await asyncio.sleep(3)  # the last notifications' retry-free path is sub-second; this lets them land
    to_classified = [classified[f] - posted[f] for f in posted if f in classified]
    to_notified = [receiver.arrived[f] - posted[f] for f in enterprise]
    return {"offered_per_s": rate, "posted": len(posted), "posting_s": round(offered_s, 1),
            "classified": len(done), "items_per_s": round(len(done) / span, 1) if span else None,
            "classified_p50_ms": pct(to_classified, 0.5), "classified_p99_ms": pct(to_classified, 0.99),
            "notified": len(to_notified), "notified_p50_ms": pct(to_notified, 0.5),
            "notified_p99_ms": pct(to_notified, 0.99),
            "cpu": cpu_share(cpu_before, cpu_after, len(done), cpu_window, os.cpu_count() or 1),
            **({"profile": top} if profiling_enabled() else {})}


def table(result: dict[str, Any]) -> str:
    ing = result["ingest"]
    single, batched = ing["single"], ing["batched"]
    rows = [("ingest single-item req/s", single["requests_per_s"]),
            ("ingest single-item p50 / p99 ms", f"{single['p50_ms']} / {single['p99_ms']}"),
            (f"ingest batched ({ing['batch_items']:,}) items/s", batched["per_s"]),
            ("ingest batched p50 / p99 ms per request", f"{batched['p50_ms']} / {batched['p99_ms']}"),
            ("ingest failed requests single / batched", f"{single['errors']} / {batched['errors']}")]
    for label, e2e in (("1 copy", result["e2e"]), ("2 classification copies", result["e2e_two_copies"])):
        rows += [(f"e2e items/s sustained [{label}]", f"{e2e['items_per_s']} (offered {e2e['offered_per_s']})"),
                 (f"POST→classified p50 / p99 ms [{label}]",
                  f"{e2e['classified_p50_ms']} / {e2e['classified_p99_ms']}"),
                 (f"POST→notified p50 / p99 ms [{label}]", f"{e2e['notified_p50_ms']} / {e2e['notified_p99_ms']}"),
                 *cpu_rows(e2e.get("cpu"), label)]
    ceil = result.get("ceilings")
    if ceil:
        e2e_rate = result["e2e"]["items_per_s"] or 0.0
        bare = ceil["bare_post"]["requests_per_s"]
        rows += [("ceiling: bare FastAPI POST req/s", bare),
                 ("  ingest single-item / bare POST", _ratio(single["requests_per_s"], bare)),
                 ("ceiling: encoder alone texts/s (cold)", ceil["encoder"]["encoder_texts_per_s"]),
                 ("ceiling: labelling pipeline alone items/s", ceil["encoder"]["pipeline_items_per_s"]),
                 ("  e2e items/s / encoder", _ratio(e2e_rate, ceil["encoder"]["encoder_texts_per_s"])),
                 ("  e2e items/s / pipeline", _ratio(e2e_rate, ceil["encoder"]["pipeline_items_per_s"]))]
    at80 = result.get("e2e_at_80pct")
    if at80:
        rows += [(f"e2e at 80 % ({at80['offered_per_s']}/s): items/s", at80["items_per_s"]),
                 ("  POST→classified p50 / p99 ms", f"{at80['classified_p50_ms']} / {at80['classified_p99_ms']}"),
                 ("  POST→notified p50 / p99 ms", f"{at80['notified_p50_ms']} / {at80['notified_p99_ms']}"),
                 *cpu_rows(at80.get("cpu"), "80 %")]
    kafka = result.get("e2e_apache_kafka")
    if kafka:
        rows += [("e2e items/s sustained [Apache Kafka]", f"{kafka['items_per_s']} (offered {kafka['offered_per_s']})"),
                 ("POST→classified p50 / p99 ms [Apache Kafka]",
                  f"{kafka['classified_p50_ms']} / {kafka['classified_p99_ms']}"),
                 ("POST→notified p50 / p99 ms [Apache Kafka]",
                  f"{kafka['notified_p50_ms']} / {kafka['notified_p99_ms']}"),
                 *cpu_rows(kafka.get("cpu"), "Apache Kafka")]
    rows.append(("broker peak RSS MB embedded / Apache Kafka",
                 f"{result['e2e'].get('broker_peak_rss_mb')} / {kafka.get('broker_peak_rss_mb') if kafka else '-'}"))
    for label, rss in (("", result["peak_rss_mb"]), (" [2 copies]", result["peak_rss_mb_two_copies"])):
        rows += [(f"peak RSS MB {name}{label}", ", ".join(str(v) for v in values)) for name, values in rss.items()]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def cpu_rows(cpu: dict[str, Any] | None, label: str) -> list[tuple[str, Any]]:
    """Where the machine's CPU went per item, and the rate at which that saturates its cores."""
    if not cpu or not cpu["ms_per_item"]:
        return []
    per = ", ".join(f"{name} {ms}" for name, ms in cpu["ms_per_item"].items())
    return [(f"  CPU ms per item [{label}]", per),
            (f"  CPU ms per item, all processes [{label}]",
             f"{cpu['total_ms_per_item']} ({cpu['cores_busy']} of {cpu['cores']} cores busy; "
             f"saturates them at {cpu['saturates_at_items_per_s']} items/s)")]


def _ratio(value: float | None, ceiling: float | None) -> str:
    return f"{value / ceiling:.2f}" if value and ceiling else "-"


async def add_rule(system: System, receiver: Receiver) -> None:
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {system.key}"}, timeout=10) as client:
        rule = {"name": "bench enterprise", "team": "bench",
                "match": {"all": [{"field": "event", "op": "eq", "value": "feedback"},
                                  {"field": "customer.plan", "op": "eq", "value": "enterprise"}]},
                "channels": [{"type": "webhook", "url": f"http://127.0.0.1:{receiver.port}/hook",
                              "secret": "bench-secret"}]}
        (await client.post(f"{system.url('notification')}/v1/rules", json=rule)).raise_for_status()


async def on_apache_kafka(folder: Path, seconds: float, rate: float, receiver: Receiver) -> dict[str, Any]:
    """The end-to-end phase on a fresh single-node Apache Kafka, as `make run KAFKA=apache` starts it."""
    folder.mkdir(parents=True)
    system = System(folder, kafka="apache")
    try:
        await system.start()
        await add_rule(system, receiver)
        print(f"bench: end to end on Apache Kafka at {rate:.0f} items/s for {seconds:.0f}s", file=sys.stderr)
        result = await end_to_end(system, "e2e-kafka", seconds, rate, receiver)
        result["broker_peak_rss_mb"] = system.broker_peak_rss()
        result["peak_rss_mb"] = system.peak_rss()
        return result
    finally:
        system.stop()


async def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "60"))
    rate = float(os.environ.get("BENCH_RATE", "600"))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "32"))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = ROOT / "var" / "bench"
    folder = out / f"run-{stamp}"
    folder.mkdir(parents=True)
    system = System(folder)
    receiver = Receiver()
    server = asyncio.create_task(receiver.server.serve())
    result: dict[str, Any] = {"at": stamp, "seconds": seconds, "cpus": os.cpu_count(),
                              "load_avg_at_start": os.getloadavg()}
    try:
        print("bench: ceilings (a bare FastAPI POST; the encoder and labelling pipeline alone)", file=sys.stderr)
        result["ceilings"] = {
            "bare_post": await bare_post_ceiling(lambda url: single_posts(url, "none", seconds / 4, concurrency)),
            "encoder": encoder_ceiling([item("ceiling", n)["text"] for n in range(2000)])}
        await system.start()
        await add_rule(system, receiver)
        print(f"bench: system up in {folder}; ingest phases {seconds / 4:.0f}s each", file=sys.stderr)
        result["ingest"] = await ingest_phases(system, seconds / 4, concurrency)
        ingested = int(result["ingest"]["single"]["requests_per_s"] * result["ingest"]["single"]["seconds"]
                       + result["ingest"]["batched"]["per_s"] * result["ingest"]["batched"]["seconds"])
        print(f"bench: draining ~{ingested} ingested items before the end-to-end run", file=sys.stderr)
        await drain(system, int(ingested * 0.99))
        print(f"bench: end to end at {rate:.0f} items/s for {seconds:.0f}s", file=sys.stderr)
        result["e2e"] = await end_to_end(system, "e2e", seconds, rate, receiver)
        result["peak_rss_mb"] = system.peak_rss()
        result["e2e"]["broker_peak_rss_mb"] = system.broker_peak_rss()
        if result["e2e"]["items_per_s"]:
            at = round(0.8 * result["e2e"]["items_per_s"], 1)
            print(f"bench: end to end at 80 % of that capacity, {at} items/s", file=sys.stderr)
            result["e2e_at_80pct"] = await end_to_end(system, "e2e80", seconds, at, receiver)
        await system.add_copy("classification")
        print("bench: end to end again with two copies of classification", file=sys.stderr)
        result["e2e_two_copies"] = await end_to_end(system, "e2e2", seconds, rate, receiver)
        result["peak_rss_mb_two_copies"] = system.peak_rss()
        system.stop()
        if os.environ.get("BENCH_KAFKA", "both") != "embedded":
            result["e2e_apache_kafka"] = await on_apache_kafka(out / f"run-{stamp}-kafka", seconds, rate, receiver)
    finally:
        system.stop()
        receiver.server.should_exit = True
        await server
    result["load_avg_at_end"] = os.getloadavg()
    print(table(result))
    text = json.dumps(result, indent=2) + "\n"
    (out / "latest.json").write_text(text)
    (out / f"{stamp}.json").write_text(text)
    print(f"written to {out / 'latest.json'} and {out / (stamp + '.json')}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
