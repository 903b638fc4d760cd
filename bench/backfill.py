"""``make bench-backfill ROWS=100000``: a day-one import of app-store reviews through the whole loop.

1. generates ``ROWS`` App Store review rows as a CSV (:func:`scale_common.review_rows`: seeded, mixed texts,
   ratings 1 to 5, dates over two years, customer ids and plans) in a fresh folder under ``var/bench/``;
2. starts the system as ``make bench`` does (:class:`run.System`: ``feedbackloop run``, embedded broker, four
   services, SQLite, on free ports);
3. runs ``feedbackloop import`` on the file (``--source generic`` with the App Store columns mapped, so that the
   customers are kept; its progress bar on stderr) and times it;
4. meanwhile polls classification's and aggregation's ``/metrics`` (events handled) every half second: the
   time from the start of the import until the last row is classified, and until aggregation has all of them;
5. prints rows, import rows/s and seconds, seconds until all classified and all aggregated, end-to-end items/s
   and the peak RSS of each service and of the broker; writes ``var/bench/backfill.json`` (+ a dated copy).

Environment: ``BACKFILL_ROWS`` (100000), ``BACKFILL_SEED`` (7), ``BACKFILL_TIMEOUT`` seconds to wait for the
loop after the import (1800). ``bench/replay.py`` calls :func:`backfill` to store its items.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from run import ROOT, System  # bench/ is on sys.path when this script runs
from scale_common import (
    IMPORT_MAP,
    consumed,
    footer_rows,
    proof_run,
    review_rows,
    run_on_terminal,
    write_csv,
)

RAW, CLASSIFIED = "feedback.raw.v1", "feedback.classified.v1"
_SUMMARY = re.compile(r"imported (\d+) items from (\d+) rows .*? in ([0-9.]+) s", re.S)


def import_summary(output: str) -> tuple[int, float] | None:
    """(items, seconds) from the summary ``feedbackloop import`` prints last (its own time: reading, mapping
    and posting, without the command's start-up)."""
    found = _SUMMARY.search(" ".join(output.split()))
    return (int(found.group(1)), float(found.group(3))) if found else None


def import_command(system: System, csv_path: Path, state_dir: Path) -> list[str]:
    """``feedbackloop import`` as a user runs it on an App Store export that also carries customers."""
    return [sys.executable, "-m", "feedbackloop.cli.main", "import", str(csv_path), "--source", "generic",
            "--source-name", "appstore", "--channel", "review", "--map", IMPORT_MAP, "--url", system.url("ingest"),
            "--api-key", system.key, "--state-dir", str(state_dir)]


async def backfill(system: System, folder: Path, rows: int, seed: int = 7, timeout: float = 1800) -> dict[str, Any]:
    """Generate ``rows`` reviews, import them into the running ``system`` and follow them to aggregation."""
    csv_path = folder / "reviews.csv"
    started = time.perf_counter()
    write_csv(csv_path, review_rows(rows, seed))
    generated_s = time.perf_counter() - started
    print(f"backfill: {rows} rows written to {csv_path} in {generated_s:.1f}s; importing", file=sys.stderr)
    async with httpx.AsyncClient(timeout=10) as client:
        base = {s: await consumed(client, system, s, t) for s, t in (("classification", RAW),
                                                                      ("aggregation", CLASSIFIED))}
        reached: dict[str, float] = {}
        seen: dict[str, int] = {}

        async def follow() -> None:
            """Stamp the moment each of classification and aggregation has handled every row."""
            while len(reached) < 2:
                for service, topic in (("classification", RAW), ("aggregation", CLASSIFIED)):
                    if service in reached:
                        continue
                    try:
                        seen[service] = await consumed(client, system, service, topic) - base[service]
                    except httpx.HTTPError:
                        continue  # a slow answer under load is not a verdict; ask again
                    if seen[service] >= rows:
                        reached[service] = time.monotonic() - begin
                await asyncio.sleep(0.5)

        begin = time.monotonic()
        follower = asyncio.create_task(follow())
        code, output = await run_on_terminal(import_command(system, csv_path, folder / "imports"), ROOT)
        import_s = time.monotonic() - begin
        summary = import_summary(output)
        if code != 0:
            follower.cancel()
            raise SystemExit(f"backfill: feedbackloop import exited {code}")
        backlog = {s: rows - seen.get(s, 0) for s in ("classification", "aggregation")}
        print(f"backfill: import done in {import_s:.1f}s; waiting for the loop (behind: {backlog})", file=sys.stderr)
        try:
            await asyncio.wait_for(follower, timeout)
        except TimeoutError:
            print(f"backfill: the loop did not finish within {timeout:.0f}s after the import: {seen}", file=sys.stderr)
    aggregated_s = reached.get("aggregation")
    return {"rows": rows, "seed": seed, "csv": str(csv_path), "csv_mb": round(csv_path.stat().st_size / 2**20, 1),
            "import_s": round(import_s, 1), "import_rows_per_s": round(rows / import_s, 1),
            "importer_items": summary[0] if summary else None,
            "importer_own_s": summary[1] if summary else None,
            "importer_own_rows_per_s": round(rows / summary[1], 1) if summary and summary[1] else None,
            "behind_at_import_end": backlog,
            "all_classified_s": round(reached["classification"], 1) if "classification" in reached else None,
            "all_aggregated_s": round(aggregated_s, 1) if aggregated_s else None,
            "e2e_items_per_s": round(rows / aggregated_s, 1) if aggregated_s else None,
            "classified": seen.get("classification"), "aggregated": seen.get("aggregation")}


def rows_of(result: dict[str, Any]) -> list[tuple[str, Any]]:
    """The printed table."""
    b = result["backfill"]
    out: list[tuple[str, Any]] = [
        ("rows (App Store CSV, MB) → items imported", f"{b['rows']} ({b['csv_mb']} MB) → {b['importer_items']}"),
        ("import rows/s (`feedbackloop import`, wall clock)", b["import_rows_per_s"]),
        ("import seconds", b["import_s"]),
        ("import rows/s by the importer's own clock (no start-up)", b["importer_own_rows_per_s"]),
        ("behind at import end: classification / aggregation",
         f"{b['behind_at_import_end']['classification']} / {b['behind_at_import_end']['aggregation']}"),
        ("seconds until all classified (from import start)", b["all_classified_s"]),
        ("seconds until all aggregated (from import start)", b["all_aggregated_s"]),
        ("end-to-end items/s (rows / seconds until all aggregated)", b["e2e_items_per_s"]),
    ]
    if b["all_aggregated_s"] is None:
        out.append(("NOT FINISHED: classified / aggregated", f"{b['classified']} / {b['aggregated']}"))
    return out + footer_rows(result)


async def main() -> None:
    rows = int(os.environ.get("BACKFILL_ROWS", "100000"))
    seed = int(os.environ.get("BACKFILL_SEED", "7"))
    timeout = float(os.environ.get("BACKFILL_TIMEOUT", "1800"))

    async def body(system: System, folder: Path, result: dict[str, Any]) -> None:
        result["backfill"] = await backfill(system, folder, rows, seed, timeout)

    await proof_run("backfill", body, rows_of)


if __name__ == "__main__":
    asyncio.run(main())
