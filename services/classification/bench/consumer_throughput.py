"""Benchmark: how fast classification's consumer labels a backlog of ``feedback.raw.v1`` events.

    .venv/bin/python services/classification/bench/consumer_throughput.py [--items 5000] [--batch-size N]

Starts an embedded broker and the real classification app (its store on SQLite in a temporary folder, the real
encoder and heads), publishes ``--items`` raw events first (texts of varied length: the handed app reviews, forum
sentences and banking queries from ``../shared/datasets`` when present, else generated ones; subjects, customers and
a few exact repeats mixed in), then starts the app and measures the time until every item is in the store:
items/s, per-batch time, and how the process's CPU time splits over its threads (event loop, worker threads,
ONNX Runtime, SQLite). Prints a table and writes JSON to ``var/bench/classification-consumer.json``.
``make bench-classify-consumer``. Numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from classification.config import ClassificationSettings
from classification.main import create_app
from classification.model.classifier import Classifier, PreviewItem
from feedbackloop.contracts import FEEDBACK_RAW, RawFeedback, feedback_id_for
from feedbackloop.runtime import ensure_topics
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import make_test_broker, publish_events, serve_app

SEED = 15
OUT = Path("var/bench/classification-consumer.json")

_OPENINGS = ["The export", "Checkout", "The mobile app", "Login", "Search", "The dashboard", "Billing", "Sync",
             "The API", "Notifications", "The invoice page", "Dark mode", "The importer", "SSO", "The calendar"]
_PROBLEMS = ["crashes every time I open it", "is really slow since the last update", "shows the wrong total",
             "logs me out after a minute", "fails with error 500", "lost all my data", "charged me twice",
             "does not load on Android", "freezes when I upload a file", "ignores my settings"]
_WISHES = ["It would be great to have a way to export to CSV.", "Please add a dark mode.",
           "Could you support Google Calendar?", "I wish there was a bulk edit.", "How do I reset my password?",
           "Love the new design, great work!", "Thanks, support was quick and friendly.",
           "We are thinking about cancelling if this is not fixed.", "This is blocking our whole team."]


def generated_texts(count: int, rng: random.Random) -> list[str]:
    """Feedback-like texts of one to a dozen sentences (the fallback when the handed data is not there)."""
    texts = []
    for _ in range(count):
        sentences = [f"{rng.choice(_OPENINGS)} {rng.choice(_PROBLEMS)}." for _ in range(rng.choice((1, 1, 2, 3)))]
        sentences += rng.sample(_WISHES, rng.choice((0, 1, 1, 2)))
        if rng.random() < 0.15:  # a long ticket
            sentences += [f"Step {n}: {rng.choice(_OPENINGS).lower()} {rng.choice(_PROBLEMS)}." for n in range(8)]
        texts.append(" ".join(rng.sample(sentences, len(sentences))))
    return texts


def handed_texts(rng: random.Random) -> list[str] | None:
    """App reviews (long), forum sentences (medium), banking queries (short) from the handed data, or None."""
    from classification.tools.datasets import banking77, default_root, forum_sentences, url_reviews

    try:
        root = default_root()
        reviews = [str(r["text"]) for r in url_reviews(root)]
        forum = [e.text for e in forum_sentences(root)]
        queries = [str(r["text"]) for r in banking77(root)]
    except (FileNotFoundError, OSError, KeyError, ValueError):
        return None
    texts = reviews + forum + rng.sample(queries, min(len(queries), 3000))
    rng.shuffle(texts)
    return texts


def raw_items(count: int, *, seed: int = SEED) -> tuple[list[RawFeedback], str]:
    """``count`` raw items: varied texts, a subject on a fifth, a customer on a third, 3 % exact repeats."""
    rng = random.Random(seed)
    pool = handed_texts(rng)
    source = "handed datasets (URR reviews, Firefox forum, banking77)" if pool else "generated"
    pool = pool or generated_texts(count, rng)
    now = datetime.now(UTC)
    plans = ["free", "pro", "enterprise"]
    items: list[RawFeedback] = []
    for n in range(count):
        text = rng.choice(items).text if items and rng.random() < 0.03 else pool[n % len(pool)]
        fields: dict[str, Any] = {"feedback_id": feedback_id_for("bench", f"c{n}-{uuid.uuid4().hex[:8]}"),
                                  "source": "bench", "external_id": f"c{n}", "channel": rng.choice(
                                      ["ticket", "chat", "review", "email", "community"]),
                                  "text": text, "created_at": now, "received_at": now}
        if rng.random() < 0.2:
            fields["subject"] = f"{rng.choice(_OPENINGS)} {rng.choice(_PROBLEMS)}"
        if rng.random() < 0.33:
            fields["customer"] = {"id": f"acct-{rng.randrange(200)}", "plan": rng.choice(plans),
                                  "mrr": rng.choice([0, 50, 500, 5000])}
        if rng.random() < 0.1:
            fields["language"] = "en"
        items.append(RawFeedback.model_validate(fields))
    return items, source


def _threads() -> dict[str, float]:
    """CPU seconds (user + system) of this process's threads, grouped: the event loop, the worker threads of
    ``asyncio.to_thread``, aiosqlite's connection threads, and native threads (ONNX Runtime's pool)."""
    ticks = os.sysconf("SC_CLK_TCK")
    named = {t.native_id: t.name for t in threading.enumerate()}
    result: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended
        group = _thread_group(named.get(int(task.name)))
        result[group] = result.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return result


def _thread_group(name: str | None) -> str:
    if name is None:
        return "native threads (ONNX Runtime pool, ...)"
    if name == "MainThread":
        return "event loop (main thread)"
    if name.startswith("asyncio_"):
        return "asyncio.to_thread workers"
    return "other Python threads (aiosqlite, ...)"


def _classifier_alone(classifier: Classifier, raws: list[RawFeedback], batch_size: int) -> dict[str, float]:
    """The ceiling: the same items labelled by the same classifier in the same batches, cold text cache, no store
    and no broker (what the consumer would do if storing and publishing cost nothing)."""
    if classifier.encoder is not None:
        classifier.encoder.clear_cache()
    cpu, started = os.times(), time.perf_counter()
    for start in range(0, len(raws), batch_size):
        classifier.label_many([PreviewItem(r.text, r.subject, r.customer, r.language)
                               for r in raws[start:start + batch_size]])
    wall, end = time.perf_counter() - started, os.times()
    used = (end.user - cpu.user) + (end.system - cpu.system)
    return {"seconds": round(wall, 2), "items_per_s": round(len(raws) / wall, 1),
            "cpu_ms_per_item": round(1000 * used / len(raws), 2)}


def _classified(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM classifications").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not migrated yet


async def run(items: int, batch_size: int | None, timeout: float) -> dict[str, Any]:
    raws, source = raw_items(items)
    expected = len({r.feedback_id for r in raws})
    with tempfile.TemporaryDirectory(prefix="classification-bench-") as folder:
        broker = make_test_broker(Path(folder))
        broker.start()
        try:
            kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, topic_partitions=3,
                                  replication_factor=broker.replication_factor)
            await ensure_topics(kafka)
            started = time.perf_counter()
            await publish_events(kafka, FEEDBACK_RAW, raws, key="feedback_id")
            publish_s = time.perf_counter() - started
            db = Path(folder) / "classification.db"
            extra = {"consumer_batch_size": batch_size} if batch_size else {}
            settings = ClassificationSettings(
                database_url=f"sqlite+aiosqlite:///{db}", kafka=kafka,
                common=CommonSettings(keys_file=Path(folder) / "keys.json", log_format="console",
                                      log_level="WARNING"), **extra)
            app = create_app(settings)
            async with serve_app(app):
                cpu_start, threads_start, wall_start = os.times(), _threads(), time.perf_counter()
                progress: list[tuple[float, int]] = []
                while True:
                    done = await asyncio.to_thread(_classified, db)
                    progress.append((time.perf_counter() - wall_start, done))
                    if done >= expected:
                        break
                    if progress[-1][0] > timeout:
                        raise TimeoutError(f"{done} of {expected} classified after {timeout:.0f} s")
                    await asyncio.sleep(0.1)
                wall = time.perf_counter() - wall_start
                cpu_end, threads_end = os.times(), _threads()
                ceiling = await asyncio.to_thread(_classifier_alone, app.state.live.classifier, raws,
                                                  settings.consumer_batch_size)
        finally:
            broker.stop()
    first = next(t for t, d in progress if d > 0)
    steady = [(t, d) for t, d in progress if d > 0]
    cpu_user, cpu_sys = cpu_end.user - cpu_start.user, cpu_end.system - cpu_start.system
    split = {name: round(threads_end.get(name, 0.0) - threads_start.get(name, 0.0), 2)
             for name in sorted(set(threads_end) | set(threads_start))}
    return {
        "items": items, "distinct_items": expected, "texts": source,
        "batch_size": settings.consumer_batch_size, "publish_seconds": round(publish_s, 2),
        "seconds": round(wall, 2), "items_per_s": round(expected / wall, 1),
        "first_item_after_s": round(first, 2),
        "items_per_s_after_first": round((expected - steady[0][1]) / (wall - first), 1) if wall > first else None,
        "cpu_seconds": {"user": round(cpu_user, 2), "system": round(cpu_sys, 2),
                        "share_of_one_core": round((cpu_user + cpu_sys) / wall, 2)},
        # CPU per item depends far less on what else runs on the machine than items/s does.
        "cpu_ms_per_item": round(1000 * (cpu_user + cpu_sys) / expected, 2),
        "cpu_seconds_by_thread": split,
        "ceiling": ceiling,
        "ratio_to_ceiling": round(expected / wall / ceiling["items_per_s"], 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "at": datetime.now(UTC).isoformat(),
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})",
        "note": "shared machine: other work may run at the same time; the broker runs in its own process",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="CLASSIFICATION_CONSUMER_BATCH_SIZE for this run (default: the service's setting)")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    result = asyncio.run(run(args.items, args.batch_size, args.timeout))
    print(f"{'items':>7} {'batch':>6} {'seconds':>8} {'items/s':>8} {'after 1st':>10} {'cpu ms/item':>12} "
          f"{'cpu/wall':>9}  texts")
    print(f"{result['distinct_items']:>7} {result['batch_size']:>6} {result['seconds']:>8} "
          f"{result['items_per_s']:>8} {result['items_per_s_after_first']!s:>10} {result['cpu_ms_per_item']:>12} "
          f"{result['cpu_seconds']['share_of_one_core']:>9}  {result['texts']}")
    ceiling = result["ceiling"]
    print(f"ceiling, the classifier alone on the same items and batches: {ceiling['items_per_s']} items/s, "
          f"{ceiling['cpu_ms_per_item']} CPU ms/item; the consumer reaches {result['ratio_to_ceiling']} of it")
    print("CPU seconds by thread: " + ", ".join(f"{k} {v}" for k, v in result["cpu_seconds_by_thread"].items()))
    print(f"peak RSS {result['peak_rss_mb']} MB; {result['machine']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
