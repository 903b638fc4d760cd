"""``make bench-replay ITEMS=100000``: re-label stored history through a new taxonomy, through aggregation.

1. stores ``ITEMS`` items by running a backfill first (:func:`backfill.backfill`: the same generated App Store
   rows, ``feedbackloop import``, waited until aggregation holds them all) on a fresh system started as
   ``make bench`` does;
2. changes the taxonomy: ``PUT /v1/taxonomy`` on classification with the taxonomy in force plus one theme,
   ``app-experience`` (keywords ``app``, ``update*``, ``version*``, ``phone``, ``tablet``), that many of those
   reviews mention;
3. runs ``feedbackloop reclassify --since 7d`` on classification's store (its progress bar shown): every
   changed item is stored as revision + 1 and its ``feedback.classified.v1`` event (the diff event) goes out
   through the outbox;
4. counts, in classification's store, the items that now carry the new theme (the full count), and polls
   aggregation's ``GET /v1/themes`` until the theme shows that count;
5. prints items read / changed / re-published, the reclassify's items/s and seconds, the seconds until the
   dashboard's ``GET /v1/themes`` shows the new theme with its full count (from the reclassify's start and
   from its end), the diff events aggregation handled, and peak RSS; writes ``var/bench/replay.json``.

Environment: ``REPLAY_ITEMS`` (100000), ``BACKFILL_SEED`` (7), ``REPLAY_TIMEOUT`` (1800) seconds to wait for
the backfill and then for the dashboard.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from backfill import CLASSIFIED, backfill  # bench/ is on sys.path when this script runs
from run import ROOT, System
from scale_common import (
    consumed,
    flatten_taxonomy,
    footer_rows,
    proof_run,
    run_on_terminal,
    with_theme,
)

NEW_THEME: dict[str, Any] = {
    "id": "app-experience", "name": "App experience",
    "description": "The app itself on phones and tablets: its updates, versions, screens and how it behaves.",
    "keywords": ["app", "update*", "version*", "phone", "tablet"], "examples": []}
_SUMMARY = re.compile(r"items read (\d+), changed (\d+), agreement old/new [0-9.]+%(?:, re-published (\d+))?")


def reclassify_summary(output: str) -> dict[str, int] | None:
    """Items read, changed and re-published, from the summary ``feedbackloop reclassify`` prints."""
    found = _SUMMARY.search(" ".join(output.split()))
    if not found:
        return None
    return {"read": int(found.group(1)), "changed": int(found.group(2)), "published": int(found.group(3) or 0)}


def items_with_theme(database: Path, theme_id: str) -> int:
    """Items in classification's SQLite store whose newest revision carries ``theme_id`` (read only)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        return sum(1 for (item,) in connection.execute("SELECT item FROM classifications")
                   if any(t.get("id") == theme_id for t in json.loads(item).get("themes", [])))


async def theme_count(client: httpx.AsyncClient, system: System, theme_id: str) -> int:
    """The count ``GET /v1/themes`` (all time, every page) shows for ``theme_id``; 0 while it is absent."""
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{system.url('aggregation')}/v1/themes", params=params)).raise_for_status().json()
        for theme in page["items"]:
            if theme["id"] == theme_id:
                return int(theme["count"])
        cursor = page.get("next_cursor")
        if not cursor:
            return 0


async def put_taxonomy(client: httpx.AsyncClient, system: System, version: str) -> dict[str, Any]:
    """The taxonomy in force plus :data:`NEW_THEME`, put in force under ``version``; returns the document."""
    url = f"{system.url('classification')}/v1/taxonomy"
    current = (await client.get(url)).raise_for_status().json()
    document = with_theme(flatten_taxonomy(current), NEW_THEME, version)
    response = await client.put(url, json=document)
    if response.status_code not in (200, 201):
        raise SystemExit(f"replay: PUT /v1/taxonomy answered {response.status_code}: {response.text[:500]}")
    return document


