import json
import uuid
from datetime import UTC, datetime

import pytest

from feedbackloop.contracts import FEEDBACK_RAW, INSIGHTS, DecodeError, RawFeedback, decode, encode, feedback_id_for
from feedbackloop.contracts.envelope import new_envelope
from feedbackloop.contracts.schemas import render_all, schema_dir


def _raw(**overrides: object) -> RawFeedback:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    fields: dict[str, object] = dict(
        feedback_id=feedback_id_for("api", "1"),
        source="api",
        external_id="1",
        channel="api",
        text="hello",
        created_at=now,
        received_at=now,
    )
    fields.update(overrides)
    return RawFeedback.model_validate(fields)


def test_feedback_id_is_deterministic_per_source_and_id() -> None:
    assert feedback_id_for("zendesk", "7") == feedback_id_for("zendesk", "7")
    assert feedback_id_for("zendesk", "7") != feedback_id_for("intercom", "7")
    assert feedback_id_for("zendesk", "7").version == 5


def test_envelope_is_structured_cloudevent_keyed_by_subject() -> None:
    envelope = new_envelope(FEEDBACK_RAW, _raw(), source="/feedbackloop/ingest", event_id="e1")
    doc = json.loads(encode(envelope))
    assert {k: doc[k] for k in ("specversion", "id", "source", "type", "subject", "datacontenttype")} == {
        "specversion": "1.0",
        "id": "e1",
        "source": "/feedbackloop/ingest",
        "type": "feedbackloop.feedback.raw.v1",
        "subject": str(feedback_id_for("api", "1")),
        "datacontenttype": "application/json",
    }
    assert doc["data"]["text"] == "hello"
    assert decode(FEEDBACK_RAW, encode(envelope), {"traceparent": "t"}).data == envelope.data


@pytest.mark.parametrize(
    "value, reason",
    [
        (b"not json", "not UTF-8 JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"type": "feedbackloop.insights.v1"}', "expected 'feedbackloop.feedback.raw.v1'"),
        (None, "tombstone"),
    ],
)
def test_decode_rejects_what_is_not_an_event_of_the_topic(value: bytes | None, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(FEEDBACK_RAW, value)


def test_decode_names_the_field_that_breaks_the_schema() -> None:
    doc = json.loads(encode(new_envelope(FEEDBACK_RAW, _raw(), source="s")))
    doc["data"]["channel"] = "carrier pigeon"
    with pytest.raises(DecodeError, match=r"data\.channel"):
        decode(FEEDBACK_RAW, json.dumps(doc).encode())


def test_consumers_tolerate_fields_added_later() -> None:
    doc = json.loads(encode(new_envelope(FEEDBACK_RAW, _raw(), source="s")))
    doc["data"]["sentiment_hint"] = "new optional field"
    assert decode(FEEDBACK_RAW, json.dumps(doc).encode()).data.text == "hello"


def test_insight_window_uses_from_on_the_wire() -> None:
    insight = INSIGHTS.model.model_validate(
        {
            "insight_id": str(uuid.uuid4()),
            "type": "spike",
            "title": "t",
            "severity": "info",
            "window": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z"},
            "created_at": "2026-01-01T01:00:00Z",
        }
    )
    assert json.loads(encode(new_envelope(INSIGHTS, insight, source="s")))["data"]["window"]["from"].startswith("2026")


def test_checked_in_schemas_match_the_models() -> None:
    for filename, text in render_all().items():
        path = schema_dir() / filename
        assert path.exists() and path.read_text() == text, f"{filename} is stale: run `make schemas`"
