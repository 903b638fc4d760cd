"""SQL helpers the repositories share: the dialect's INSERT, rounding to the cent, rows as measures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Numeric, cast, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from aggregation.domain.rollups import Measures

__all__ = ["MEASURES", "InsertOf", "cents", "dialect_insert", "measures_of"]

MEASURES = ("count", "negative", "sentiment_sum", "urgent", "mrr_sum", "nps_responses", "nps_promoters",
            "nps_detractors", "csat_responses", "csat_satisfied")

#: A dialect's ``insert`` (the one with ON CONFLICT): ``postgresql.insert`` or ``sqlite.insert``.
InsertOf = Callable[[Any], Any]


def dialect_insert(session: Session | AsyncSession) -> InsertOf:
    """The INSERT with ON CONFLICT of the session's database."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def cents(value: Any) -> Any:
    """``round(value, 2)`` in SQL; PostgreSQL rounds to places only a numeric, so cast first."""
    return func.round(cast(value, Numeric), 2)


def measures_of(row: Any) -> Measures:
    """Measures of an ORM ``Rollup`` or of a result row labelled with the measure names."""
    values = row._mapping if hasattr(row, "_mapping") else {name: getattr(row, name) for name in MEASURES}
    return Measures(**{name: values[name] or 0 for name in MEASURES})