async def replay(system: System, folder: Path, timeout: float, at: str) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {system.key}"}
    async with httpx.AsyncClient(headers=headers, timeout=60) as client:
        await put_taxonomy(client, system, f"bench-replay-{at}")
        handled_before = await consumed(client, system, "aggregation", CLASSIFIED)
        env = {**system.env, "CLASSIFICATION_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/classification.db"}
        command = [sys.executable, "-m", "feedbackloop.cli.main", "reclassify", "--since", "7d",
                   "--state-dir", str(folder / "reclassify")]
        print("replay: taxonomy changed; feedbackloop reclassify --since 7d", file=sys.stderr)
        begin = time.monotonic()
        code, output = await run_on_terminal(command, ROOT, env)
        reclassify_s = time.monotonic() - begin
        if code != 0:
            raise SystemExit(f"replay: feedbackloop reclassify exited {code}")
        counts = reclassify_summary(output) or {"read": 0, "changed": 0, "published": 0}
        expected = items_with_theme(folder / "classification.db", NEW_THEME["id"])
        print(f"replay: reclassify done in {reclassify_s:.1f}s ({counts}); {expected} items carry "
              f"{NEW_THEME['id']!r}; waiting for GET /v1/themes to show them", file=sys.stderr)
        shown_at: float | None = None
        all_diff_at: float | None = None
        shown = handled = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (shown_at is None or all_diff_at is None):
            try:
                if shown_at is None:
                    shown = await theme_count(client, system, NEW_THEME["id"])
                    if expected and shown >= expected:
                        shown_at = time.monotonic() - begin
                if all_diff_at is None:
                    handled = await consumed(client, system, "aggregation", CLASSIFIED) - handled_before
                    if handled >= counts["published"]:
                        all_diff_at = time.monotonic() - begin
            except httpx.HTTPError:
                pass  # a slow answer under load: ask again
            await asyncio.sleep(0.5)
    return {"theme": NEW_THEME["id"], "items_read": counts["read"], "changed": counts["changed"],
            "published": counts["published"], "reclassify_s": round(reclassify_s, 1),
            "reclassify_items_per_s": round(counts["read"] / reclassify_s, 1) if reclassify_s else None,
            "items_with_new_theme": expected, "dashboard_count": shown,
            "dashboard_shown_s_from_start": round(shown_at, 1) if shown_at is not None else None,
            "dashboard_shown_s_after_reclassify": round(shown_at - reclassify_s, 1) if shown_at is not None else None,
            "diff_events_handled_by_aggregation": handled,
            "all_diff_events_handled_s_from_start": round(all_diff_at, 1) if all_diff_at is not None else None,
            "replay_items_per_s": round(counts["read"] / shown_at, 1) if shown_at else None}


def rows_of(result: dict[str, Any]) -> list[tuple[str, Any]]:
    r, b = result["replay"], result["backfill"]
    out: list[tuple[str, Any]] = [
        ("items stored first (backfill: import s / all aggregated s)",
         f"{b['rows']} ({b['import_s']} / {b['all_aggregated_s']})"),
        ("reclassify: items read / changed / re-published", f"{r['items_read']} / {r['changed']} / {r['published']}"),
        ("reclassify items/s (`feedbackloop reclassify`, wall clock)", r["reclassify_items_per_s"]),
        ("reclassify seconds", r["reclassify_s"]),
        (f"items carrying the new theme {r['theme']!r}", r["items_with_new_theme"]),
        ("seconds until GET /v1/themes shows it in full (from start)", r["dashboard_shown_s_from_start"]),
        ("  … after the reclassify ended", r["dashboard_shown_s_after_reclassify"]),
        ("replay items/s (items read / seconds until shown)", r["replay_items_per_s"]),
        ("diff events handled by aggregation (all by s from start)",
         f"{r['diff_events_handled_by_aggregation']} ({r['all_diff_events_handled_s_from_start']})"),
    ]
    if r["dashboard_shown_s_from_start"] is None:
        out.append(("NOT SHOWN IN FULL: dashboard count", r["dashboard_count"]))
    return out + footer_rows(result)


async def main() -> None:
    items = int(os.environ.get("REPLAY_ITEMS", "100000"))
    seed = int(os.environ.get("BACKFILL_SEED", "7"))
    timeout = float(os.environ.get("REPLAY_TIMEOUT", "1800"))

    async def body(system: System, folder: Path, result: dict[str, Any]) -> None:
        print(f"replay: storing {items} items with a backfill first", file=sys.stderr)
        result["backfill"] = await backfill(system, folder, items, seed, timeout)
        if result["backfill"]["all_aggregated_s"] is None:
            raise SystemExit("replay: the backfill did not reach aggregation in full; see the folder's logs")
        result["replay"] = await replay(system, folder, timeout, result["at"])

    await proof_run("replay", body, rows_of)


if __name__ == "__main__":
    asyncio.run(main())
