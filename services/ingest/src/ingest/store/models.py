"""Ingest's tables. The raw payload as received stays here and only here; the redacted item is what leaves."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from feedbackloop.db import add_runtime_tables


class Base(DeclarativeBase):
    pass


class FeedbackItem(Base):
    __tablename__ = "feedback_items"

    feedback_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    item: Mapped[dict[str, Any]] = mapped_column(JSON, comment="the redacted feedback.raw.v1 data")
    raw: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, nullable=True,
        comment="the request as received (personal data included); NULL once past INGEST_RAW_RETENTION_DAYS",
    )
    content_key: Mapped[str | None] = mapped_column(
        String(64), nullable=True, comment="hash of author + normalized text: finds near-duplicates"
    )

    __table_args__ = (
        Index("ix_feedback_items_source_external", "source", "external_id", unique=True),
        Index("ix_feedback_items_content_key", "content_key", "created_at"),
    )


class WebhookNonce(Base):
    """Single-use nonces of vendors that send one (Canny): a second delivery with the same nonce is a replay."""

    __tablename__ = "webhook_nonces"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(256), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Erasure(Base):
    """An erasure request (``POST /v1/erasures``): whom it named (never an address: its keyed hash), the items
    it erased, and the ``privacy.v1`` event that carries it to the other services (queued in the same commit)."""

    __tablename__ = "erasures"

    request_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    requested_by: Mapped[str] = mapped_column(String(200), comment="the admin API key (name and id)")
    customer_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    author_email_hash: Mapped[str | None] = mapped_column(String(64), nullable=True,
                                                          comment="keyed hash, as published; never the address")
    reason: Mapped[str] = mapped_column(Text)
    feedback_ids: Mapped[list[str]] = mapped_column(JSON, comment="the items erased")
    event_id: Mapped[str] = mapped_column(String(64), comment="the privacy.v1 event's id (in the outbox)")


runtime_tables = add_runtime_tables(Base.metadata)
