"""Collects one row per fault scenario; prints the table at the end and writes ``var/faults/latest.json``.

The scenarios carry the ``faults`` marker, which the default ``addopts`` excludes: ``make test`` does not run
them, ``make test-faults`` (``pytest -m faults tests/faults -n 3``) does. The scenarios spend most of their
time waiting (a service down, a lock held, a receiver away), so ``make test-faults`` runs three at once with
pytest-xdist; each worker writes its rows to ``var/faults/rows/`` and the controlling process prints them all.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedbackloop_testing import broker_kind_under_test
from tests.faults.harness import Row

OUT = Path(__file__).resolve().parents[2] / "var" / "faults"
#: Where this run's workers write their rows: named by the controlling process, inherited by its xdist workers.
ROWS_ENV = "FAULTS_ROWS_DIR"

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


def pytest_configure(config: pytest.Config) -> None:
    """The controlling process names a fresh rows folder for this run (workers inherit it before they start)."""
    if not hasattr(config, "workerinput") and ROWS_ENV not in os.environ:
        os.environ[ROWS_ENV] = str(OUT / "rows" / f"run-{os.getpid()}")


def rows_dir() -> Path:
    return Path(os.environ.get(ROWS_ENV) or OUT / "rows" / f"run-{os.getpid()}")


@pytest.fixture
def tmp_path(request: pytest.FixtureRequest) -> Path:
    """Each scenario's stores and service logs, kept under var/faults/runs/<test> for a look after a failure."""
    folder: Path = OUT / "runs" / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def record_row() -> object:
    def record(row: Row) -> None:
        rows_dir().mkdir(parents=True, exist_ok=True)
        (rows_dir() / f"{row.scenario}.json").write_text(json.dumps(asdict(row)))
        print("\n" + table([row]))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if hasattr(terminalreporter.config, "workerinput"):
        return
    folder = rows_dir()
    rows = [Row(**json.loads(f.read_text())) for f in sorted(folder.glob("*.json"), key=lambda f: f.stat().st_mtime)]
    shutil.rmtree(folder, ignore_errors=True)
    if not rows:
        return
    broker = broker_kind_under_test()
    terminalreporter.section(f"fault scenarios (broker: {broker}; kafka3-*: a three-node Apache Kafka cluster)")
    terminalreporter.write_line(table(rows))
    for row in rows:
        if row.notes:
            terminalreporter.write_line(f"  {row.scenario}: {row.notes}")
    OUT.mkdir(parents=True, exist_ok=True)
    latest = OUT / ("latest.json" if broker == "embedded" else f"latest-{broker}.json")
    latest.write_text(json.dumps({"at": datetime.now(UTC).isoformat(), "broker": broker,
                                  "rows": [asdict(r) | {"ok": r.ok} for r in rows]}, indent=2) + "\n")
    terminalreporter.write_line(f"written to {latest}")
