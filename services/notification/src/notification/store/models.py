"""Notification's tables: teams, rules, the deliveries they cause, every attempt, and the noise controls' state.

A delivery is one (event, rule, channel, fan-out key): the unique key makes queuing it twice a no-op. The fan-out
key is empty but for a ``loop_closed`` insight routed once per customer (``customer:<id>``); such a delivery's id
is derived from (insight, customer, rule, channel), so a re-published insight finds it again. Its id is the
Standard Webhooks ``webhook-id`` the receiver sees on every attempt, so a receiver can drop duplicates.
Channel secrets are stored in ``rules.channels`` (never in a delivery) and never leave the service. A delivery
keeps the W3C trace context (``traceparent``/``tracestate``) of the consumed event that queued it, so every
attempt, however late and after however many restarts, is a span of that event's trace. It also names its
``subject``, the feedback or insight id the event is about (indexed: "what was sent about this item?").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from feedbackloop.db import add_runtime_tables
from feedbackloop.db.erasures import add_erasure_tables


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
    throttle: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, comment="limit and window_s")

    __table_args__ = (Index("ix_rules_created", "created_at", "id"),)


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, comment="what rules name in their `team`")
    quiet_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True,
                                                             comment="start, end (HH:MM) and timezone")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_teams_created", "created_at", "id"),)


class ThrottleWindow(Base):
    """The open throttle window of one (rule, channel): when it ends, how many messages it let through."""

    __tablename__ = "throttle_windows"

    rule_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent: Mapped[int] = mapped_column(Integer, default=0)


class ChannelHealth(Base):
    """Consecutive failed deliveries of one (rule, channel), and whether it is paused because of them."""

    __tablename__ = "channel_health"

    rule_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class InsightEpisode(Base):
    """The last insight of an episode (type + theme) that a rule sent: later ones of the episode are not sent."""

    __tablename__ = "insight_episodes"

    rule_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    episode_key: Mapped[str] = mapped_column(String(400), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64))
    window_to: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    severity: Mapped[str] = mapped_column(String(16))


class Delivery(Base):
    __tablename__ = "deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, comment="the webhook-id header")
    event_id: Mapped[str] = mapped_column(String(64))
    event_kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True,
                                                comment="the feedback or insight id the event is about")
    rule_id: Mapped[str] = mapped_column(String(36), index=True, comment="no foreign key: history outlives a rule")
    channel_index: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text, comment="the channel's URL, as of the last attempt")
    status: Mapped[str] = mapped_column(String(16),
                                        comment="pending | succeeded | failed | digested | paused | skipped")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    schedule_start: Mapped[int] = mapped_column(Integer, default=0,
                                                comment="attempts made before the last manual retry")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    digest_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True,
                                                  comment="the digest this held item was rolled into")
    trace_context: Mapped[dict[str, str] | None] = mapped_column(
        JSON, nullable=True,
        comment="W3C traceparent/tracestate of the event that queued it; each attempt continues it")
    fanout_key: Mapped[str] = mapped_column(String(300), default="", server_default="",
                                            comment="customer:<id> of a loop_closed insight routed per customer; "
                                                    "empty otherwise")
    result: Mapped[str | None] = mapped_column(Text, nullable=True,
                                               comment="what the target made of the sent delivery: the created "
                                                       "issue, the reply's conversation")

    __table_args__ = (
        UniqueConstraint("event_id", "rule_id", "channel_index", "fanout_key",
                         name="uq_deliveries_event_rule_channel_fanout"),
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
erasure_tables = add_erasure_tables(Base.metadata)
