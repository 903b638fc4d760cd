"""The filters of the list endpoints, and their validation. Pure.

Each model is what one list endpoint accepts as query parameters. A value outside its enum, a
``from`` that is not before ``to``, or a ``limit`` outside 1..200 fails validation on the field that
is wrong, so the HTTP layer answers with a problem naming that parameter. Unknown parameters are
refused too: a typo in a filter name must not silently return everything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from aggregation.domain.items import as_utc
from aggregation.domain.windows import is_whole_hour, parse_length
from feedbackloop.contracts.events import Channel, InsightType, Kind, SentimentLabel, Severity, Urgency

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "FeedbackFilter", "InsightFilter", "KpiQuery", "LinkQuery", "ThemeFilter",
           "TimeseriesQuery"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

_Text = Field(default=None, min_length=1, max_length=256)


class _Page(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page")
    cursor: str | None = Field(default=None, max_length=1000, description="`next_cursor` of the previous page")


class _Window(_Page):
    from_: datetime | None = Field(default=None, alias="from", description="Created at or after (ISO 8601)")
    to: datetime | None = Field(default=None, description="Created before (ISO 8601); must be after `from`")

    @field_validator("from_", "to")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value) if value is not None else None

    @field_validator("to")
    @classmethod
    def _after_from(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("from_")
        if value is not None and start is not None and not start < value:
            raise ValueError("must be after `from`")
        return value


class FeedbackFilter(_Window):
    """``GET /v1/feedback``: every given filter must match; ``q`` is a case-insensitive substring of the text."""

    theme: str | None = _Text
    product_area: str | None = _Text
    kind: Kind | None = None
    sentiment: SentimentLabel | None = None
    urgency: Urgency | None = None
    source: str | None = _Text
    channel: Channel | None = None
    customer: str | None = Field(default=None, min_length=1, max_length=256, description="Customer id")
    plan: str | None = Field(default=None, min_length=1, max_length=256, description="Customer plan")
    q: str | None = Field(default=None, min_length=1, max_length=200, description="Text contains (any case)")


def _whole_hour(value: datetime | None) -> datetime | None:
    if value is not None and not is_whole_hour(value):
        raise ValueError("must be on a whole hour (rollups are hourly), e.g. 2025-03-01T14:00:00Z")
    return value


def _length(value: str | None) -> str | None:
    if value is not None:
        parse_length(value)
    return value


class ThemeFilter(_Window):
    """``GET /v1/themes``: themes over the items created in a window, ranked by impact.

    ``window`` (e.g. ``7d``) is the window ending at ``to`` (default: the end of the current hour); or
    ``from``/``to`` give it; with neither, all time (and no trend). Bounds must be whole hours.
    """

    window: str | None = Field(default=None, description="Window length ending at `to` or now: `24h`, `7d`, `4w`")

    _hours = field_validator("from_", "to")(_whole_hour)
    _window = field_validator("window")(_length)


class TimeseriesQuery(BaseModel):
    """``GET /v1/themes/{id}/timeseries``: one point per bucket in [from, to)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    bucket: Literal["hour", "day", "week"] = "day"
    from_: datetime | None = Field(default=None, alias="from", description="Default: 48 h, 30 d or 26 w before `to`")
    to: datetime | None = Field(default=None, description="Default: now")

    @field_validator("from_", "to")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value) if value is not None else None

    @field_validator("to")
    @classmethod
    def _after_from(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("from_")
        if value is not None and start is not None and not start < value:
            raise ValueError("must be after `from`")
        return value


class KpiQuery(BaseModel):
    """``GET /v1/kpis``: KPIs over ``window`` ending at ``to`` (default: the end of the current hour)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: str = Field(default="7d", description="`24h`, `7d`, `4w` … up to 366d")
    to: datetime | None = Field(default=None, description="End of the window, a whole hour")

    _window = field_validator("window")(_length)

    @field_validator("to")
    @classmethod
    def _utc_hour(cls, value: datetime | None) -> datetime | None:
        return _whole_hour(as_utc(value)) if value is not None else None


class InsightFilter(_Page):
    """``GET /v1/insights``: newest first, optionally of one type and one severity."""

    type: InsightType | None = None
    severity: Severity | None = None
    acknowledged: bool | None = Field(default=None, description="Only acknowledged (true) or open (false) ones")


class LinkQuery(_Page):
    """``GET /v1/links``: newest first, optionally of one theme, one status and one tracker."""

    theme: str | None = _Text
    status: Literal["creating", "open", "in_progress", "done", "cancelled", "failed"] | None = None
    tracker: Literal["github", "jira", "linear"] | None = None
