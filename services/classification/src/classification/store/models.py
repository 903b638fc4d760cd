"""Classification's table: the labels of each item, and the exact event last published for it.

``item`` keeps the full ``feedback.classified.v1`` data as published, so a later correction can re-publish the
item with ``revision`` + 1 without asking ingest for anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from feedbackloop.db import add_runtime_tables


class Base(DeclarativeBase):
    pass


class Classification(Base):
    __tablename__ = "classifications"

    feedback_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), comment="when the item was first labelled")
    classified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True,
                                                    comment="when this revision was labelled")
    kind: Mapped[str] = mapped_column(String(32), index=True)
    sentiment: Mapped[str] = mapped_column(String(16), comment="the sentiment label")
    item: Mapped[dict[str, Any]] = mapped_column(JSON, comment="the feedback.classified.v1 data as published")


runtime_tables = add_runtime_tables(Base.metadata)
