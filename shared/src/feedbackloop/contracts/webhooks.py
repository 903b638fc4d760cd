"""What notification POSTs to a team's webhook, as OpenAPI 3.1 ``webhooks`` of notification's document.

One delivery is one JSON body (notification's ``domain/payload.py`` builds it)::

    {"type": "feedback" | "insight",
     "rule": {"id": "<uuid>", "name": "billing bugs", "team": "billing"},
     "data": <a feedback.classified.v1 item, or an insights.v1 insight>,
     "event_id": "<the CloudEvent id>"}

signed per Standard Webhooks (``webhook-id``: the delivery id, the same on every attempt; ``webhook-timestamp``;
``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``). A 2xx answer is delivered;
a network error, 408, 429 or 5xx is retried with backoff (``Retry-After`` honoured); any other status fails
the delivery. :func:`add_webhooks` writes this into an OpenAPI document; it is pure (no FastAPI).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from feedbackloop.contracts.events import ClassifiedFeedback, Insight

__all__ = ["DeliveryRule", "FeedbackDelivery", "InsightDelivery", "add_webhooks"]


class DeliveryRule(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(description="The rule's id")
    name: str
    team: str


class FeedbackDelivery(BaseModel):
    """A feedback item matched a rule."""

    model_config = ConfigDict(extra="allow", title="FeedbackDelivery")

    type: Literal["feedback"]
    rule: DeliveryRule
    data: ClassifiedFeedback
    event_id: str = Field(description="The id of the feedback.classified.v1 CloudEvent that matched")


class InsightDelivery(BaseModel):
    """An insight matched a rule."""

    model_config = ConfigDict(extra="allow", title="InsightDelivery")

    type: Literal["insight"]
    rule: DeliveryRule
    data: Insight
    event_id: str = Field(description="The id of the insights.v1 CloudEvent that matched")


_HEADERS = [
    ("webhook-id", "The delivery id: the same on every attempt of one delivery, so a receiver can drop repeats"),
    ("webhook-timestamp", "Unix seconds when this attempt was signed"),
    ("webhook-signature", "`v1,<base64 HMAC-SHA256 of \"<webhook-id>.<webhook-timestamp>.<body>\">` with the "
                          "channel's secret (a `whsec_` secret is base64)"),
]
_RESPONSES = {
    "2XX": {"description": "Delivered"},
    "default": {"description": "Not delivered: a network error, 408, 429 or 5xx is retried with backoff "
                               "(`Retry-After` honoured); any other status fails the delivery"},
}


def add_webhooks(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with a ``webhooks`` entry per delivery kind and their schemas in ``components``."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    webhooks = document.setdefault("webhooks", {})
    for name, model in (("feedback", FeedbackDelivery), ("insight", InsightDelivery)):
        schema = model.model_json_schema(by_alias=True, mode="serialization",
                                         ref_template="#/components/schemas/{model}")
        for key, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(key, definition)
        schemas[model.__name__] = schema
        webhooks[name] = {"post": {
            "operationId": f"deliver_{name}",
            "summary": f"Notification delivers a matched {name} to a rule's webhook channel",
            "description": (model.__doc__ or "").strip() + " Signed per Standard Webhooks.",
            "tags": ["webhooks"],
            "parameters": [{"name": header, "in": "header", "required": True, "description": description,
                            "schema": {"type": "string"}} for header, description in _HEADERS],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}},
            "responses": _RESPONSES,
        }}
    return document
