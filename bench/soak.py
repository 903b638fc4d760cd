"""``make bench-soak SOAK_MINUTES=30 SOAK_RATE=150``: a steady load for a long while; does anything grow?

1. starts the system as ``make bench`` does (:class:`run.System`), with the webhook receiver and the rule
   matching enterprise items (:class:`run.Receiver`, :func:`run.add_rule`);
2. the rate: ``SOAK_RATE`` items/s, or, when it is empty, half the capacity a short probe measures
   (:func:`run.end_to_end` at ``BENCH_RATE``, 600 items/s, for ``SOAK_PROBE_SECONDS``, 30);
3. offers that rate for ``SOAK_MINUTES`` (batches posted five times a second), stamping each item's POST, its
   ``feedback.classified.v1`` event (a tailing consumer) and its webhook notification (one item in five);
4. every 10 s samples each service's RSS (``VmRSS``), the embedded broker's RSS, the records the broker holds
   (the sum of every partition's end offset: the in-memory broker keeps them all), its log file's size, and the
   CPU seconds each process has used (services, broker, this load generator): per minute, CPU ms per item
   classified, so a latency that grows points at the process whose work per item grows;
5. prints a table per minute (items posted, POST→classified p99, POST→notified p99, RSS) and start vs end —
   the first vs the last 3 minutes (1 minute for runs under 6 minutes … see :func:`edge_minutes`) — with the
   growth in % and the verdict "flat within 10 %" (services' RSS and both p99s) or what grew; the broker's own
   growth is stated beside it; then, for each p99 and each process's CPU per item, a line through every minute
   (:func:`trend`, robust to one slow minute) and a second verdict by it. Writes ``var/bench/soak.json``;
   ``bench/soak.py --report FILE`` prints the table of a run again.

``SOAK_KAFKA=apache`` runs it on a fresh single-node Apache Kafka (``make run KAFKA=apache``) instead of the embedded
broker, whose in-memory storage keeps every record and spends more CPU per item the more it holds (measured:
0.43 → 1.86 ms per item over the first 140,000 records) — the loop's own flatness is seen on a broker with
retention. ``SOAK_WARMUP_MINUTES`` (0) runs that long first and leaves it out of every figure (start-up and first-use
allocations then do not count as growth).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from run import SERVICES, ClassifiedTail, Receiver, System, add_rule, end_to_end, item, pct  # bench/ is on sys.path
from scale_common import OUT, footer_rows, growth_pct, print_and_write, rss_mb, stamp, table

from feedbackloop.runtime.kafka import partitions_by_topic
from feedbackloop.settings import KafkaSettings

SAMPLE_SECONDS = 10.0
FLAT_PCT = 10.0


def edge_minutes(minutes: int) -> int:
    """How many minutes make "the start" and "the end": 3, or a third of a shorter run (at least 1)."""
    return max(1, min(3, minutes // 3))


def per_minute(posted: dict[str, float], done: dict[str, float], origin: float, minutes: int) -> list[float | None]:
    """p99 in ms of ``done[id] - posted[id]`` for the items posted in each minute after ``origin``."""
    buckets: list[list[float]] = [[] for _ in range(minutes)]
    for fid, at in posted.items():
        minute = int((at - origin) // 60)
        if fid in done and 0 <= minute < minutes:
            buckets[minute].append(done[fid] - at)
    return [pct(b, 0.99) for b in buckets]


def p99_between(posted: dict[str, float], done: dict[str, float], start: float, end: float) -> float | None:
    """p99 in ms over the items posted in [start, end)."""
    return pct([done[f] - at for f, at in posted.items() if start <= at < end and f in done], 0.99)


def mean_between(samples: Sequence[dict[str, Any]], key: str, start: float, end: float) -> float | None:
    """Mean of ``sample[key]`` over the samples taken at ``t`` in [start, end) (None values skipped)."""
    values = [s[key] for s in samples if start <= s["t"] < end and s.get(key) is not None]
    return round(sum(values) / len(values), 1) if values else None


def drift(samples: Sequence[dict[str, Any]], key: str) -> dict[str, float | None]:
    """First and last sampled value of ``key`` and its change per minute between them (the broker's figures
    only grow while it keeps every record, so their slope says more than a mean)."""
    known = [x for x in samples if x.get(key) is not None]
    if not known:
        return {"first": None, "last": None, "per_minute": None}
    first, last = known[0], known[-1]
    minutes = (last["t"] - first["t"]) / 60
    return {"first": first[key], "last": last[key],
            "per_minute": round((last[key] - first[key]) / minutes, 1) if minutes > 0 else None}


def verdict(growth: dict[str, float | None], limit: float = FLAT_PCT) -> str:
    """"flat within 10 %" when no figure grew more than ``limit`` %; else what grew. Unknowns are named too."""
    grew = [f"{name} +{value}%" for name, value in growth.items() if value is not None and value > limit]
    unknown = [name for name, value in growth.items() if value is None]
    if grew:
        return f"NOT flat within {limit:g} %: " + ", ".join(grew)
    if unknown:
        return f"flat within {limit:g} % where measured; not measured: {', '.join(unknown)}"
    return f"flat within {limit:g} %"


def trend(values: Sequence[float | None]) -> dict[str, float | None]:
    """The Theil-Sen line through the per-minute values (slope: the median of the slopes between every two minutes):
    its height at the first and the last minute, and the change between them in %. One slow minute at an edge
    moves a 3-minute mean by its whole weight, and tilts a least-squares line too; the median leaves it out.
    Needs 3 known values."""
    points = [(m, v) for m, v in enumerate(values) if v is not None]
    if len(points) < 3:
        return {"first": None, "last": None, "pct": None}
    slope = statistics.median((b - a) / (j - i) for n, (i, a) in enumerate(points) for j, b in points[n + 1:])
    first = statistics.median(v - slope * m for m, v in points)
    last = first + slope * (len(values) - 1)
    return {"first": round(first, 2), "last": round(last, 2), "pct": growth_pct(first, last)}


def trends(per_minute_rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """:func:`trend` of each p99 and of each process's CPU per item, from a summary's ``per_minute`` rows."""
    series = {"POST→classified p99 ms": [m["classified_p99_ms"] for m in per_minute_rows],
              "POST→notified p99 ms": [m["notified_p99_ms"] for m in per_minute_rows]}
    names = dict.fromkeys(name for m in per_minute_rows for name in m.get("cpu_ms_per_item", {}))
    series |= {f"CPU ms per item {name}": [m.get("cpu_ms_per_item", {}).get(name) for m in per_minute_rows]
               for name in names}
    return {name: trend(values) for name, values in series.items()}


async def retained_records(bootstrap: str) -> int:
    """Records the broker holds: the sum of every partition's end offset (the embedded broker keeps them all)."""
    held = await partitions_by_topic(KafkaSettings(bootstrap_servers=bootstrap))
    partitions = [TopicPartition(t, p) for t, numbers in held.items() for p in numbers]
    if not partitions:
        return 0
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def soak(system: System, receiver: Receiver, rate: float, minutes: int, warmup: int = 0) -> dict[str, Any]:
    """Offer ``rate`` for ``warmup`` + ``minutes`` minutes; the figures count from the end of the warm-up."""
    posted: dict[str, float] = {}
    classified: dict[str, float] = {}
    samples: list[dict[str, Any]] = []
    tail = await ClassifiedTail.start(system, classified)
    stop = asyncio.Event()

    pids = {name: pids[0] for name, pids in system.service_pids().items() if pids}
    broker = system.broker_pid()
    broker_log = system.folder / "broker.log"
    origin = time.time() + warmup * 60  # samples and items of the warm-up fall before it and are left out

    async def sample() -> None:
        while not stop.is_set():
            row: dict[str, Any] = {"t": round(time.time() - origin, 1)}
            row.update({name: rss_mb(pid) for name, pid in pids.items()})
            row["broker"] = rss_mb(broker) if broker else None
            row["broker_records"] = await retained_records(system.bootstrap)
            row["broker_log_kb"] = round(broker_log.stat().st_size / 1024, 1) if broker_log.exists() else None
            row["posted"], row["classified"] = len(posted), len(classified)
            row["cpu"] = system.cpu_seconds()
            samples.append(row)
            print(f"soak: {row}", file=sys.stderr)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_SECONDS)

    sampler = asyncio.create_task(sample())
    batch = max(1, round(rate / 5))
    headers = {"authorization": f"Bearer {system.key}"}
    errors = 0
    async with httpx.AsyncClient(base_url=system.url("ingest"), headers=headers, timeout=30) as client:
        async def post(first: int) -> None:
            nonlocal errors
            at = time.time()
            try:
                body = [item("soak", n) for n in range(first, first + batch)]
                response = await client.post("/v1/feedback", json=body)
            except httpx.HTTPError:
                errors += 1
                return
            if response.status_code != 202:
                errors += 1
                return
            for fid in response.json()["feedback_ids"]:
                posted[fid] = at

        started = time.monotonic()
        inflight: set[asyncio.Task[None]] = set()
        n = 0
        while time.monotonic() - started < (warmup + minutes) * 60:
            task = asyncio.create_task(post(n))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
            n += batch
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        await asyncio.gather(*inflight)
    offered_s = time.monotonic() - started
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not set(posted) <= set(classified):  # noqa: ASYNC110 - a deadline poll
        await asyncio.sleep(0.5)
    await asyncio.sleep(3)  # the last notifications' retry-free path is sub-second
    stop.set()
    await sampler
    await tail.stop()
    posted = {f: at for f, at in posted.items() if at >= origin}
    return summarize(posted, classified, dict(receiver.arrived), [x for x in samples if x["t"] >= 0], origin,
                     minutes, rate, offered_s, errors) | {"warmup_minutes": warmup}


