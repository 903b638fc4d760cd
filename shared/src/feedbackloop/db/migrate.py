"""Alembic, driven from code: each service's ``env.py`` calls :func:`run_env`, and services and the CLI
call :func:`upgrade` / :func:`check_current`.

A service with ``auto_migrate`` on upgrades its store at start (the embedded default); otherwise it
refuses to start on a store that is behind and names the command that fixes it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from feedbackloop.db.lease import lease_key

__all__ = ["SchemaBehind", "alembic_config", "check_current", "run_env", "upgrade"]


class SchemaBehind(RuntimeError):
    """The store's schema is older than the code: run the migrations first."""


def alembic_config(script_location: Path, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def run_env(target_metadata: MetaData, service: str) -> None:
    """Body of a service's ``migrations/env.py``: online migrations on the connection handed in, or on the
    URL from ``-x url=…``, ``<SERVICE>_DATABASE_URL`` or the default, for the ``alembic`` command."""
    from alembic import context

    def run(connection: Connection) -> None:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True, compare_type=True
        )
        with context.begin_transaction():
            context.run_migrations()

    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return

    from feedbackloop.db.engine import create_engine
    from feedbackloop.settings import default_database_url

    async def run_async() -> None:
        url = (
            context.get_x_argument(as_dictionary=True).get("url")
            or os.environ.get(f"{service.upper()}_DATABASE_URL")
            or default_database_url(service)
        )
        engine = create_engine(url)
        async with engine.connect() as conn:
            await conn.run_sync(run)
        await engine.dispose()

    asyncio.run(run_async())


MIGRATION_LOCK = "feedbackloop.migrations"


async def upgrade(engine: AsyncEngine, script_location: Path, revision: str = "head") -> None:
    """Upgrade the store to ``revision`` in one transaction.

    Several copies starting at once on one PostgreSQL database (auto-migrate on) queue on an advisory
    lock: the first migrates, the others then find the store at head and do nothing.
    """
    cfg = alembic_config(script_location)

    def do(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lease_key(MIGRATION_LOCK)})
        await conn.run_sync(do)


async def check_current(engine: AsyncEngine, script_location: Path, service: str) -> None:
    """Raise :class:`SchemaBehind` when the store is not at the newest migration."""
    heads = set(ScriptDirectory.from_config(alembic_config(script_location)).get_heads())

    def current(connection: Connection) -> Any:
        return set(MigrationContext.configure(connection).get_current_heads())

    async with engine.connect() as conn:
        have = await conn.run_sync(current)
    if have != heads:
        raise SchemaBehind(
            f"{service} store is at revision {sorted(have) or 'none'}, the code needs {sorted(heads)}: "
            f"run `make migrate` (or `feedbackloop migrate {service}`) first"
        )
