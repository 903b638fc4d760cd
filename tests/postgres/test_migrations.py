"""Every service's migrations, on SQLite and on a real PostgreSQL: an empty store upgrades to head, the
migrated schema matches the models (no autogenerate drift), and a store that is behind stops the start."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, String
from sqlalchemy.engine import Connection

from feedbackloop.db import SchemaBehind, check_current, create_engine, upgrade
from feedbackloop.db.migrate import alembic_config

SERVICES = ("ingest", "classification", "aggregation", "notification")
DIALECTS = ("sqlite", "postgresql")


def service_parts(service: str) -> tuple[MetaData, Path]:
    models = importlib.import_module(f"{service}.store.models")
    main = importlib.import_module(f"{service}.main")
    return models.Base.metadata, main.MIGRATIONS


def empty_store(dialect: str, service: str, tmp_path: Path, postgres_url: Callable[[str], str]) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/{service}.db" if dialect == "sqlite" else postgres_url(service)


def drift(metadata: MetaData) -> Callable[[Connection], list[Any]]:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "render_as_batch": True})
        return list(compare_metadata(context, metadata))

    return compare


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("service", SERVICES)
async def test_an_empty_store_upgrades_to_head_with_no_drift_from_the_models(
    service: str, dialect: str, tmp_path: Path, postgres_url: Callable[[str], str]
) -> None:
    metadata, migrations = service_parts(service)
    engine = create_engine(empty_store(dialect, service, tmp_path, postgres_url))
    try:
        with pytest.raises(SchemaBehind, match=f"feedbackloop migrate {service}"):
            await check_current(engine, migrations, service)
        await upgrade(engine, migrations)
        await check_current(engine, migrations, service)
        async with engine.connect() as conn:
            differences = await conn.run_sync(drift(metadata))
        assert differences == [], (
            f"{service} models and migrations differ on {dialect}: add a migration with autogenerate "
            f"(see services/{service}/alembic.ini): {differences}"
        )
        await upgrade(engine, migrations)  # upgrading a store at head changes nothing
        await check_current(engine, migrations, service)
    finally:
        await engine.dispose()


async def test_the_drift_check_sees_a_column_the_migrations_lack(tmp_path: Path) -> None:
    metadata, migrations = service_parts("ingest")
    grown = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(grown)
    next(iter(grown.sorted_tables)).append_column(Column("not_migrated_yet", String(10)))
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/ingest.db")
    try:
        await upgrade(engine, migrations)
        async with engine.connect() as conn:
            differences = await conn.run_sync(drift(grown))
    finally:
        await engine.dispose()
    assert any(d[0] == "add_column" and d[3].name == "not_migrated_yet" for d in differences), differences


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_service_refuses_to_start_on_a_store_that_is_behind_unless_auto_migrate_is_on(
    dialect: str, tmp_path: Path, postgres_url: Callable[[str], str]
) -> None:
    from aggregation.config import AggregationSettings
    from aggregation.main import create_app

    _, migrations = service_parts("aggregation")
    revisions = list(ScriptDirectory.from_config(alembic_config(migrations)).walk_revisions())
    oldest = revisions[-1].revision
    url = empty_store(dialect, "aggregation", tmp_path, postgres_url)
    engine = create_engine(url)
    try:
        await upgrade(engine, migrations, oldest)
    finally:
        await engine.dispose()

    refusing = create_app(AggregationSettings(database_url=url, auto_migrate=False))
    with pytest.raises(SchemaBehind) as refused:
        async with refusing.router.lifespan_context(refusing):
            pass
    message = str(refused.value)
    assert "make migrate" in message and "feedbackloop migrate aggregation" in message, message
    if len(revisions) > 1:
        assert oldest in message, message

    engine = create_engine(url)
    try:
        with pytest.raises(SchemaBehind):
            await check_current(engine, migrations, "aggregation")
        await upgrade(engine, migrations)  # what `feedbackloop migrate aggregation` does
        await check_current(engine, migrations, "aggregation")
    finally:
        await engine.dispose()
