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

__all__ = ["asyncapi", "event_schema", "render_all", "schema_dir"]


def schema_dir() -> Path:
    return Path(__file__).resolve().parents[3] / "schemas"


def event_schema(topic: Topic) -> dict[str, Any]:
    """The JSON Schema of one record value of ``topic``: the CloudEvents envelope with its typed ``data``."""
    data = topic.model.model_json_schema(by_alias=True, mode="serialization")
    defs = data.pop("$defs", {})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://feedbackloop.dev/schemas/{topic.name}.json",
        "title": f"{topic.name} event",
        "description": f"{topic.description} CloudEvents 1.0, structured mode.",
        "type": "object",
        "required": ["specversion", "id", "source", "type", "time", "subject", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "description": "Event id; consumers skip ids they have processed"},
            "source": {"type": "string", "examples": ["/feedbackloop/ingest"]},
            "type": {"const": topic.event_type},
            "time": {"type": "string", "format": "date-time"},
            "subject": {"type": "string", "description": f"The {topic.key_field}; also the record key"},
            "datacontenttype": {"const": "application/json"},
            "dataschema": {"type": "string"},
            "data": data,
        },
        "$defs": defs,
    }


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    producers = {
        "feedback.raw.v1": "ingest",
        "feedback.classified.v1": "classification",
        "insights.v1": "aggregation",
        "releases.v1": "CI pipelines and aggregation's POST /v1/releases",
    }
    for topic in TOPICS:
        message_id = topic.name.replace(".", "_")
        messages[message_id] = {
            "name": topic.event_type,
            "title": topic.name,
            "summary": topic.description,
            "contentType": CONTENT_TYPE,
            "headers": {
                "type": "object",
                "properties": {
                    "traceparent": {"type": "string", "description": "W3C trace context"},
                    "content-type": {"const": CONTENT_TYPE},
                },
            },
            "payload": {"$ref": f"./{topic.name}.schema.json"},
            "bindings": {"kafka": {"key": {"type": "string", "description": topic.key_field}}},
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
