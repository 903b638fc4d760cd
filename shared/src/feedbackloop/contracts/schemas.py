"""JSON Schemas of each topic's events and the AsyncAPI document, generated from the models.

``feedbackloop schemas --write`` (``make schemas``) writes them to ``shared/schemas/``; a test fails
when the checked-in files differ from what the models say, so the published contract never drifts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from feedbackloop.contracts.envelope import CONTENT_TYPE
from feedbackloop.contracts.topics import TOPICS, Topic

__all__ = ["JSON_MEDIA_TYPE", "asyncapi", "event_schema", "render_all", "schema_dir"]


def schema_dir() -> Path:
    return Path(__file__).resolve().parents[3] / "schemas"


#: ``datacontenttype`` values that declare JSON data: ``application/json`` or any ``<type>/<subtype>+json``.
JSON_MEDIA_TYPE = r"^(application/json|[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+\+json)\s*(;.*)?$"


def event_schema(topic: Topic) -> dict[str, Any]:
    """The JSON Schema of one structured-mode record value of ``topic``: the CloudEvents envelope with its typed
    ``data``. The context attributes follow the official CloudEvents 1.0 JSON Schema (``cloudevents/formats/
    cloudevents.json`` in cloudevents/spec), narrowed to the topic: ``specversion`` 1.0, the topic's ``type``, and
    JSON ``data``. ``time`` and ``subject`` are optional in CloudEvents; Feedback Loop's producers always set them."""
    data = topic.model.model_json_schema(by_alias=True, mode="serialization")
    defs = data.pop("$defs", {})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://feedbackloop.dev/schemas/{topic.name}.json",
        "title": f"{topic.name} event",
        "description": f"{topic.description} CloudEvents 1.0, structured mode (binary mode is read too: the same "
        "attributes as ce_* headers, data as the value).",
        "type": "object",
        "required": ["specversion", "id", "source", "type", "data"],
        "properties": {
            "specversion": {"type": "string", "minLength": 1, "const": "1.0"},
            "id": {"type": "string", "minLength": 1,
                   "description": "Event id; consumers skip ids they have processed"},
            "source": {"type": "string", "minLength": 1, "format": "uri-reference",
                       "examples": ["/feedbackloop/ingest"]},
            "type": {"type": "string", "minLength": 1, "const": topic.event_type},
            "time": {"type": "string", "minLength": 1, "format": "date-time"},
            "subject": {"type": "string", "minLength": 1,
                        "description": f"The {topic.key_field}; also the record key. When absent, consumers take "
                        "the record key"},
            "datacontenttype": {"type": "string", "minLength": 1, "pattern": JSON_MEDIA_TYPE,
                                "description": "A JSON media type; absent means application/json"},
            "dataschema": {"type": "string", "minLength": 1, "format": "uri"},
            "data": data,
        },
        "not": {"required": ["data_base64"]},
        "propertyNames": {"pattern": "^([a-z0-9]+|data_base64)$"},
        "$defs": defs,
    }


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    producers = {
        "feedback.raw.v1": "ingest",
        "feedback.classified.v1": "classification",
        "insights.v1": "aggregation (and notification, type channel_paused only)",
        "releases.v1": "CI pipelines and aggregation's POST /v1/releases",
        "privacy.v1": "ingest's POST /v1/erasures",
        "tracker.v1": "ingest, from the trackers' webhooks (POST /v1/webhooks/github | jira | linear)",
    }
    for topic in TOPICS:
        message_id = topic.name.replace(".", "_")
        messages[message_id] = {
            "name": topic.event_type,
            "title": topic.name,
            "summary": topic.description,
            "description": "Produced in the CloudEvents Kafka binding's structured mode. Consumers read binary "
            "mode too (attributes in ce_* headers, datacontenttype in content-type, data as the value, recognised "
            f"by ce_specversion). The record key is the subject ({topic.key_field}); an event without a subject "
            "takes the record key (what the CloudEvents SDKs write from the partitionkey extension).",
            "contentType": CONTENT_TYPE,
            "headers": {
                "type": "object",
                "properties": {
                    "traceparent": {"type": "string", "description": "W3C trace context"},
                    "content-type": {"const": CONTENT_TYPE},
                },
            },
            "payload": {"$ref": f"./{topic.name}.schema.json"},
            "bindings": {"kafka": {"key": {"type": "string", "minLength": 1,
                                           "description": f"{topic.key_field}, the same as the subject"}}},
        }
        channels[message_id] = {
            "address": topic.name,
            "description": f"{topic.description} Key: {topic.key_field}. Produced by {producers[topic.name]}.",
            "messages": {message_id: {"$ref": f"#/components/messages/{message_id}"}},
            "bindings": {"kafka": {"partitions": 6}},
        }
        channels[f"{message_id}_dlq"] = {
            "address": topic.dlq,
            "description": f"Records of {topic.name} that failed after their retries; the error, stack summary, "
            "attempts and origin topic/partition/offset are in `dlq.*` headers.",
            "messages": {message_id: {"$ref": f"#/components/messages/{message_id}"}},
        }
        operations[f"publish_{message_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{message_id}"},
            "summary": f"{producers[topic.name]} publishes {topic.name}",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Feedback Loop events",
            "version": "1.0.0",
            "description": "The public topics of Feedback Loop. Values are CloudEvents 1.0 in structured "
            "JSON mode; a breaking change gets a new topic version (.v2).",
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "embedded": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "The embedded broker started by `make run`",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render_all() -> dict[str, str]:
    files = {f"{t.name}.schema.json": json.dumps(event_schema(t), indent=2, sort_keys=False) + "\n" for t in TOPICS}
    files["asyncapi.yaml"] = yaml.safe_dump(asyncapi(), sort_keys=False, allow_unicode=True, width=120)
    return files
