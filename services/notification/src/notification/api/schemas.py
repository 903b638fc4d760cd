"""Request and response bodies of the notification API, and their translation from stored rows.

A secret never appears in a response: a webhook is shown with ``"secret": "***"`` and a Slack URL (the
credential itself) as ``<scheme>://<host>/***``. To a key without the ``write`` scope every channel URL, in
rules and in deliveries, is shown that way (``reveal_urls=False``): webhook URLs often hold a token too.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from notification.domain.channels import channel_from_json, mask_shown_url
from notification.domain.lifecycle import DeliveryStatus
from notification.domain.rules import OPS
from notification.store.models import Delivery, DeliveryAttempt, Rule, Team
from notification.store.repository import utc

_MATCH_DOC = (
    'A match tree: {"all": [node…]}, {"any": [node…]}, {"not": node} or a condition {"field", "op", "value"}. '
    f"`op` is one of {', '.join(OPS)}; `field` is a dotted path of feedback.classified.v1 or insights.v1 data "
    '(e.g. `customer.plan`, `themes.id`), or `event` ("feedback" | "insight"). {"all": []} matches everything.'
)
_EXAMPLE: dict[str, Any] = {"name": "billing bugs", "team": "billing",
            "match": {"all": [{"field": "kind", "op": "eq", "value": "bug"},
                              {"field": "themes.id", "op": "contains", "value": "billing"}]},
            "channels": [{"type": "webhook", "url": "https://hooks.example.com/billing", "secret": "whsec_…"}],
            "enabled": True}


class RuleIn(BaseModel):
    """A rule to create or to replace an existing one with."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    name: str = Field(min_length=1, max_length=200)
    team: str = Field(min_length=1, max_length=100)
    match: dict[str, Any] = Field(description=_MATCH_DOC)
    channels: list[dict[str, Any]] = Field(
        min_length=1, max_length=20,
        description='Where a match goes: {"type": "webhook", "url": "https://…", "secret": "…"} (the secret is '
                    "`whsec_<base64>` (Standard Webhooks) or any string, whose UTF-8 bytes are then the key), "
                    '{"type": "slack", "url": "https://hooks.slack.com/services/…"}, {"type": "email", "to": '
                    '["team@example.com"], "to_owner": false} (`to_owner`: a `loop_closed` delivery also goes to '
                    "its customer's owner; `to` may then be empty), "
                    '{"type": "zendesk" | "intercom", "public": false, "message": "Fixed: {issue_title}"} (a reply, '
                    "or an internal note, on a loop customer's newest conversation of that tool; `message` may name "
                    "{issue_title}, {issue_url}, {release}, {customer}) or "
                    '{"type": "tracker", "tracker": "github", "repository": "acme/web"} / {"tracker": "jira", '
                    '"project": "AUTH", "issue_type": "Bug"} / {"tracker": "linear", "team": "ENG"} (`labels` '
                    "optional; one issue per insight episode, insight rules only). On update, a webhook secret of "
                    "`***` (or none) keeps the stored secret of the channel with that URL, and a masked Slack URL "
                    "keeps the stored one.")
    enabled: bool = True
    throttle: dict[str, Any] | None = Field(
        default=None, description='{"limit": N, "window_s": S}: at most N messages per S seconds per channel; the '
                                  "rest go out as one digest when the window ends")


class RuleOut(BaseModel):
    id: uuid.UUID
    name: str
    team: str
    match: dict[str, Any]
    channels: list[dict[str, Any]] = Field(description="Secrets masked")
    throttle: dict[str, Any] | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class RulePage(BaseModel):
    items: list[RuleOut]
    next_cursor: str | None


class RuleTestIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"event": "feedback", "data": {"kind": "bug", "customer": {"plan": "enterprise"},
                                       "themes": [{"id": "billing", "name": "Billing", "confidence": 0.9}]}}]})

    event: Literal["feedback", "insight"]
    data: dict[str, Any] = Field(description="The event's data as it would arrive (fields may be left out)")


class RuleSummary(BaseModel):
    id: uuid.UUID
    name: str
    team: str
    channels: int


class RuleTestOut(BaseModel):
    event: Literal["feedback", "insight"]
    matched: list[RuleSummary]
    rules_evaluated: int