def cpu_per_minute(samples: Sequence[dict[str, Any]], minutes: int) -> list[dict[str, float]]:
    """CPU ms per item classified of each process in each minute, from the samples' running totals (the first
    sample at or after each minute's start and end; a minute with no item classified gives ``{}``)."""
    out: list[dict[str, float]] = []
    for m in range(minutes):
        first = next((x for x in samples if x["t"] >= m * 60 and "cpu" in x), None)
        last = next((x for x in samples if x["t"] >= (m + 1) * 60 and "cpu" in x), None) or (
            samples[-1] if samples and "cpu" in samples[-1] else None)
        items = (last["classified"] - first["classified"]) if first and last else 0
        out.append({name: round((last["cpu"][name] - used) * 1000 / items, 2)
                    for name, used in first["cpu"].items() if name in last["cpu"]} if first and last and items > 0
                   else {})
    return out


def summarize(posted: dict[str, float], classified: dict[str, float], notified: dict[str, float],
              samples: list[dict[str, Any]], origin: float, minutes: int, rate: float, offered_s: float,
              errors: int) -> dict[str, Any]:
    """Per minute and start vs end (pure, from the stamps and samples)."""
    edge = edge_minutes(minutes)
    head, tail_from, end = origin, origin + (minutes - edge) * 60, origin + minutes * 60
    notified_posted = {f: at for f, at in posted.items() if f in notified}
    rss_minutes = [{name: mean_between(samples, name, m * 60, (m + 1) * 60) for name in (*SERVICES, "broker")}
                   for m in range(minutes)]
    start_end: dict[str, dict[str, float | None]] = {}
    for name in SERVICES:
        start_end[f"RSS MB {name}"] = {"start": mean_between(samples, name, 0, edge * 60),
                                       "end": mean_between(samples, name, (minutes - edge) * 60, minutes * 60 + 1)}
    start_end["POST→classified p99 ms"] = {"start": p99_between(posted, classified, head, head + edge * 60),
                                           "end": p99_between(posted, classified, tail_from, end)}
    start_end["POST→notified p99 ms"] = {"start": p99_between(notified_posted, notified, head, head + edge * 60),
                                         "end": p99_between(notified_posted, notified, tail_from, end)}
    cpu_minutes = cpu_per_minute(samples, minutes)
    cpu_start_end = {name: {"start": _mean([c.get(name) for c in cpu_minutes[:edge]]),
                            "end": _mean([c.get(name) for c in cpu_minutes[minutes - edge:]])}
                     for name in (cpu_minutes[0] if cpu_minutes else {})}
    posted_per_minute = [0] * minutes
    for at in posted.values():
        if 0 <= int((at - origin) // 60) < minutes:
            posted_per_minute[int((at - origin) // 60)] += 1
    growth = {name: growth_pct(v["start"], v["end"]) for name, v in start_end.items()}
    in_run = [x for x in samples if x["t"] <= minutes * 60 + 1]
    broker = {key: drift(in_run, key) for key in ("broker", "broker_records", "broker_log_kb")}
    return {"rate": rate, "minutes": minutes, "edge_minutes": edge, "offered_s": round(offered_s, 1),
            "posted": len(posted), "classified": len(set(posted) & set(classified)), "post_errors": errors,
            "notified": len(notified_posted),
            "per_minute": [{"minute": m + 1, "posted": posted_per_minute[m],
                            "classified_p99_ms": c, "notified_p99_ms": s, "rss_mb": rss_minutes[m],
                            "cpu_ms_per_item": cpu_minutes[m]}
                           for m, (c, s) in enumerate(zip(per_minute(posted, classified, origin, minutes),
                                                          per_minute(notified_posted, notified, origin, minutes),
                                                          strict=True))],
            "start_end": start_end, "growth_pct": growth, "verdict": verdict(growth),
            "cpu_ms_per_item": cpu_start_end,
            "broker": broker,
            "samples": samples}


def rows_of(result: dict[str, Any]) -> list[tuple[str, Any]]:
    s = result["soak"]
    out: list[tuple[str, Any]] = [
        ("rate items/s (given or half the probe's capacity)",
         f"{s['rate']}" + (f" (probe: {result['probe']['items_per_s']} items/s)" if result.get("probe") else "")),
        ("minutes (after warm-up); posted / classified / notified / failed posts",
         f"{s['minutes']} ({s['warmup_minutes']}); {s['posted']} / {s['classified']} / {s['notified']} / "
         f"{s['post_errors']}")]
    for m in s["per_minute"]:
        rss = ", ".join(f"{k[:5]} {v}" for k, v in m["rss_mb"].items())
        cpu = ", ".join(f"{k[:5]} {v}" for k, v in m.get("cpu_ms_per_item", {}).items())
        out.append((f"  minute {m['minute']:>2}: posted, p99 classified / notified ms",
                    f"{m['posted']}, {m['classified_p99_ms']} / {m['notified_p99_ms']}; RSS MB {rss}"
                    + (f"; CPU ms/item {cpu}" if cpu else "")))
    edge = s["edge_minutes"]
    for name, v in s["start_end"].items():
        out.append((f"{name} first / last {edge} min", f"{v['start']} → {v['end']} ({_signed(s['growth_pct'][name])})"))
    out.append(("verdict", s["verdict"]))
    for name, v in s.get("cpu_ms_per_item", {}).items():
        out.append((f"CPU ms per item {name} first / last {edge} min", f"{v['start']} → {v['end']}"))
    lines = trends(s["per_minute"])
    for name, v in lines.items():
        out.append((f"{name}, line through every minute", f"{v['first']} → {v['last']} ({_signed(v['pct'])})"))
    out.append(("verdict by the line (p99 and the services' CPU per item)",
                verdict({name: v["pct"] for name, v in lines.items()
                         if "p99" in name or name.removeprefix("CPU ms per item ") in SERVICES})))
    kind = "Apache Kafka" if result.get("kafka") == "apache" else "embedded broker"
    labels = {"broker": f"{kind} RSS MB", "broker_records": f"{kind} records held (all topics)",
              "broker_log_kb": f"{kind} log file KB"}
    for key, v in s["broker"].items():
        out.append((f"{labels[key]} first → last sample", f"{v['first']} → {v['last']} ({v['per_minute']} a minute)"))
    return out + footer_rows(result)


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 2) if known else None


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f} %"


async def main() -> None:
    if sys.argv[1:2] == ["--report"]:  # print the table of a soak already run: bench/soak.py --report FILE.json
        print(table(rows_of(json.loads(Path(sys.argv[2]).read_text()))))
        return
    minutes = int(os.environ.get("SOAK_MINUTES", "30"))
    warmup = int(os.environ.get("SOAK_WARMUP_MINUTES", "0"))
    given = os.environ.get("SOAK_RATE", "").strip()
    at = stamp()
    folder = OUT / f"soak-{at}"
    folder.mkdir(parents=True)
    kafka = os.environ.get("SOAK_KAFKA", "embedded")
    system = System(folder, kafka=kafka)
    receiver = Receiver()
    server = asyncio.create_task(receiver.server.serve())
    result: dict[str, Any] = {"at": at, "kafka": kafka, "cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()}
    try:
        await system.start()
        await add_rule(system, receiver)
        if given:
            rate = float(given)
        else:
            seconds = float(os.environ.get("SOAK_PROBE_SECONDS", "30"))
            offered = float(os.environ.get("BENCH_RATE", "600"))
            print(f"soak: probing capacity at {offered:.0f} items/s for {seconds:.0f}s", file=sys.stderr)
            result["probe"] = await end_to_end(system, "probe", seconds, offered, receiver)
            rate = round((result["probe"]["items_per_s"] or 0) / 2, 1)
            if not rate:
                raise SystemExit("soak: the probe measured no capacity; see the folder's logs")
        print(f"soak: {rate} items/s for {minutes} min in {folder}", file=sys.stderr)
        result["soak"] = await soak(system, receiver, rate, minutes, warmup)
        result["peak_rss_mb"] = system.peak_rss()
    finally:
        system.stop()
        receiver.server.should_exit = True
        await server
    result["load_avg_at_end"] = os.getloadavg()
    print_and_write("soak", result, rows_of(result))


if __name__ == "__main__":
    asyncio.run(main())
