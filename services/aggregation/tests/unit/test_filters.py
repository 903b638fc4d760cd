from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from aggregation.domain.filters import FeedbackFilter, InsightFilter, ThemeFilter


def _fields(exc: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in exc.value.errors()}


def test_defaults() -> None:
    f = FeedbackFilter()
    assert f.limit == 50 and f.cursor is None and f.kind is None and f.from_ is None


@pytest.mark.parametrize("field", ["kind", "sentiment", "urgency", "channel"])
def test_unknown_enum_value_names_its_field(field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        FeedbackFilter.model_validate({field: "bogus"})
    assert _fields(exc) == {field}


def test_known_enum_values_pass() -> None:
    f = FeedbackFilter.model_validate({"kind": "feature_request", "sentiment": "mixed", "urgency": "critical",
                                       "channel": "community"})
    assert (f.kind, f.sentiment, f.urgency, f.channel) == ("feature_request", "mixed", "critical", "community")


@pytest.mark.parametrize("limit", [0, -1, 201, 1000])
def test_limit_outside_1_to_200_names_limit(limit: int) -> None:
    with pytest.raises(ValidationError) as exc:
        FeedbackFilter.model_validate({"limit": limit})
    assert _fields(exc) == {"limit"}


@pytest.mark.parametrize("limit", [1, 200])
def test_limit_bounds_are_inclusive(limit: int) -> None:
    assert FeedbackFilter.model_validate({"limit": limit}).limit == limit


@pytest.mark.parametrize("model", [FeedbackFilter, ThemeFilter])
@pytest.mark.parametrize("to", ["2025-03-01T00:00:00Z", "2025-02-01T00:00:00Z", "2025-03-01T01:00:00+01:00"])
def test_to_must_be_after_from(model: type[FeedbackFilter | ThemeFilter], to: str) -> None:
    with pytest.raises(ValidationError) as exc:
        model.model_validate({"from": "2025-03-01T00:00:00Z", "to": to})
    assert _fields(exc) == {"to"}


def test_window_is_normalized_to_utc_and_naive_means_utc() -> None:
    f = FeedbackFilter.model_validate({"from": "2025-03-01T02:00:00+02:00", "to": "2025-03-02T00:00:00"})
    assert f.from_ == datetime(2025, 3, 1, tzinfo=UTC) and f.to == datetime(2025, 3, 2, tzinfo=UTC)


def test_unknown_parameter_is_refused_by_name() -> None:
    with pytest.raises(ValidationError) as exc:
        FeedbackFilter.model_validate({"sentimant": "negative"})
    assert _fields(exc) == {"sentimant"}


def test_insight_filter_knows_types_and_severities() -> None:
    assert InsightFilter.model_validate({"type": "urgent_item", "severity": "critical"}).type == "urgent_item"
    with pytest.raises(ValidationError) as exc:
        InsightFilter.model_validate({"type": "gossip", "severity": "meh"})
    assert _fields(exc) == {"type", "severity"}
