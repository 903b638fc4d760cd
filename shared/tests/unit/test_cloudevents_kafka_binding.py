"""Records written by the official CloudEvents Python SDK's Kafka binding decode on every topic, in both modes.

Both of the SDK's Kafka APIs write them: ``cloudevents.core.bindings.kafka`` (SDK 2.x) and ``cloudevents.v1.kafka``
(the 1.x API, whose structured mode moves ``datacontenttype`` to the ``content-type`` header). The strictness cases
are what the CloudEvents 1.0 specification requires and the Kafka protocol binding defines; the checked-in JSON
Schemas say the same things (``jsonschema`` with format checks).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from cloudevents.v1 import kafka as ce_kafka_v1
from cloudevents.v1.http import CloudEvent as CloudEventV1
from pydantic import BaseModel

from feedbackloop.contracts import (
    FEEDBACK_CLASSIFIED,
    FEEDBACK_RAW,
    INSIGHTS,
    PRIVACY,
    RELEASES,
    TOPICS,
    TRACKER,
    DecodeError,
    Topic,
    decode,
    encode,
    feedback_id_for,
    new_envelope,
)
from feedbackloop.contracts.schemas import schema_dir

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
FEEDBACK_ID = feedback_id_for("api", "1")
RAW: dict[str, Any] = {
    "feedback_id": str(FEEDBACK_ID), "source": "api", "external_id": "1", "channel": "api",
    "text": "Checkout crashes", "created_at": NOW.isoformat(), "received_at": NOW.isoformat(),
}
EXAMPLES: dict[str, dict[str, Any]] = {
    FEEDBACK_RAW.name: RAW,
    FEEDBACK_CLASSIFIED.name: {
        **RAW, "revision": 1, "sentiment": {"label": "negative", "score": -0.8}, "kind": "bug",
        "urgency": "high", "model": {"name": "rules", "version": "1"},
    },
    # Its own `type` field is not the CloudEvents type: binary mode must not read the value as an envelope.
    INSIGHTS.name: {
        "insight_id": str(uuid.uuid4()), "type": "spike", "title": "Login complaints tripled", "severity": "warning",
        "window": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z"}, "created_at": NOW.isoformat(),
    },
    RELEASES.name: {"release_id": "r-42", "version": "4.2.0", "released_at": NOW.isoformat()},
    PRIVACY.name: {"request_id": str(uuid.uuid4()), "customer_id": "acme", "feedback_ids": [str(FEEDBACK_ID)],
                   "requested_at": NOW.isoformat(), "reason": "GDPR art. 17"},
    TRACKER.name: {"issue_key": "github:acme/web#42", "tracker": "github", "status": "done", "action": "closed",
                   "resolution": "completed", "changed_at": NOW.isoformat()},
}


def _key_of(topic: Topic) -> str:
    return str(EXAMPLES[topic.name][topic.key_field])


def _headers(message: Any) -> dict[str, str]:
    """The record headers as the consumer hands them to decode (``runtime.kafka.headers_dict``)."""
    return {name: value.decode() for name, value in message.headers.items()}


def _key(message: Any) -> bytes | None:
    return message.key.encode() if isinstance(message.key, str) else message.key


def _sdk_event(topic: Topic, **attributes: Any) -> CloudEvent:
    return CloudEvent({"type": topic.event_type, "source": "/ci/pipeline", "datacontenttype": "application/json",
                       "subject": _key_of(topic), "partitionkey": _key_of(topic), **attributes},
                      EXAMPLES[topic.name])


def _sdk_v1_event(topic: Topic, **attributes: Any) -> CloudEventV1:
    return CloudEventV1({"type": topic.event_type, "source": "/ci/pipeline", "datacontenttype": "application/json",
                         "partitionkey": _key_of(topic), **attributes}, EXAMPLES[topic.name])


def _data_of(topic: Topic, data: BaseModel) -> dict[str, Any]:
    return data.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _assert_decoded(topic: Topic, message: Any) -> None:
    envelope = decode(topic, message.value, _headers(message), key=_key(message))
    assert envelope.type == topic.event_type
    assert envelope.source == "/ci/pipeline"
    assert envelope.subject == _key_of(topic)
    assert _data_of(topic, envelope.data) == topic.model.model_validate(EXAMPLES[topic.name]).model_dump(
        mode="json", by_alias=True, exclude_unset=True)


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.name)
def test_sdk_binary_mode_records_decode(topic: Topic) -> None:
    message = ce_kafka.to_binary(_sdk_event(topic), JSONFormat())
    assert "ce_specversion" in message.headers and b"specversion" not in message.value
    _assert_decoded(topic, message)


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.name)
def test_sdk_structured_mode_records_decode(topic: Topic) -> None:
    message = ce_kafka.to_structured(_sdk_event(topic), JSONFormat())
    assert message.headers["content-type"].startswith(b"application/cloudevents+json")
    _assert_decoded(topic, message)


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.name)
@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_sdk_1x_kafka_api_records_decode_with_the_key_as_subject(topic: Topic, mode: str) -> None:
    to_record = ce_kafka_v1.to_binary if mode == "binary" else ce_kafka_v1.to_structured
    message = to_record(_sdk_v1_event(topic))  # no subject attribute: the record key (partitionkey) stands in
    _assert_decoded(topic, message)


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.name)
def test_subject_falls_back_to_the_payload_key_without_a_record_key(topic: Topic) -> None:
    event = CloudEvent({"type": topic.event_type, "source": "/ci/pipeline"}, EXAMPLES[topic.name])
    message = ce_kafka.to_binary(event, JSONFormat())
    assert message.key is None and "content-type" not in message.headers  # no datacontenttype: JSON by default
    assert decode(topic, message.value, _headers(message)).subject == _key_of(topic)


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.name)
def test_our_structured_records_read_with_the_sdk_and_validate_against_the_schema(topic: Topic) -> None:
    data = topic.model.model_validate(EXAMPLES[topic.name])
    value = encode(new_envelope(topic, data, source="/feedbackloop/test"))
    event = ce_kafka.from_structured(ce_kafka.KafkaMessage(
        headers={"content-type": b"application/cloudevents+json"}, key=_key_of(topic).encode(), value=value),
        JSONFormat())
    assert event.get_type() == topic.event_type and event.get_subject() == _key_of(topic)
    _validator(topic).validate(json.loads(value))


def _binary(topic: Topic, **headers: str | None) -> tuple[bytes, dict[str, str]]:
    base = {"ce_specversion": "1.0", "ce_id": "e1", "ce_source": "/ci", "ce_type": topic.event_type,
            "content-type": "application/json"}
    merged = {**base, **headers}
    return json.dumps(EXAMPLES[topic.name]).encode(), {k: v for k, v in merged.items() if v is not None}


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({"ce_specversion": "0.3"}, "specversion is '0.3', expected '1.0'"),
        ({"ce_id": ""}, "id is '': CloudEvents requires a non-empty string"),
        ({"ce_id": None}, "id is None"),
        ({"ce_source": ""}, "source is ''"),
        ({"ce_type": ""}, "type is '', expected 'feedbackloop.insights.v1'"),
        ({"ce_type": "feedbackloop.releases.v1"}, "expected 'feedbackloop.insights.v1'"),
        ({"content-type": "text/xml"}, "datacontenttype is 'text/xml'"),
        ({"ce_subject": ""}, "subject is ''"),
        ({"ce_Bad_Name": "x"}, r"attribute names \['bad_name'\]"),
    ],
)
def test_binary_mode_is_strict_on_what_the_spec_requires(headers: dict[str, str | None], reason: str) -> None:
    value, record_headers = _binary(INSIGHTS, **headers)
    with pytest.raises(DecodeError, match=reason):
        decode(INSIGHTS, value, record_headers)


def test_binary_mode_accepts_json_media_types_with_parameters_and_case() -> None:
    for content_type in ("application/json; charset=utf-8", "Application/JSON", "application/vnd.feedback+json"):
        value, headers = _binary(INSIGHTS, **{"content-type": content_type})
        assert decode(INSIGHTS, value, headers).data.type == "spike"


def _structured(topic: Topic, **members: Any) -> bytes:
    doc = {"specversion": "1.0", "id": "e1", "source": "/ci", "type": topic.event_type, "subject": _key_of(topic),
           "data": EXAMPLES[topic.name], **members}
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


@pytest.mark.parametrize(
    "members, headers, reason",
    [
        ({"specversion": None}, {}, "specversion is missing"),
        ({"specversion": "1.1"}, {}, "specversion is '1.1'"),
        ({"id": ""}, {}, "id is ''"),
        ({"source": ""}, {}, "source is ''"),
        ({"datacontenttype": "text/xml"}, {}, "datacontenttype is 'text/xml'"),
        ({"data": None, "data_base64": "e30="}, {}, "data_base64"),
        ({"datacontenttype": None}, {"content-type": "text/xml"}, "datacontenttype is 'text/xml'"),  # SDK 1.x header
        ({}, {"content-type": "application/cloudevents-batch+json"}, "batch mode"),
        ({}, {"content-type": "application/cloudevents+avro"}, "only the JSON event format"),
        ({"Source": "/x"}, {}, r"attribute names \['Source'\]"),
    ],
)
def test_structured_mode_is_strict_on_what_the_spec_requires(members: dict[str, Any], headers: dict[str, str],
                                                              reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(FEEDBACK_RAW, _structured(FEEDBACK_RAW, **members), headers)


def _validator(topic: Topic) -> jsonschema.protocols.Validator:
    schema = json.loads((schema_dir() / f"{topic.name}.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.mark.parametrize(
    "members",
    [{"id": ""}, {"source": ""}, {"specversion": "1.1"},
     {"datacontenttype": "text/xml"}, {"data_base64": "e30="}, {"Source": "/x"}, {"subject": ""},
     {"time": "yesterday"}, {"specversion": None}],
    ids=str,
)
def test_the_json_schemas_reject_what_the_cloudevents_schema_rejects(members: dict[str, Any]) -> None:
    for topic in TOPICS:
        validator = _validator(topic)
        validator.validate(json.loads(_structured(topic)))
        assert not validator.is_valid(json.loads(_structured(topic, **members))), (topic.name, members)


def test_the_json_schemas_accept_events_without_the_optional_subject_and_time() -> None:
    for topic in TOPICS:
        _validator(topic).validate(json.loads(_structured(topic, subject=None)))
