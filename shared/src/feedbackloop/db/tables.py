"""The runtime tables every service keeps beside its own: the outbox and the processed-event log.

They are added to a service's ``MetaData`` by :func:`add_runtime_tables` so that its Alembic
migrations create them with the rest of its schema.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, LargeBinary, MetaData, String, Table

__all__ = ["RuntimeTables", "add_runtime_tables"]


@dataclass(frozen=True)
class RuntimeTables:
    outbox: Table
    processed_events: Table


def add_runtime_tables(metadata: MetaData) -> RuntimeTables:
    outbox = Table(
        "outbox",
        metadata,
        # Autoincrement order is publish order, which keeps per-key order for every key.
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("topic", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("value", LargeBinary, nullable=False),
        Column("headers", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("sent_at", DateTime(timezone=True), nullable=True),
        Index("ix_outbox_unsent", "sent_at", "id"),
        Index("ix_outbox_created_at", "created_at"),
    )
    processed = Table(
        "processed_events",
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("topic", String(200), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, index=True),
    )
    return RuntimeTables(outbox=outbox, processed_events=processed)
