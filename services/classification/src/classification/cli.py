"""classification's place in the ``feedbackloop`` CLI, found through the ``feedbackloop.services`` entry point."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from fastapi import FastAPI

from classification.config import ClassificationSettings
from feedbackloop.cli.common import fail, parse_since
from feedbackloop.plugins import ServicePlugin

__all__ = ["commands", "plugin"]

commands = typer.Typer()


def _create_app(settings: Any) -> FastAPI:
    from classification.main import create_app  # imported when served, not each time the CLI starts

    return create_app(settings)


@commands.command()
def reclassify(
    since: Annotated[str, typer.Option(help="Items first labelled since: 2h, 7d, or an ISO time")] = "30d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the diff and agreement; publish nothing")] = False,
    include_corrected: Annotated[
        bool, typer.Option("--include-corrected", help="Also re-label the fields people corrected")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=5000, help="Items per page (one transaction)")] = 256,
    state_dir: Annotated[Path, typer.Option(help="Checkpoints of unfinished runs")] = Path("var/reclassify"),
) -> None:
    """Re-label classification's stored history with the taxonomy and models in force (its store:
    CLASSIFICATION_DATABASE_URL); only changed items are re-published, as new revisions, through its outbox."""
    from classification.reclassify import reclassify as run_reclassify

    try:
        report = asyncio.run(run_reclassify(ClassificationSettings(), parse_since(since), dry_run=dry_run,
                                            include_corrected=include_corrected, batch_size=batch_size,
                                            state_dir=state_dir))
    except Exception as exc:  # one line, never a traceback: the store, the schema or the model
        fail(f"reclassify: {exc or type(exc).__name__}")
    print(report.summary())


plugin = ServicePlugin(
    name="classification",
    settings=ClassificationSettings,
    create_app=_create_app,
    migrations=Path(__file__).parent / "store" / "migrations",
    commands=commands,
)
