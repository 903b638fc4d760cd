"""Aggregation's tables: the latest revision of each classified item, its themes, and the insights raised.

Datetimes are stored in UTC. ``feedback.data`` is the event's data as received, which is what the
read API returns; the columns beside it exist to filter, sort and count.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from feedbackloop.db import add_runtime_tables
from feedbackloop.db.erasures import add_erasure_tables


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
    classify_seconds: Mapped[float | None] = mapped_column(Float, comment="classified_at - created_at")
    cluster_id: Mapped[str | None] = mapped_column(String(256), comment="classification's cluster of an unthemed item")
    backdated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(),
                                            comment="created long before received: an import, not live feedback")

    __table_args__ = (
        Index("ix_feedback_created", "created_at", "feedback_id"),
        Index("ix_feedback_created_live_classify", "created_at", "backdated", "classify_seconds"),
        Index("ix_feedback_kind_created", "kind", "created_at"),
        Index("ix_feedback_sentiment_created", "sentiment_label", "created_at"),
        Index("ix_feedback_urgency_created", "urgency", "created_at"),
        Index("ix_feedback_product_area_created", "product_area", "created_at"),
        Index("ix_feedback_source_created", "source", "created_at"),
        Index("ix_feedback_channel_created", "channel", "created_at"),
        Index("ix_feedback_customer_created", "customer_id", "created_at"),
        Index("ix_feedback_plan_created", "customer_plan", "created_at"),
        Index("ix_feedback_cluster_created", "cluster_id", "created_at"),
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
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(256))

    __table_args__ = (
        Index("ix_insights_created", "created_at", "insight_id"),
        Index("ix_insights_type_created", "type", "created_at"),
        Index("ix_insights_severity_created", "severity", "created_at"),
    )


class Rollup(Base):
    """Sums over the items created in one bucket, per dimension value (see ``domain/rollups.py``)."""

    __tablename__ = "rollups"

    bucket: Mapped[str] = mapped_column(String(8), primary_key=True, comment="hour | day | week | total")
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True, comment="bucket start, epoch seconds UTC")
    dimension: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(520), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    negative: Mapped[int] = mapped_column(Integer, default=0)
    sentiment_sum: Mapped[float] = mapped_column(Float, default=0.0)
    urgent: Mapped[int] = mapped_column(Integer, default=0)
    mrr_sum: Mapped[float] = mapped_column(Float, default=0.0)
    nps_responses: Mapped[int] = mapped_column(Integer, default=0)
    nps_promoters: Mapped[int] = mapped_column(Integer, default=0)
    nps_detractors: Mapped[int] = mapped_column(Integer, default=0)
    csat_responses: Mapped[int] = mapped_column(Integer, default=0)
    csat_satisfied: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_rollups_dimension", "bucket", "dimension", "start"),)


class LabelKey(Base):
    """A small integer for each theme id and customer id, so the presence table is compact and fast to group."""

    __tablename__ = "label_keys"

    key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), comment="theme | customer")
    value: Mapped[str] = mapped_column(String(256))

    __table_args__ = (Index("ux_label_keys_kind_value", "kind", "value", unique=True),)


class ThemeCustomer(Base):
    """Presence of a customer in a theme: its items and their summed mrr, per day and in total.

    Counts (not flags), so a correction that takes an item away decrements; a row at count 0 means the
    customer is no longer in the theme for that bucket. ``mrr`` is round(mrr_sum / count, 2), kept by
    the writer for the top-customers order of the all-time view.
    """

    __tablename__ = "theme_customers"

    bucket: Mapped[str] = mapped_column(String(8), primary_key=True, comment="day | total")
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True, comment="day start, epoch seconds UTC; 0 total")
    theme_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(256), comment="the customer id of customer_key, for ordering")
    count: Mapped[int] = mapped_column(Integer, default=0)
    mrr_sum: Mapped[float] = mapped_column(Float, default=0.0)
    mrr: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (Index("ix_theme_customers_top", "bucket", "start", "theme_key", "mrr", "count", "customer_id"),
                      Index("ix_theme_customers_theme", "bucket", "theme_key", "start", "count", "mrr_sum",
                            "customer_id"),
                      {"sqlite_with_rowid": False})


class ThemeTotal(Base):
    """Per theme, all time: distinct customers (presence count > 0) and the sum of their ``mrr``.

    Updated in the same transaction as the presence rows it summarises."""

    __tablename__ = "theme_totals"

    theme_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    customers: Mapped[int] = mapped_column(Integer, default=0)
    affected_mrr: Mapped[float] = mapped_column(Float, default=0.0)


class ThemeName(Base):
    """The newest name of each theme (by the created_at of the item that carried it)."""

    __tablename__ = "theme_names"

    theme_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ClusterRecord(Base):
    """A cluster of unthemed items as classification names it, and how many stored items are in it now."""

    __tablename__ = "clusters"

    cluster_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    terms: Mapped[list[str]] = mapped_column(JSON)
    items: Mapped[int] = mapped_column(Integer, default=0)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    insight_id: Mapped[str | None] = mapped_column(String(36), comment="its emerging_theme insight, once raised")
    duplicate_of: Mapped[str | None] = mapped_column(String(256),
                                                     comment="the existing theme it repeats, when judged not new")
    judged_items: Mapped[int | None] = mapped_column(Integer, comment="its items when judged a duplicate")


class ReleaseRecord(Base):
    __tablename__ = "releases"

    release_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    service: Mapped[str | None] = mapped_column(String(200))
    released_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, comment="the releases.v1 data")

    __table_args__ = (Index("ix_releases_released", "released_at"),)


class DirtyHour(Base):
    """Hours whose rollups changed since the detectors last judged them; ``version`` guards a concurrent change."""

    __tablename__ = "detect_dirty_hours"

    start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class EpisodeRecord(Base):
    """An episode of one detector on one subject: the span of its anomalous hours and its one insight."""

    __tablename__ = "detect_episodes"

    detector: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(String(520), primary_key=True)
    first: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    last: Mapped[int] = mapped_column(BigInteger)
    insight_id: Mapped[str] = mapped_column(String(36))


class DashboardSession(Base):
    """A browser signed in to the dashboard. The cookie holds a random id; only its SHA-256 is stored, beside the
    id of the API key it was opened with (never the key) and when it ends. Signing out deletes the row."""

    __tablename__ = "dashboard_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True, comment="sha256 hex of the cookie's id")
    key_id: Mapped[str] = mapped_column(String(64), comment="the API key that opened it; revoking the key ends it")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_dashboard_sessions_expires", "expires_at"),)


class TrackerLink(Base):
    """A theme, an insight or a set of items linked to a tracker issue, and the state of its loop.

    While the issue is being created (``status`` ``creating``) ``issue_key`` is null and ``create_request`` holds
    what to create (tracker, target, labels, title, body); the link id is the tracker's idempotency marker, so a
    retry never makes a second issue. ``loop_closed_at`` is set once, when the issue is done or a release names it
    (whichever comes first), and kept when the issue is reopened."""

    __tablename__ = "tracker_links"

    link_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject: Mapped[str] = mapped_column(String(16), comment="theme | insight | items")
    subject_key: Mapped[str] = mapped_column(String(320), comment="theme:<id> | insight:<id> | items:<sha256>")
    theme_id: Mapped[str | None] = mapped_column(String(256))
    insight_id: Mapped[str | None] = mapped_column(String(36))
    feedback_ids: Mapped[list[str] | None] = mapped_column(JSON, comment="the items of an `items` link")
    issue_key: Mapped[str | None] = mapped_column(String(400), comment="null while the issue is being created")
    tracker: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(String(2048))
    title: Mapped[str | None] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16), comment="creating | open | in_progress | done | cancelled | failed")
    created_issue: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    create_request: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    issue_created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), comment="when the loop closed")
    release_id: Mapped[str | None] = mapped_column(String(200))
    release_version: Mapped[str | None] = mapped_column(String(200))
    loop_closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                            comment="when the loop_closed insight was raised")
    customers_told: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    regression_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    regressed_items: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    first_report_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str | None] = mapped_column(String(256), comment="the API key's name")

    __table_args__ = (
        Index("ux_tracker_links_subject_issue", "subject_key", "issue_key", unique=True),
        Index("ix_tracker_links_issue", "issue_key"),
        Index("ix_tracker_links_theme", "theme_id", "linked_at"),
        Index("ix_tracker_links_linked", "linked_at", "link_id"),
        Index("ix_tracker_links_pending", "status", "next_attempt_at"),
    )


runtime_tables = add_runtime_tables(Base.metadata)
erasure_tables = add_erasure_tables(Base.metadata)
