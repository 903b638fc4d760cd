"""Aggregation's tables: the latest revision of each classified item, its themes, and the insights raised.

Datetimes are stored in UTC. ``feedback.data`` is the event's data as received, which is what the
read API returns; the columns beside it exist to filter, sort and count.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from feedbackloop.db import add_runtime_tables


class Base(DeclarativeBase):
    pass


class FeedbackRecord(Base):
    __tablename__ = "feedback"

    feedback_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    classified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    sentiment_label: Mapped[str] = mapped_column(String(16))
    sentiment_score: Mapped[float] = mapped_column(Float)
    urgency: Mapped[str] = mapped_column(String(16))
    product_area: Mapped[str | None] = mapped_column(String(256))
    language: Mapped[str | None] = mapped_column(String(16))
    customer_id: Mapped[str | None] = mapped_column(String(256))
    customer_plan: Mapped[str | None] = mapped_column(String(256))
    customer_mrr: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text, comment="the redacted text, for search")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, comment="the feedback.classified.v1 data of this revision")

    __table_args__ = (
        Index("ix_feedback_created", "created_at", "feedback_id"),
        Index("ix_feedback_kind_created", "kind", "created_at"),
        Index("ix_feedback_sentiment_created", "sentiment_label", "created_at"),
        Index("ix_feedback_urgency_created", "urgency", "created_at"),
        Index("ix_feedback_product_area_created", "product_area", "created_at"),
        Index("ix_feedback_source_created", "source", "created_at"),
        Index("ix_feedback_channel_created", "channel", "created_at"),
        Index("ix_feedback_customer_created", "customer_id", "created_at"),
        Index("ix_feedback_plan_created", "customer_plan", "created_at"),
    )


class FeedbackTheme(Base):
    __tablename__ = "feedback_themes"

    feedback_id: Mapped[str] = mapped_column(String(36), ForeignKey("feedback.feedback_id", ondelete="CASCADE"),
                                             primary_key=True)
    theme_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    theme_name: Mapped[str] = mapped_column(String(256))
    confidence: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_feedback_themes_theme", "theme_id", "feedback_id"),)


class InsightRecord(Base):
    __tablename__ = "insights"

    insight_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    theme: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, comment="the insights.v1 data as published")

    __table_args__ = (
        Index("ix_insights_created", "created_at", "insight_id"),
        Index("ix_insights_type_created", "type", "created_at"),
        Index("ix_insights_severity_created", "severity", "created_at"),
    )


runtime_tables = add_runtime_tables(Base.metadata)
