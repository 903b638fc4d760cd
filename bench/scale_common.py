"""What the scale proofs (``bench/backfill.py``, ``replay.py``, ``soak.py``) share beyond :mod:`run`'s helpers.

The system, its start-up, peak RSS and the latency percentiles come from :mod:`run` (``make bench``); this module
adds what those proofs need on top: the app-store review rows a backfill imports (pure, seeded), counts read
from the services' ``/metrics``, the current RSS of a service or of the embedded broker, the taxonomy edit a
replay puts in force, the start-vs-end comparison of a soak, and writing a table and JSON under ``var/bench/``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import pty
import random
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from run import ROOT, System  # bench/ is on sys.path when these scripts run

__all__ = [
    "CSV_COLUMNS",
    "IMPORT_MAP",
    "OUT",
    "consumed",
    "flatten_taxonomy",
    "footer_rows",
    "growth_pct",
    "handled_count",
    "print_and_write",
    "proof_run",
    "review_rows",
    "rss_mb",
    "run_on_terminal",
    "stamp",
    "status_mb",
    "table",
    "wait_until",
    "with_theme",
    "write_csv",
]

OUT = ROOT / "var" / "bench"

#: App Store Connect's review attributes (``feedbackloop import --source appstore`` reads these), plus the
#: customer id and plan a SaaS export carries. ``--source generic`` with :data:`IMPORT_MAP` keeps all of them
#: (the appstore mapping has no customer); ``id``, ``title``, ``body``, ``rating`` and the customer columns are
#: found by name, the two App Store spellings below are mapped.
CSV_COLUMNS = ("id", "rating", "title", "body", "reviewerNickname", "createdDate", "territory", "version",
               "customer_id", "customer_plan")
IMPORT_MAP = "created_at=createdDate,author_name=reviewerNickname"

_OPENINGS = ("", "Honestly, ", "Update: ", "Since the last update ", "After two weeks of use, ", "Ok so ",
             "As a long time user, ", "")
_SUBJECTS = {
    1: ("the app crashes every time I open a report", "I was charged twice for my subscription and nobody answers",
        "login is broken, the password reset link never arrives", "sync lost all my notes, data gone",
        "it freezes on startup on my phone", "the new version deleted my saved filters"),
    2: ("the app is very slow to load the dashboard", "notifications arrive hours late",
        "export to PDF fails half the time", "the search does not find archived tickets",
        "too expensive for what it does now", "the update broke dark mode on my tablet"),
    3: ("it works but the new layout is confusing", "please add an offline mode for the mobile app",
        "would be great to have an API for exports", "onboarding took me a while to figure out",
        "the pricing page is unclear about seats", "decent app, battery usage is high"),
    4: ("good app, I use it every day for my team", "nice update, charts load faster now",
        "support answered quickly, thanks", "please add dark mode and it is perfect",
        "solid tool, invoices could be easier to download", "works well, sign in with SSO would be great"),
    5: ("love the new dashboard, great work team!", "best tool for our support team, five stars",
        "the app is fast and simple, highly recommend", "exactly what we needed for feedback",
        "great update, the widgets on my phone are lovely", "perfect, setup took five minutes"),
}
_ENDINGS = ("", ".", "!", " Please fix.", " Thanks.", " Version {version} on {device}.", " Otherwise fine.",
            " Will change my rating when fixed.")
_DEVICES = ("iPhone 15", "iPhone 12", "iPad Air", "iPhone SE", "iPad Pro", "iPhone 14 Pro")
_TERRITORIES = ("USA", "GBR", "DEU", "FRA", "CAN", "AUS", "NLD", "ESP")
_PLANS = ("free", "free", "free", "pro", "pro", "team", "enterprise")
_RATINGS = (1, 1, 2, 3, 3, 4, 4, 5, 5, 5)  # app-store reviews skew to the ends
_TITLES = ("", "", "Crash", "Slow", "Great", "Love it", "Billing", "Login", "Feature request", "Meh")


def review_rows(n: int, seed: int = 7, end: datetime | None = None) -> Iterator[dict[str, str]]:
    """``n`` App Store review rows, the same for the same seed: mixed texts (a rating's typical complaints or
    praise with openings, endings and a row number, so texts rarely repeat exactly), ratings 1 to 5 skewed to the
    ends, dates spread over the two years before ``end`` (default: today 00:00 UTC), 2,000 customers
    (≈ n / 50 reviews each) on free, pro, team and enterprise plans."""
    rng = random.Random(seed)
    until = end or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    span = int(timedelta(days=730).total_seconds())
    for number in range(n):
        rating = rng.choice(_RATINGS)
        version = f"{rng.randint(3, 6)}.{rng.randint(0, 12)}"
        ending = rng.choice(_ENDINGS).format(version=version, device=rng.choice(_DEVICES))
        body = f"{rng.choice(_OPENINGS)}{rng.choice(_SUBJECTS[rating])}{ending} (review {number})"
        customer = rng.randrange(2000)
        yield {"id": f"as-{seed}-{number}", "rating": str(rating), "title": rng.choice(_TITLES),
               "body": body[0].upper() + body[1:], "reviewerNickname": f"user{rng.randrange(10 ** 6)}",
               "createdDate": (until - timedelta(seconds=rng.randrange(span))).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "territory": rng.choice(_TERRITORIES), "version": version, "customer_id": f"cust-{customer}",
               "customer_plan": _PLANS[customer % len(_PLANS)]}


def write_csv(path: Path, rows: Iterable[dict[str, str]]) -> int:
    """Write ``rows`` as a UTF-8 CSV with :data:`CSV_COLUMNS`; returns how many."""
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def csv_text(rows: Iterable[dict[str, str]]) -> str:
    """The same CSV as :func:`write_csv`, in memory (tests)."""
    handle = io.StringIO()
    writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return handle.getvalue()


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


async def run_on_terminal(command: Sequence[str], cwd: Path = ROOT,
                          env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``command`` with its stdout and stderr on a pseudo-terminal whose output is copied to ours, so that
    its rich progress bar draws as a user sees it; returns (exit code, its output without terminal codes)."""
    leader, follower = pty.openpty()
    process = await asyncio.create_subprocess_exec(*command, cwd=str(cwd), stdout=follower, stderr=follower,
                                                   stdin=asyncio.subprocess.DEVNULL, env=env)
    os.close(follower)
    chunks: list[bytes] = []

    def copy() -> None:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the command closed the terminal (it exited)
                return
            if not data:
                return
            chunks.append(data)
            sys.stderr.buffer.write(data)
            sys.stderr.buffer.flush()

    copier = asyncio.create_task(asyncio.to_thread(copy))
    code = await process.wait()
    await copier
    os.close(leader)
    return code, _ANSI.sub("", b"".join(chunks).decode(errors="replace"))


