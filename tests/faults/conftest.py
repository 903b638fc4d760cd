"""Collects one row per fault scenario; prints the table at the end and writes ``var/faults/latest.json``.

The scenarios carry the ``faults`` marker, which the default ``addopts`` excludes: ``make test`` does not run
them, ``make test-faults`` (``pytest -m faults tests/faults``) does.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.faults.harness import Row

ROWS: list[Row] = []
OUT = Path(__file__).resolve().parents[2] / "var" / "faults"

COLUMNS = (("scenario", 26), ("sent", 6), ("accepted", 8), ("stored", 7), ("duplicates", 10), ("lost", 5),
           ("notif exp", 9), ("notified", 8), ("notif dup", 9), ("notif lost", 10), ("bad labels", 10),
           ("recover s", 9), ("total s", 7))


def table(rows: list[Row]) -> str:
    head = " | ".join(f"{name:>{width}}" for name, width in COLUMNS)
    lines = [head, "-" * len(head)]
    for r in rows:
        values = (r.scenario, r.sent, r.accepted, r.stored, r.duplicates, r.lost, r.notifications_expected,
                  r.notified, r.notification_duplicates, r.notifications_lost, r.wrong_labels, r.recover_s,
                  r.seconds)
        lines.append(" | ".join(f"{v!s:>{w}}" for v, (_, w) in zip(values, COLUMNS, strict=True)))
    return "\n".join(lines)


@pytest.fixture
def record_row() -> object:
    def record(row: Row) -> None:
        ROWS.append(row)
        print("\n" + table([row]))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    terminalreporter.section("fault scenarios")
    terminalreporter.write_line(table(ROWS))
    for row in ROWS:
        if row.notes:
            terminalreporter.write_line(f"  {row.scenario}: {row.notes}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "latest.json").write_text(json.dumps(
        {"at": datetime.now(UTC).isoformat(), "rows": [asdict(r) | {"ok": r.ok} for r in ROWS]}, indent=2) + "\n")
    terminalreporter.write_line(f"written to {OUT / 'latest.json'}")
