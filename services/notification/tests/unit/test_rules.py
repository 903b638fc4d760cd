"""The rule matcher and rule validation: pure functions over plain data."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from feedbackloop.contracts import ClassifiedFeedback, Insight
from notification.domain.channel_rules import parse_channels
from notification.domain.channels import MASK, EmailChannel, SlackChannel, WebhookChannel, mask_shown_url
from notification.domain.fields import CATALOG, resolve
from notification.domain.rules import RuleInvalid, matches, validate_match
from notification.domain.targets import TargetPolicy

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EMBEDDED = TargetPolicy(https_only=False, allow_private=True)


def feedback(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "feedback_id": str(uuid.uuid4()), "source": "zendesk", "external_id": "1", "channel": "ticket",
        "text": "Login fails with a 500 after the update", "created_at": NOW, "received_at": NOW,
        "customer": {"id": "acme", "plan": "enterprise", "mrr": 1200.0}, "tags": ["vip", "eu"],
        "rating": {"kind": "nps", "value": 3, "scale": 10},
        "revision": 1, "sentiment": {"label": "negative", "score": -0.7}, "kind": "bug",
        "themes": [{"id": "login", "name": "Login issues", "confidence": 0.9},
                   {"id": "billing", "name": "Billing", "confidence": 0.4}],
        "urgency": "high", "model": {"name": "rules", "version": "1"},
    }
    base.update(changes)
    return ClassifiedFeedback.model_validate(base).model_dump(mode="json", by_alias=True)


def insight(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "insight_id": str(uuid.uuid4()), "type": "spike", "title": "Login complaints tripled", "theme": "login",
        "window": {"from": "2026-03-01T00:00:00Z", "to": "2026-03-01T12:00:00Z"},
        "metrics": {"observed": 42, "expected": 12.5}, "severity": "critical", "created_at": NOW,
    }
    base.update(changes)
    return Insight.model_validate(base).model_dump(mode="json", by_alias=True)


def cond(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


# ------------------------------------------------------------------------------------------------ matching


def test_all_any_not_and_nesting() -> None:
    item = feedback()
    bug, enterprise, praise = cond("kind", "eq", "bug"), cond("customer.plan", "eq", "enterprise"), cond(
        "kind", "eq", "praise")
    assert matches({"all": []}, "feedback", item)
    assert matches({"all": []}, "insight", insight())
    assert not matches({"any": []}, "feedback", item)
    assert matches({"all": [bug, enterprise]}, "feedback", item)
    assert not matches({"all": [bug, praise]}, "feedback", item)
    assert matches({"any": [praise, enterprise]}, "feedback", item)
    assert not matches({"any": [praise]}, "feedback", item)
    assert matches({"not": praise}, "feedback", item)
    assert not matches({"not": bug}, "feedback", item)
    nested = {"all": [bug, {"any": [praise, {"not": {"not": enterprise}}]}, {"not": {"all": [praise]}}]}
    assert matches(nested, "feedback", item)
    assert not matches(nested, "feedback", feedback(customer={"plan": "free"}))


@pytest.mark.parametrize(("condition", "expected"), [
    (cond("kind", "eq", "bug"), True),
    (cond("kind", "eq", "Bug"), False),
    (cond("kind", "ne", "praise"), True),
    (cond("kind", "ne", "bug"), False),
    (cond("urgency", "in", ["high", "critical"]), True),
    (cond("urgency", "in", ["low"]), False),
    (cond("text", "contains", "LOGIN FAILS"), True),
    (cond("text", "contains", "checkout"), False),
    (cond("customer.mrr", "gt", 1000), True),
    (cond("customer.mrr", "gt", 1200), False),
    (cond("customer.mrr", "gte", 1200), True),
    (cond("customer.mrr", "lt", 1200.5), True),
    (cond("customer.mrr", "lt", 1200), False),
    (cond("customer.mrr", "lte", 1200), True),
    (cond("sentiment.score", "lt", -0.5), True),
    (cond("rating.value", "lte", 6), True),
    (cond("created_at", "gte", "2026-03-01T00:00:00Z"), True),
    (cond("created_at", "lt", "2026-03-01T00:00:00Z"), False),
    (cond("customer.mrr", "gt", "1000"), False),  # never across types
    (cond("revision", "eq", True), False),  # true is not 1
    (cond("revision", "eq", 1), True),
])
def test_every_operator(condition: dict[str, Any], expected: bool) -> None:
    assert matches(condition, "feedback", feedback()) is expected


def test_themes_match_when_any_theme_matches() -> None:
    item = feedback()
    assert matches(cond("themes.id", "eq", "billing"), "feedback", item)
    assert matches(cond("themes.id", "contains", "login"), "feedback", item)
    assert matches(cond("themes.id", "in", ["shipping", "billing"]), "feedback", item)
    assert matches(cond("themes.confidence", "gte", 0.8), "feedback", item)
    assert matches(cond("themes.name", "contains", "login"), "feedback", item)
    assert not matches(cond("themes.id", "eq", "shipping"), "feedback", item)
    assert not matches(cond("themes.id", "ne", "billing"), "feedback", item), "ne: no theme is billing"
    assert matches(cond("themes.id", "ne", "shipping"), "feedback", item)
    assert not matches(cond("themes.id", "eq", "login"), "feedback", feedback(themes=[]))


def test_list_fields_and_dotted_paths() -> None:
    item = feedback()
    assert matches(cond("tags", "contains", "vip"), "feedback", item)
    assert matches(cond("tags", "eq", "eu"), "feedback", item)
    assert not matches(cond("tags", "contains", "free"), "feedback", item)
    assert matches(cond("model.name", "eq", "rules"), "feedback", item)
    data = insight()
    assert matches(cond("metrics.observed", "gt", 40), "insight", data)
    assert matches(cond("window.from", "eq", "2026-03-01T00:00:00Z"), "insight", data)
    assert matches(cond("severity", "in", ["critical"]), "insight", data)


def test_missing_and_null_fields() -> None:
    item = feedback(customer={"id": "acme"})  # plan is null
    assert matches(cond("customer.plan", "eq", None), "feedback", item)
    assert not matches(cond("customer.plan", "eq", "enterprise"), "feedback", item)
    assert matches(cond("customer.plan", "ne", "enterprise"), "feedback", item)
    assert not matches(cond("customer.mrr", "gt", 0), "feedback", item)
    # A feedback field on an insight is missing: no positive operator matches, ne does.
    assert not matches(cond("kind", "eq", "bug"), "insight", insight())
    assert matches(cond("kind", "ne", "bug"), "insight", insight())


def test_event_field() -> None:
    assert matches(cond("event", "eq", "feedback"), "feedback", feedback())
    assert not matches(cond("event", "eq", "feedback"), "insight", insight())
    assert matches(cond("event", "in", ["insight"]), "insight", insight())
    rule = {"all": [cond("event", "eq", "insight"), cond("severity", "eq", "critical"),
                     cond("theme", "eq", "login")]}
    assert matches(rule, "insight", insight())
    assert not matches(rule, "feedback", feedback())


def test_resolve_flattens_lists() -> None:
    data = {"themes": [{"id": "a"}, {"id": "b"}, {"name": "no id"}], "tags": ["x"], "customer": {"plan": None}}
    assert resolve("feedback", data, "themes.id") == ["a", "b"]
    assert resolve("feedback", data, "tags") == ["x"]
    assert resolve("feedback", data, "customer.plan") == [None]
    assert resolve("feedback", data, "customer.mrr") == []
    assert resolve("insight", data, "event") == ["insight"]


# ------------------------------------------------------------------------------------------------ validation


def test_known_fields_come_from_the_contract_models() -> None:
    known = CATALOG.known()
    for path in ("kind", "customer.plan", "sentiment.label", "themes.id", "themes.confidence", "author.email_hash",
                 "rating.value", "model.version", "severity", "window.from", "window.to", "metrics.*", "event"):
        assert path in known, path
    assert CATALOG.kinds_with("kind") == {"feedback"}
    assert CATALOG.kinds_with("severity") == {"insight"}
    assert CATALOG.kinds_with("created_at") == {"feedback", "insight"}
    assert CATALOG.kinds_with("metrics.observed") == {"insight"}
    assert CATALOG.kinds_with("metrics") == {"insight"}
    assert CATALOG.kinds_with("customer.tier") == set()
    assert CATALOG.kinds_with("metricsx") == set()


def test_valid_match_trees_pass() -> None:
    tree = {"all": [cond("kind", "eq", "bug"), {"any": [cond("themes.id", "in", ["a", "b"]),
                                                        {"not": cond("customer.mrr", "lt", 100)}]},
                    cond("event", "eq", "feedback"), cond("metrics.observed", "gte", 3)]}
    assert validate_match(tree) is tree
    assert validate_match({"all": []}) == {"all": []}


def _errors(tree: Any) -> list[dict[str, str]]:
    with pytest.raises(RuleInvalid) as caught:
        validate_match(tree)
    return caught.value.errors


def test_unknown_field_is_named_with_a_hint() -> None:
    (error,) = _errors({"all": [cond("kind", "eq", "bug"), cond("customer.plam", "eq", "x")]})
    assert error["field"] == "match.all.1.field"
    assert "unknown field 'customer.plam'" in error["message"] and "customer.plan" in error["message"]


def test_unknown_operator_is_named() -> None:
    (error,) = _errors({"any": [{"not": cond("kind", "like", "bug")}]})
    assert error["field"] == "match.any.0.not.op"
    assert "unknown operator 'like'" in error["message"] and "contains" in error["message"]


@pytest.mark.parametrize(("tree", "field", "fragment"), [
    ([], "match", "expected an object"),
    ({"all": {}}, "match.all", "list"),
    ({"all": [], "any": []}, "match", "exactly one"),
    ({"field": "kind", "op": "eq"}, "match.value", "required"),
    ({"field": "kind", "op": "eq", "value": 1, "extra": 2}, "match", "unknown key"),
    (cond("kind", "in", "bug"), "match.value", "list"),
    (cond("customer.mrr", "gt", [1]), "match.value", "number or a string"),
    (cond("customer.mrr", "gt", True), "match.value", "number or a string"),
    (cond("tags", "contains", {"a": 1}), "match.value", "string"),
    (cond("event", "eq", "ticket"), "match.value", "feedback, insight"),
    (cond(3, "eq", "x"), "match.field", "dotted path"),
])
def test_malformed_trees_are_named(tree: Any, field: str, fragment: str) -> None:
    errors = _errors(tree)
    assert errors[0]["field"] == field and fragment in errors[0]["message"], errors


def test_nesting_depth_is_capped() -> None:
    tree: dict[str, Any] = cond("kind", "eq", "bug")
    for _ in range(12):
        tree = {"not": tree}
    assert "nest" in _errors(tree)[0]["message"]


def test_every_problem_is_reported() -> None:
    errors = _errors({"all": [cond("nope", "eq", 1), cond("kind", "almost", 1)]})
    assert [e["field"] for e in errors] == ["match.all.0.field", "match.all.1.op"]


# ------------------------------------------------------------------------------------------------ channels


def test_webhook_channels_parse() -> None:
    channels = parse_channels([{"type": "webhook", "url": "https://hooks.example.com/x", "secret": "s3cret"},
                               {"type": "webhook", "url": "http://127.0.0.1:9000/", "secret": "whsec_c2VjcmV0"}],
                              EMBEDDED)
    assert channels == [WebhookChannel("https://hooks.example.com/x", "s3cret"),
                        WebhookChannel("http://127.0.0.1:9000/", "whsec_c2VjcmV0")]
    assert channels[0].masked(reveal_urls=True) == {"type": "webhook", "url": "https://hooks.example.com/x",
                                                    "secret": MASK}


@pytest.mark.parametrize(("url", "shown"), [
    ("https://discord.com/api/webhooks/1234/tok3n-in-path", "https://discord.com/***"),
    ("https://acme.webhook.office.com/webhookb2/a@b/IncomingWebhook/tok3n/c", "https://acme.webhook.office.com/***"),
    ("https://hooks.zapier.com/hooks/catch/1/tok3n/", "https://hooks.zapier.com/***"),
    ("https://hooks.example.com:8443/x?token=tok3n", "https://hooks.example.com:8443/***"),
])
def test_every_channel_url_is_masked_unless_revealed(url: str, shown: str) -> None:
    """Discord, Teams, Zapier and plain webhook URLs carry a credential in path or query, like Slack's."""
    webhook = WebhookChannel(url, "s3cret")
    assert webhook.masked() == {"type": "webhook", "url": shown, "secret": MASK}
    assert webhook.masked(reveal_urls=True)["url"] == url
    assert SlackChannel(url).masked(reveal_urls=True)["url"] == shown, "a Slack URL is masked for everyone"
    assert mask_shown_url(webhook.shown_url()) == shown
    assert mask_shown_url(EmailChannel(("a@example.com",)).shown_url()) == "mailto:a@example.com"


