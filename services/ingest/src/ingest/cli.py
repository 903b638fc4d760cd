"""ingest's place in the ``feedbackloop`` CLI, found through the ``feedbackloop.services`` entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from feedbackloop.cli.common import fail
from feedbackloop.plugins import ServicePlugin
from ingest.config import IngestSettings
from ingest.store import MIGRATIONS

__all__ = ["commands", "plugin"]

commands = typer.Typer()


@commands.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="The export: CSV, JSON Lines or JSON")],
    source: Annotated[str, typer.Option(help="appstore, googleplay or generic")],
    map_: Annotated[
        str | None, typer.Option("--map", help="generic: target=column pairs, e.g. text=Review,external_id=ID")
    ] = None,
    url: Annotated[str, typer.Option(help="The running ingest")] = "http://127.0.0.1:8001",
    api_key: Annotated[str | None, typer.Option(help="Default FEEDBACKLOOP_API_KEY, else var/api-key")] = None,
    source_name: Annotated[str | None, typer.Option(help="The items' `source` (default: the export kind)")] = None,
    channel: Annotated[str | None, typer.Option(help="Default review (app stores) or api (generic)")] = None,
    encoding: Annotated[str | None, typer.Option(help="Force a codec (default: BOM, else UTF-8 / UTF-16)")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="Items per POST /v1/feedback")] = 1000,
    state_dir: Annotated[Path, typer.Option(help="Checkpoints of unfinished imports")] = Path("var/imports"),
) -> None:
    """Import app-store review exports or a CSV / JSON Lines file into ingest: resumable, idempotent."""
    from ingest.tools.importer import ImportStopped
    from ingest.tools.importer.command import import_command

    try:
        import_command(
            file, source=source, columns=map_, url=url, api_key=api_key, source_name=source_name,
            channel=channel, encoding=encoding, batch_size=batch_size, state_dir=state_dir,
        )
    except ImportStopped as exc:
        fail(str(exc))


plugin = ServicePlugin(
    name="ingest",
    settings=IngestSettings,
    app_factory="ingest.main:create_app",
    migrations=MIGRATIONS,
    commands=commands,
)
