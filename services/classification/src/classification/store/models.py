"""Classification's tables.

* ``classifications`` — the labels of each item and the exact event last published for it: ``item`` keeps the
  full ``feedback.classified.v1`` data, so a correction or a re-classification can re-publish the item with
  ``revision`` + 1 without asking ingest for anything.
* ``taxonomy_versions`` — every taxonomy put in force through ``PUT /v1/taxonomy``, with who and when; the
  newest is the one in force (a restart keeps it).
* ``corrections`` — every human correction (the fields set, who, the text), so the classifier's example memory
  can be rebuilt at start and re-classification never overwrites a human label.
* ``theme_clusters`` — the incremental clusters of items that fit no theme (centroid, size, term counts).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from feedbackloop.db import add_runtime_tables
from feedbackloop.db.erasures import add_erasure_tables


class Base(DeclarativeBase):
    pass


class Classification(Base):
    __tablename__ = "classifications"

    feedback_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True,
                                                 comment="when the item was first labelled")
    classified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True,
                                                    comment="when this revision was labelled")
    kind: Mapped[str] = mapped_column(String(32), index=True)
    sentiment: Mapped[str] = mapped_column(String(16), comment="the sentiment label")
    item: Mapped[dict[str, Any]] = mapped_column(JSON, comment="the feedback.classified.v1 data as published")
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(),
                                               comment="a label is under its review threshold and no person "
                                                       "has corrected the item since")



# The review queue reads the flagged items in (created_at, feedback_id) order.
Index("ix_classifications_review", Classification.needs_review, Classification.created_at, Classification.feedback_id)


class TaxonomyVersion(Base):
    __tablename__ = "taxonomy_versions"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(200), unique=True, comment="the document's `version`")
    document: Mapped[dict[str, Any]] = mapped_column(JSON, comment="the taxonomy document as put")
    changed_by: Mapped[str] = mapped_column(String(200), comment="the API key (name and id) that put it")
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Correction(Base):
    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    feedback_id: Mapped[str] = mapped_column(String(36), index=True)
    revision: Mapped[int] = mapped_column(Integer, comment="the revision this correction published")
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, comment="the fields the person set, as sent")
    text: Mapped[str] = mapped_column(Text, comment="what the classifier reads of the item (an example to learn)")
    corrected_by: Mapped[str] = mapped_column(String(200), comment="the API key's name")
    key_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ThemeCluster(Base):
    __tablename__ = "theme_clusters"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    centroid: Mapped[list[float]] = mapped_column(JSON, comment="mean embedding of the members, unit length")
    size: Mapped[int] = mapped_column(Integer)
    term_counts: Mapped[dict[str, int]] = mapped_column(JSON, comment="members containing each term (top terms)")
    terms: Mapped[list[str]] = mapped_column(JSON, comment="the most telling terms, best first")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


runtime_tables = add_runtime_tables(Base.metadata)
erasure_tables = add_erasure_tables(Base.metadata)