@pytest.mark.parametrize(("channel", "field", "fragment"), [
    ({"type": "sms", "url": "https://x.example.com"}, "channels.0.type", "supported channel types: webhook, slack"),
    ({"type": "webhook", "url": "https://x.example.com"}, "channels.0.secret", "required"),
    ({"type": "webhook", "url": "https://x.example.com", "secret": ""}, "channels.0.secret", "1 to 512"),
    ({"type": "webhook", "url": "https://x.example.com", "secret": "whsec_!!notbase64"}, "channels.0.secret",
     "base64"),
    ({"type": "webhook", "url": "ftp://x.example.com", "secret": "s"}, "channels.0.url", "https://"),
    ({"type": "webhook", "secret": "s"}, "channels.0.url", "required"),
    ({"type": "webhook", "url": "https://x.example.com", "secret": "s", "headers": {}}, "channels.0", "unknown key"),
])
def test_bad_channels_are_named(channel: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(RuleInvalid) as caught:
        parse_channels([channel], EMBEDDED)
    assert caught.value.errors[0]["field"] == field and fragment in caught.value.errors[0]["message"], \
        caught.value.errors


def test_a_masked_secret_keeps_the_stored_one_for_the_same_url() -> None:
    previous = [WebhookChannel("https://a.example.com", "old-secret")]
    kept = parse_channels([{"type": "webhook", "url": "https://a.example.com", "secret": MASK}], EMBEDDED, previous)
    assert kept == [WebhookChannel("https://a.example.com", "old-secret")]
    with pytest.raises(RuleInvalid):
        parse_channels([{"type": "webhook", "url": "https://b.example.com", "secret": MASK}], EMBEDDED, previous)


def test_no_channels_is_refused() -> None:
    with pytest.raises(RuleInvalid):
        parse_channels([], EMBEDDED)
