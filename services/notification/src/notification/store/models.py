"""Notification's tables: rules, the deliveries they cause, and every attempt of each delivery.

A delivery is one (event, rule, channel): the unique key makes queuing it twice a no-op. Its id is the
Standard Webhooks ``webhook-id`` the receiver sees on every attempt, so a receiver can drop duplicates.
Channel secrets are stored in ``rules.channels`` (never in a delivery) and never leave the service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from feedbackloop.db import add_runtime_tables


class Base(DeclarativeBase):
    pass


class Rule(Base):
    __tablename__ = "rules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    team: Mapped[str] = mapped_column(String(100), index=True)
    match: Mapped[dict[str, Any]] = mapped_column(JSON)
    channels: Mapped[list[dict[str, Any]]] = mapped_column(JSON, comment="type, url and secret of each channel")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_rules_created", "created_at", "id"),)


class Delivery(Base):
    __tablename__ = "deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, comment="the webhook-id header")
    event_id: Mapped[str] = mapped_column(String(64))
    event_kind: Mapped[str] = mapped_column(String(16))
    rule_id: Mapped[str] = mapped_column(String(36), index=True, comment="no foreign key: history outlives a rule")
    channel_index: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text, comment="the channel's URL, as of the last attempt")
    status: Mapped[str] = mapped_column(String(16), comment="pending | succeeded | failed")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    schedule_start: Mapped[int] = mapped_column(Integer, default=0,
                                                comment="attempts made before the last manual retry")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        UniqueConstraint("event_id", "rule_id", "channel_index", name="uq_deliveries_event_rule_channel"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_created", "created_at", "id"),
    )


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    delivery_id: Mapped[str] = mapped_column(String(36), ForeignKey("deliveries.id", ondelete="CASCADE"),
                                             primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[float] = mapped_column(Float)


runtime_tables = add_runtime_tables(Base.metadata)