def handled_count(metrics_text: str, topic: str) -> int:
    """Events of ``topic`` handled (not duplicates, not dead-lettered), from a service's Prometheus text."""
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in metrics_text.splitlines()
                   if line.startswith("feedbackloop_events_consumed_total{")
                   and f'topic="{topic}"' in line and 'outcome="handled"' in line))


async def consumed(client: httpx.AsyncClient, system: System, service: str, topic: str) -> int:
    """How many events of ``topic`` ``service`` has handled since it started."""
    return handled_count((await client.get(f"{system.url(service)}/metrics")).text, topic)


async def wait_until(probe: Callable[[], Awaitable[int]], target: int, timeout: float,
                     interval: float = 0.5) -> tuple[float | None, int]:
    """Poll ``probe`` until it reaches ``target``: (seconds it took or None on timeout, last value)."""
    started = time.monotonic()
    value = await probe()
    while value < target:
        if time.monotonic() - started > timeout:
            return None, value
        await asyncio.sleep(interval)
        value = await probe()
    return time.monotonic() - started, value


def status_mb(pid: int, field: str = "VmRSS") -> float | None:
    """A memory field of ``/proc/<pid>/status`` in MB (``VmRSS`` now, ``VmHWM`` peak)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def rss_mb(pid: int) -> float | None:
    return status_mb(pid, "VmRSS")


def flatten_taxonomy(tree: dict[str, Any]) -> dict[str, Any]:
    """``GET /v1/taxonomy`` (nested ``children``) → the document ``PUT /v1/taxonomy`` takes (flat, ``parent``)."""
    flat: list[dict[str, Any]] = []

    def walk(themes: Sequence[dict[str, Any]], parent: str | None) -> None:
        for theme in themes:
            entry: dict[str, Any] = {k: theme[k] for k in ("id", "name", "description", "keywords", "examples")
                                     if k in theme}
            if parent is not None:
                entry["parent"] = parent
            flat.append(entry)
            walk(theme.get("children") or [], theme["id"])

    walk(tree["themes"], None)
    return {"version": tree["version"], "match_threshold": tree["match_threshold"],
            "max_themes": tree["max_themes"], "themes": flat}


def with_theme(document: dict[str, Any], theme: dict[str, Any], version: str) -> dict[str, Any]:
    """``document`` (flat) with ``theme`` added last, under a new version."""
    if any(t["id"] == theme["id"] for t in document["themes"]):
        raise ValueError(f"theme {theme['id']!r} is already in the taxonomy")
    return {**document, "version": version, "themes": [*document["themes"], theme]}


def growth_pct(start: float | None, end: float | None) -> float | None:
    """Relative change from ``start`` to ``end`` in %, or None when either is unknown or ``start`` is 0."""
    if start is None or end is None or start == 0:
        return None
    return round((end - start) / start * 100, 1)


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def table(rows: Sequence[tuple[str, Any]]) -> str:
    """Two aligned columns, as ``make bench`` prints them."""
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {'-' if value is None else value}" for name, value in rows)


def footer_rows(result: dict[str, Any]) -> list[tuple[str, Any]]:
    """Peak RSS per service and of the broker (when measured), and the load average at start and end."""
    out: list[tuple[str, Any]] = [(f"peak RSS MB {name}", ", ".join(str(v) for v in values))
                                  for name, values in result.get("peak_rss_mb", {}).items()]
    if "broker_peak_rss_mb" in result:
        out.append(("peak RSS MB embedded broker", result["broker_peak_rss_mb"]))
    start, end = result["load_avg_at_start"][0], result["load_avg_at_end"][0]
    return [*out, ("load average (1 min) start / end", f"{start:.2f} / {end:.2f}")]


def print_and_write(name: str, result: dict[str, Any], rows: Sequence[tuple[str, Any]]) -> Path:
    """Print the table and write ``var/bench/<name>.json`` and ``var/bench/<name>-<at>.json``."""
    print(table(rows))
    OUT.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, default=str) + "\n"
    latest = OUT / f"{name}.json"
    latest.write_text(text)
    (OUT / f"{name}-{result['at']}.json").write_text(text)
    print(f"written to {latest} and {OUT / (name + '-' + result['at'] + '.json')}", flush=True)
    return latest


async def proof_run(name: str, body: Callable[[System, Path, dict[str, Any]], Awaitable[None]],
                    rows: Callable[[dict[str, Any]], Sequence[tuple[str, Any]]]) -> None:
    """One scale proof on a fresh system in ``var/bench/<name>-<stamp>/``: ``body(system, folder, result)`` fills
    ``result``; the system's peak RSS and the machine's load are added, then the table is printed and the JSON
    written (also when the body fails part-way, with what it had)."""
    at = stamp()
    folder = OUT / f"{name}-{at}"
    folder.mkdir(parents=True)
    system = System(folder)
    result: dict[str, Any] = {"at": at, "cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()}
    try:
        await system.start()
        print(f"{name}: system up in {folder}", file=sys.stderr)
        await body(system, folder, result)
        result["peak_rss_mb"] = system.peak_rss()
        result["broker_peak_rss_mb"] = system.broker_peak_rss()
    finally:
        system.stop()
    result["load_avg_at_end"] = os.getloadavg()
    print_and_write(name, result, rows(result))
