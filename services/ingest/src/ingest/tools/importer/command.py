"""``feedbackloop import``: the run with a rich progress bar on stderr and a summary at the end.

The shared CLI only parses options and delegates here; every failure is an ``ImportStopped`` whose
message the CLI prints as one line.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, Task, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from feedbackloop.contracts.events import Channel
from ingest.tools.importer.errors import ImportRefused
from ingest.tools.importer.mapping import ExportKind, parse_column_map
from ingest.tools.importer.run import ImportReport, ImportRequest, resolve_api_key, run_import

__all__ = ["import_command"]

KINDS: tuple[ExportKind, ...] = ("appstore", "googleplay", "generic")
CHANNELS = ("ticket", "chat", "survey", "review", "community", "email", "api")
BAD_ROWS_SHOWN = 20


class _RateColumn(TextColumn):
    """Rows acknowledged per second in this run."""

    def __init__(self) -> None:
        super().__init__("")

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "- rows/s", style="progress.data.speed")


def import_command(
    file: Path,
    *,
    source: str,
    columns: str | None = None,
    url: str = "http://127.0.0.1:8001",
    api_key: str | None = None,
    source_name: str | None = None,
    channel: str | None = None,
    encoding: str | None = None,
    batch_size: int = 1000,
    state_dir: Path = Path("var/imports"),
) -> ImportReport:
    """Import ``file`` into the ingest at ``url``, showing progress; prints bad rows and a summary to stderr.

    Raises ``ImportStopped`` (one-line message) when the import does not finish.
    """
    if source not in KINDS:
        raise ImportRefused(f"--source must be one of {', '.join(KINDS)}; got {source!r}")
    if channel is not None and channel not in CHANNELS:
        raise ImportRefused(f"--channel must be one of {', '.join(CHANNELS)}; got {channel!r}")
    request = ImportRequest(
        path=file, kind=source, url=url, api_key=resolve_api_key(api_key),
        columns=parse_column_map(columns), source_name=source_name, channel=cast(Channel | None, channel),
        encoding=encoding, state_dir=state_dir, batch_size=batch_size,
    )
    console = Console(stderr=True)
    progress = Progress(TextColumn("[bold]import[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                        _RateColumn(), TimeElapsedColumn(), console=console, transient=False)
    task: list[TaskID] = []

    def started(done: int, total: int) -> None:
        if done:
            console.print(f"resuming {file.name}: {done} of {total} items already imported")
        task.append(progress.add_task(file.name, total=total, completed=done))

    def advanced(done: int, total: int) -> None:
        progress.update(task[0], completed=done)

    with progress:
        report = asyncio.run(run_import(request, on_batch=advanced, on_start=started))
    for bad in report.bad[:BAD_ROWS_SHOWN]:
        console.print(f"skipped {bad.where}: {bad.reason}", markup=False, highlight=False)
    if len(report.bad) > BAD_ROWS_SHOWN:
        console.print(f"… and {len(report.bad) - BAD_ROWS_SHOWN} more bad rows")
    console.print(
        f"imported {report.items} items from {report.rows} rows of {file.name} "
        f"({report.posted} posted now{f', {report.resumed_from} before' if report.resumed_from else ''}; "
        f"{len(report.bad)} bad rows skipped; {report.empty} without text) in {report.seconds:.1f} s; "
        "importing it again adds nothing",
        markup=False, highlight=False,
    )
    return report