class AttemptOut(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryOut(BaseModel):
    id: uuid.UUID = Field(description="The `webhook-id` header the receiver sees on every attempt")
    event_id: str
    event_kind: Literal["feedback", "insight", "digest"]
    digest_id: uuid.UUID | None = Field(default=None, description="The digest a `digested` delivery was rolled into")
    subject: str | None = Field(default=None, description="The feedback or insight id the event was about (the "
                                                             "CloudEvents `subject`); none for a digest, and for "
                                                             "deliveries queued before it was recorded")
    customer: str | None = Field(default=None, description="The customer a `loop_closed` delivery tells (the "
                                                          "insight is routed once per customer); none otherwise")
    rule_id: uuid.UUID
    channel_index: int
    url: str = Field(description="The channel's URL as of the last attempt; masked (`<scheme>://<host>/***`) for a "
                                 "key without the `write` scope, and for Slack always; a name for the channels "
                                 "without one (`mailto:…`, `zendesk:internal-note`, `jira:AUTH`)")
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None = Field(description="Why the last attempt failed, or why a `skipped` delivery was not "
                                                "sent")
    result: str | None = Field(default=None, description="What a sent delivery made: the tracker issue created "
                                                         "(key and URL), the conversation replied on")
    created_at: datetime
    delivered_at: datetime | None


class DeliveryDetail(DeliveryOut):
    attempt_log: list[AttemptOut]
    payload: dict[str, Any] = Field(description="The JSON body sent on every attempt")


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "billing", "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}}]})

    name: str = Field(min_length=1, max_length=100, description="What rules name in their `team`")
    quiet_hours: dict[str, Any] | None = Field(
        default=None, description='{"start": "HH:MM", "end": "HH:MM", "timezone": "<IANA>"}: messages held, and '
                                  "sent as one digest per channel when quiet hours end")


class TeamOut(BaseModel):
    id: uuid.UUID
    name: str
    quiet_hours: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class TeamPage(BaseModel):
    items: list[TeamOut]
    next_cursor: str | None


class ResumeOut(BaseModel):
    requeued: int = Field(description="Paused deliveries queued again")


def team_out(team: Team) -> TeamOut:
    return TeamOut(id=uuid.UUID(team.id), name=team.name, quiet_hours=team.quiet_hours,
                   created_at=utc(team.created_at), updated_at=utc(team.updated_at))


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


def rule_out(rule: Rule, *, reveal_urls: bool) -> RuleOut:
    """The rule as answered: secrets masked, and channel URLs too unless ``reveal_urls`` (a key with ``write``)."""
    return RuleOut(id=uuid.UUID(rule.id), name=rule.name, team=rule.team, match=rule.match,
                   channels=[channel_from_json(c).masked(reveal_urls=reveal_urls) for c in rule.channels],
                   throttle=rule.throttle,
                   enabled=rule.enabled,
                   created_at=utc(rule.created_at), updated_at=utc(rule.updated_at))


def delivery_out(delivery: Delivery, *, reveal_urls: bool) -> DeliveryOut:
    return DeliveryOut(**_delivery_fields(delivery, reveal_urls))


def delivery_detail(delivery: Delivery, attempts: list[DeliveryAttempt], *, reveal_urls: bool) -> DeliveryDetail:
    log = [AttemptOut(attempt=a.attempt, at=utc(a.at), status_code=a.status_code,
                      error=a.error, duration_ms=a.duration_ms) for a in attempts]
    return DeliveryDetail(**_delivery_fields(delivery, reveal_urls), attempt_log=log, payload=delivery.payload)


def _delivery_fields(d: Delivery, reveal_urls: bool) -> dict[str, Any]:
    pending = d.status == DeliveryStatus.PENDING
    return {"id": uuid.UUID(d.id), "event_id": d.event_id, "event_kind": d.event_kind, "rule_id": uuid.UUID(d.rule_id),
            "digest_id": uuid.UUID(d.digest_id) if d.digest_id else None, "subject": d.subject,
            "channel_index": d.channel_index, "url": d.url if reveal_urls else mask_shown_url(d.url),
            "status": d.status, "attempts": d.attempts,
            "next_attempt_at": utc(d.next_attempt_at) if pending else None, "last_status_code": d.last_status_code,
            "last_error": d.last_error, "created_at": utc(d.created_at), "delivered_at": utc(d.delivered_at),
            "customer": d.fanout_key.removeprefix("customer:") if d.fanout_key else None, "result": d.result}


def page_key(row: Delivery | Rule | Team) -> tuple[datetime, str]:
    """The keyset key of a listed row (:func:`feedbackloop.http.keyset_page`): ``(created_at, id)``."""
    return utc(row.created_at), row.id  # type: ignore[return-value]
