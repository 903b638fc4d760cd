"""Closing the loop, decided without I/O: the per-customer fan-out of ``loop_closed``, what each channel makes of
one customer, the once-per-customer delivery keys, reply templates, and the loop message."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from feedbackloop.contracts import Insight
from notification.domain.channel_rules import ALL_CONFIGURED, Integrations, parse_channels
from notification.domain.channels import EmailChannel, ReplyChannel, TrackerChannel, channel_from_json, mask_shown_url
from notification.domain.erasure import insight_after_erasure
from notification.domain.lifecycle import DeliveryStatus
from notification.domain.loop import (
    FitKind,
    View,
    customer_of,
    fan_out,
    fanout_delivery_id,
    fanout_key_for,
    fit,
    has_marker,
    marker,
    newest_conversation,
    once_delivery_id,
    recipients,
    reply_html,
    reply_text,
    template_problem,
)
from notification.domain.messages import email_parts, summarize
from notification.domain.noise import QuietHours, episode_key
from notification.domain.routing import RoutedEvent, RoutedRule, RoutingFacts, route
from notification.domain.rules import RuleInvalid, Throttle, kinds_matched, matches, validate_match
from notification.domain.targets import TargetPolicy

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
POLICY = TargetPolicy(https_only=False, allow_private=True)
INSIGHT_ID = "5b1e0a8e-6b3a-4c59-9a57-1d2e3f4a5b6c"


def loop_insight(**changes: Any) -> dict[str, Any]:
    """A ``loop_closed`` insight as the consumer sees it (validated by the contract, dumped to JSON)."""
    items = [str(uuid.uuid4()) for _ in range(4)]
    data: dict[str, Any] = {
        "insight_id": INSIGHT_ID, "type": "loop_closed", "title": "Fixed: Login — 3 customers to tell",
        "theme": "login", "window": {"from": NOW, "to": NOW}, "metrics": {"customers": 3}, "severity": "info",
        "evidence": items, "created_at": NOW,
        "loop": {"link_id": "link-1", "theme": "login",
                 "issue": {"issue_key": "jira:AUTH-7", "tracker": "jira", "url": "https://acme.atlassian.net/browse/AUTH-7",
                           "title": "Login fails with SSO", "status": "done"},
                 "release": {"release_id": "r-1", "version": "2.4.0", "link": "https://acme.example/releases/2.4.0"},
                 "linked_at": NOW - timedelta(days=3), "closed_at": NOW, "items": 4,
                 "customers": [
                     {"id": "acme", "plan": "enterprise", "mrr": 900, "owner": "jane@vendor.example",
                      "items": items[:2], "conversations": [{"source": "zendesk", "id": "812"},
                                                             {"source": "intercom", "id": "ic-1"},
                                                             {"source": "zendesk", "id": "700"}]},
                     {"id": "globex", "plan": "pro", "mrr": 120, "owner": "@sam", "items": [items[2]],
                      "conversations": [{"source": "intercom", "id": "ic-9"}]},
                     {"id": "initech", "plan": "free", "mrr": 0, "items": [items[3]]}]}}
    data.update(changes)
    return Insight.model_validate(data).model_dump(mode="json", by_alias=True)


def _eq(field: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": "eq", "value": value}


# -- fan-out ---------------------------------------------------------------------------------------------------


def test_a_loop_closed_insight_is_routed_once_per_customer_each_view_narrowed_to_that_customer() -> None:
    data = loop_insight()
    views = fan_out("insight", data)
    assert [v.fanout for v in views] == ["acme", "globex", "initech"]
    for view in views:
        (customer,) = view.data["loop"]["customers"]
        assert customer["id"] == view.fanout and customer_of(view.data) == customer
        assert view.data["insight_id"] == INSIGHT_ID and view.data["loop"]["issue"] == data["loop"]["issue"]
    assert len(data["loop"]["customers"]) == 3, "the event's own data is left as it was"


def test_other_events_and_a_loop_without_customers_route_as_they_are() -> None:
    spike = {"type": "spike", "insight_id": "i", "title": "t"}
    assert fan_out("insight", spike) == [View(spike)]
    regression = loop_insight(type="loop_regression")
    assert fan_out("insight", regression) == [View(regression)]
    nobody = loop_insight()
    nobody["loop"]["customers"] = []
    assert fan_out("insight", nobody) == [View(nobody)]
    assert fan_out("feedback", {"kind": "bug"}) == [View({"kind": "bug"})]


def test_a_customer_listed_twice_is_told_once() -> None:
    data = loop_insight()
    data["loop"]["customers"].append(dict(data["loop"]["customers"][0]))
    assert [v.fanout for v in fan_out("insight", data)] == ["acme", "globex", "initech"]


@pytest.mark.parametrize(("condition", "told"), [
    (_eq("loop.customers.owner", "jane@vendor.example"), ["acme"]),
    ({"field": "loop.customers.plan", "op": "in", "value": ["enterprise", "pro"]}, ["acme", "globex"]),
    ({"field": "loop.customers.mrr", "op": "gte", "value": 100}, ["acme", "globex"]),
    ({"field": "loop.customers.mrr", "op": "lt", "value": 100}, ["initech"]),
    (_eq("loop.issue.tracker", "jira"), ["acme", "globex", "initech"]),
    (_eq("theme", "login"), ["acme", "globex", "initech"]),
    (_eq("loop.customers.conversations.source", "zendesk"), ["acme"]),
])
def test_rules_match_each_customer_on_their_own(condition: dict[str, Any], told: list[str]) -> None:
    match = {"all": [_eq("type", "loop_closed"), condition]}
    validate_match(match)  # the catalog knows the loop's paths
    assert [v.fanout for v in fan_out("insight", loop_insight()) if matches(match, "insight", v.data)] == told


# -- what a channel makes of one customer ---------------------------------------------------------------------


def test_the_newest_conversation_of_the_channels_tool_is_chosen() -> None:
    acme = loop_insight()["loop"]["customers"][0]
    assert newest_conversation(acme, "zendesk") == "812"
    assert newest_conversation(acme, "intercom") == "ic-1"
    assert newest_conversation(acme, "freshdesk") is None


def test_channel_fit_per_customer() -> None:
    acme, globex, initech = fan_out("insight", loop_insight())
    zendesk, intercom = {"type": "zendesk"}, {"type": "intercom", "public": True}
    owner_only = {"type": "email", "to": [], "to_owner": True}
    assert [fit(zendesk, "insight", v).kind for v in (acme, globex, initech)] == [
        FitKind.SEND, FitKind.NONE, FitKind.NONE]
    assert [fit(intercom, "insight", v).kind for v in (acme, globex, initech)] == [
        FitKind.SEND, FitKind.SEND, FitKind.NONE]
    assert fit(owner_only, "insight", acme).kind is FitKind.SEND
    skipped = fit(owner_only, "insight", globex)  # "@sam" is a handle, not an address
    assert skipped.kind is FitKind.SKIP and "globex has no owner with an email address" in str(skipped.reason)
    assert fit({**owner_only, "to": ["cs@acme.example"]}, "insight", initech).kind is FitKind.SEND
    assert fit({"type": "tracker", "tracker": "jira", "project": "AUTH"}, "insight", acme).kind is FitKind.NONE
    assert fit({"type": "tracker", "tracker": "jira", "project": "AUTH"}, "insight", View({"type": "spike"})
               ).kind is FitKind.SEND
    assert fit(zendesk, "feedback", View({"kind": "bug"})).kind is FitKind.NONE
    assert fit({"type": "slack", "url": "https://hooks.slack.com/x"}, "insight", initech).kind is FitKind.SEND


def test_the_owner_joins_the_recipients_once() -> None:
    acme = fan_out("insight", loop_insight())[0]
    channel = {"type": "email", "to": ["cs-leads@acme.example"], "to_owner": True}
    assert recipients(channel, acme.data) == ["cs-leads@acme.example", "jane@vendor.example"]
    assert recipients({**channel, "to": ["JANE@vendor.example"]}, acme.data) == ["JANE@vendor.example"]
    assert recipients({**channel, "to_owner": False}, acme.data) == ["cs-leads@acme.example"]
    assert recipients(channel, {"type": "spike"}) == ["cs-leads@acme.example"]


# -- routing: keys, holds ------------------------------------------------------------------------------------


CHANNELS: list[dict[str, Any]] = [{"type": "email", "to": [], "to_owner": True}, {"type": "zendesk", "public": False},
                                  {"type": "intercom", "public": True},
                                  {"type": "slack", "url": "https://hooks.slack.com/services/T/B/x"}]


def _rule(channels: list[dict[str, Any]] = CHANNELS, throttle: Throttle | None = None) -> RoutedRule:
    return RoutedRule("r1", "tell", "success", [channel_from_json(c).shown_url() for c in channels], throttle,
                      settings=channels)


def _route_all(event_id: str, data: dict[str, Any], rule: RoutedRule, **facts: Any) -> list[Any]:
    """Each customer's view routed in turn, as a batch does: the throttle windows carried from one to the next."""
    deliveries = []
    windows: dict[tuple[str, int], Any] = {}
    for view in fan_out("insight", data):
        event = RoutedEvent("insight", event_id, view.data, INSIGHT_ID, view.fanout)
        decision = route(RoutingFacts(event=event, rules=[rule], now=NOW, windows=windows, **facts),
                         first_delay=0.0, digest_grace_s=1.0, episode_gap_s=3600.0)
        windows.update(decision.windows)
        deliveries += decision.deliveries
    return deliveries


def test_loop_deliveries_are_keyed_per_insight_customer_rule_and_channel_so_a_revision_tells_no_one_again() -> None:
    first = _route_all("event-1", loop_insight(), _rule())
    planned = {(d.fanout_key, d.channel_index): d for d in first}
    assert sorted(planned) == [
        ("customer:acme", 0), ("customer:acme", 1), ("customer:acme", 2), ("customer:acme", 3),
        ("customer:globex", 0), ("customer:globex", 2), ("customer:globex", 3),
        ("customer:initech", 0), ("customer:initech", 3)]
    assert planned[("customer:acme", 1)].id == fanout_delivery_id(INSIGHT_ID, "acme", "r1", 1)
    assert planned[("customer:globex", 0)].status is DeliveryStatus.SKIPPED
    assert planned[("customer:initech", 0)].status is DeliveryStatus.SKIPPED
    assert planned[("customer:acme", 0)].status is DeliveryStatus.PENDING
    assert planned[("customer:acme", 0)].payload["data"]["loop"]["customers"][0]["id"] == "acme"
    revised = _route_all("event-2", loop_insight(revision=2), _rule())
    assert [d.id for d in revised] == [d.id for d in first], "the same rows: inserting them again changes nothing"
    assert len({d.id for d in first}) == len(first)


def test_a_loop_view_is_never_an_episode_so_each_customer_is_routed() -> None:
    rule = _rule([{"type": "slack", "url": "https://hooks.slack.com/services/T/B/x"}])
    deliveries = _route_all("event-1", loop_insight(), rule)
    assert len(deliveries) == 3


def test_a_tracker_channel_acts_once_per_insight_whatever_its_revisions() -> None:
    rule = RoutedRule("r1", "file", "auth", ["jira:AUTH"], settings=[{"type": "tracker", "tracker": "jira",
                                                                       "project": "AUTH"}])
    spike = {"insight_id": INSIGHT_ID, "type": "spike", "title": "Login spike", "severity": "warning",
             "theme": "login", "window": {"from": NOW.isoformat(), "to": NOW.isoformat()}}
    ids = []
    for event_id, severity in (("e1", "warning"), ("e2", "critical")):  # an escalation is news, not a 2nd issue
        event = RoutedEvent("insight", event_id, {**spike, "severity": severity}, INSIGHT_ID)
        ids += [d.id for d in route(RoutingFacts(event=event, rules=[rule], now=NOW), first_delay=0.0,
                                    digest_grace_s=1.0, episode_gap_s=3600.0).deliveries]
    assert ids == [once_delivery_id(INSIGHT_ID, "r1", 0)] * 2


def test_a_customers_delivery_waits_out_quiet_hours_instead_of_joining_a_digest() -> None:
    quiet = QuietHours(start=time(11, 0), end=time(13, 0), timezone="UTC")
    deliveries = _route_all("event-1", loop_insight(), _rule(throttle=Throttle(limit=0, window_s=600)),
                            quiet_hours={"success": quiet})
    acme = {d.channel_index: d for d in deliveries if d.fanout_key == "customer:acme"}
    for index in (0, 1, 2):  # owner email, Zendesk note, Intercom reply
        assert acme[index].status is DeliveryStatus.PENDING and acme[index].digest_id is None
        assert acme[index].next_attempt_at == datetime(2026, 3, 2, 13, 0, 1, tzinfo=UTC)
    assert acme[3].status is DeliveryStatus.DIGESTED, "the team's Slack channel is held as usual"


def test_a_throttle_does_not_count_customer_deliveries() -> None:
    deliveries = _route_all("event-1", loop_insight(), _rule(throttle=Throttle(limit=1, window_s=600)))
    slack = [d for d in deliveries if d.channel_index == 3]
    assert [d.status for d in slack] == [DeliveryStatus.PENDING, DeliveryStatus.DIGESTED, DeliveryStatus.DIGESTED]
    assert all(d.status is DeliveryStatus.PENDING for d in deliveries if d.channel_index in (1, 2))


def test_loop_insights_without_customers_are_episodes_of_their_link() -> None:
    one, other = loop_insight(type="loop_regression"), loop_insight(type="loop_regression")
    other["loop"]["link_id"] = "link-2"
    assert episode_key(one) != episode_key(other)


def test_fanout_keys_stay_distinct_for_long_customer_ids() -> None:
    a, b = fanout_key_for("x" * 400 + "a"), fanout_key_for("x" * 400 + "b")
    assert len(a) == len(b) == 300 and a != b
    assert fanout_key_for("acme") == "customer:acme"


# -- channels: parsing, configuration, templates --------------------------------------------------------------


def test_new_channels_parse_and_round_trip() -> None:
    raw = [{"type": "email", "to": ["cs-leads@acme.com"], "to_owner": True},
           {"type": "email", "to_owner": True},
           {"type": "zendesk", "public": False, "message": "Fixed: {issue_title} ({issue_url}) in {release}"},
           {"type": "intercom", "public": True},
           {"type": "tracker", "tracker": "github", "repository": "acme/web", "labels": ["feedback"]},
           {"type": "tracker", "tracker": "jira", "project": "AUTH", "issue_type": "Bug"},
           {"type": "tracker", "tracker": "linear", "team": "ENG"}]
    channels = parse_channels(raw, POLICY)
    assert channels[1] == EmailChannel(to=(), to_owner=True)
    assert isinstance(channels[2], ReplyChannel) and channels[2].message
    assert channels[4] == TrackerChannel("github", "acme/web", ("feedback",))
    assert [channel_from_json(c.to_json()) for c in channels] == channels
    assert [c.shown_url() for c in channels] == [
        "mailto:cs-leads@acme.com,<owner>", "mailto:<owner>", "zendesk:internal-note", "intercom:public-reply",
        "github:acme/web", "jira:AUTH", "linear:ENG"]
    assert [mask_shown_url(c.shown_url()) for c in channels] == [c.shown_url() for c in channels]
    assert channels[0].to_json() == raw[0] and EmailChannel(("a@b.co",)).to_json() == {"type": "email",
                                                                                       "to": ["a@b.co"]}


@pytest.mark.parametrize(("channel", "field", "says"), [
    ({"type": "zendesk", "message": "Hi {customer_name}"}, "channels.0.message", "unknown placeholder {customer_name}"),
    ({"type": "intercom", "message": "Fixed {issue_title!r}"}, "channels.0.message", "no format or conversion"),
    ({"type": "intercom", "message": "Fixed {"}, "channels.0.message", "cannot read the template"),
    ({"type": "zendesk", "public": "yes"}, "channels.0.public", "true"),
    ({"type": "zendesk", "url": "https://x.example"}, "channels.0", "unknown key(s) ['url']"),
    ({"type": "email", "to": []}, "channels.0.to", "to_owner"),
    ({"type": "email", "to_owner": "yes"}, "channels.0.to_owner", "true or false"),
    ({"type": "tracker", "tracker": "trello"}, "channels.0.tracker", "github, jira, linear"),
    ({"type": "tracker", "tracker": "github", "repository": "acme"}, "channels.0.repository", "owner/repository"),
    ({"type": "tracker", "tracker": "jira", "project": "auth"}, "channels.0.project", "project key"),
    ({"type": "tracker", "tracker": "jira", "team": "ENG"}, "channels.0", "unknown key(s) ['team']"),
    ({"type": "tracker", "tracker": "linear", "team": "ENG", "labels": ["two words"]}, "channels.0.labels", "labels"),
])
def test_bad_channels_are_named(channel: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(RuleInvalid) as caught:
        parse_channels([channel], POLICY)
    assert any(e["field"] == field and says in e["message"] for e in caught.value.errors), caught.value.errors


def test_a_channel_of_an_unconfigured_vendor_names_the_variables_to_set() -> None:
    integrations = Integrations({"zendesk": ("NOTIFICATION_ZENDESK_URL", "NOTIFICATION_ZENDESK_TOKEN"),
                                 "jira": ("TRACKER_JIRA_TOKEN",)})
    with pytest.raises(RuleInvalid) as caught:
        parse_channels([{"type": "zendesk"}, {"type": "intercom"},
                        {"type": "tracker", "tracker": "jira", "project": "AUTH"}], POLICY, (), integrations)
    assert caught.value.errors == [
        {"field": "channels.0.type", "message": "zendesk is not configured: set NOTIFICATION_ZENDESK_URL, "
                                                "NOTIFICATION_ZENDESK_TOKEN"},
        {"field": "channels.2.tracker", "message": "jira is not configured: set TRACKER_JIRA_TOKEN"}]
    assert parse_channels([{"type": "zendesk"}], POLICY, (), ALL_CONFIGURED)


@pytest.mark.parametrize(("match", "kinds"), [
    ({"all": []}, {"feedback", "insight"}),
    ({"all": [_eq("event", "insight")]}, {"insight"}),
    ({"all": [_eq("type", "spike"), _eq("theme", "login")]}, {"insight"}),
    ({"all": [_eq("kind", "bug")]}, {"feedback"}),
    ({"any": [_eq("kind", "bug"), _eq("severity", "critical")]}, {"feedback", "insight"}),
    ({"all": [{"field": "severity", "op": "ne", "value": "info"}]}, {"feedback", "insight"}),
    ({"not": _eq("event", "feedback")}, {"feedback", "insight"}),
    ({"all": [{"field": "event", "op": "in", "value": ["insight"]}]}, {"insight"}),
])
def test_the_event_kinds_a_match_can_match(match: dict[str, Any], kinds: set[str]) -> None:
    assert kinds_matched(match) == kinds


def test_template_checks() -> None:
    assert template_problem("Fixed: {issue_title} ({issue_url}), release {release}, for {customer}. {{braces}}") \
        is None
    assert "unknown placeholder {title}" in str(template_problem("{title}"))
    assert template_problem("") == "a non-empty string"
    assert "at most" in str(template_problem("x" * 2001))


def test_reply_texts_fill_the_placeholders_and_carry_the_marker() -> None:
    acme = fan_out("insight", loop_insight())[0].data
    custom = {"type": "zendesk", "message": "{customer}: {issue_title} ({issue_url}) shipped in {release} {{ok}}"}
    assert reply_text(custom, acme) == ("acme: Login fails with SSO (https://acme.atlassian.net/browse/AUTH-7) "
                                        "shipped in 2.4.0 {ok}")
    assert reply_text({"type": "intercom", "public": True}, acme) == (
        "Good news: the problem you reported — Login fails with SSO — is fixed in release 2.4.0. "
        "Thank you for telling us.")
    note = reply_text({"type": "zendesk"}, acme)
    assert note.startswith("Feedback Loop: the issue this customer (acme) reported is fixed: Login fails with SSO in "
                           "release 2.4.0.") and note.endswith("AUTH-7")
    body = reply_html("<b>Fixed</b>\nThanks", "d-1")
    assert body == f"<p>&lt;b&gt;Fixed&lt;/b&gt;</p><p>Thanks</p><p><small>ref {marker('d-1')}</small></p>"
    assert has_marker([None, "x", body], "d-1") and not has_marker([body], "d-2")


# -- what people read ------------------------------------------------------------------------------------------


def test_the_owner_email_names_the_issue_release_customer_and_items() -> None:
    acme = fan_out("insight", loop_insight())[0].data
    payload = {"type": "insight", "rule": {"name": "tell owners", "team": "success"}, "data": acme, "event_id": "e"}
    subject, text, html = email_parts(summarize(payload, "http://dashboard.example/"))
    assert subject == "[info] Fixed: Login fails with SSO — acme asked for it"
    items = acme["loop"]["customers"][0]["items"]
    for expected in ("Issue: Login fails with SSO (jira:AUTH-7, done)", "Release: 2.4.0", "Customer: acme",
                     "Plan: enterprise", "MRR: 900", "Owner: jane@vendor.example", "Their items: 2",
                     f"Item ids: {items[0]}, {items[1]}", "The issue: https://acme.atlassian.net/browse/AUTH-7",
                     "The release: https://acme.example/releases/2.4.0", "Dashboard: http://dashboard.example/"):
        assert expected in text, (expected, text)
    assert "<a href='https://acme.atlassian.net/browse/AUTH-7'>The issue</a>" in html


def test_a_javascript_issue_link_is_never_rendered() -> None:
    data = fan_out("insight", loop_insight())[0].data
    data["loop"]["issue"]["url"] = "javascript:alert(1)"
    message = summarize({"type": "insight", "data": data}, "")
    assert message.links == [("The release", "https://acme.example/releases/2.4.0")]


def test_an_erasure_removes_the_items_from_a_loop_delivery() -> None:
    acme = fan_out("insight", loop_insight())[0].data
    erased = acme["loop"]["customers"][0]["items"][0]
    after = insight_after_erasure({"type": "insight", "data": acme}, {erased}, "req-1")
    assert after is not None
    assert erased not in after["data"]["evidence"] and erased not in after["data"]["loop"]["customers"][0]["items"]
    assert len(after["data"]["loop"]["customers"][0]["items"]) == 1


def test_an_escalated_episode_files_no_second_issue_but_tells_people_again() -> None:
    from notification.domain.noise import EpisodeMark

    rule = RoutedRule("r1", "file", "auth", ["jira:AUTH", "https://hooks.slack.com/***"],
                      settings=[{"type": "tracker", "tracker": "jira", "project": "AUTH"},
                                {"type": "slack", "url": "https://hooks.slack.com/services/T/B/x"}])
    other = {"insight_id": "another-insight", "type": "spike", "title": "Login spike", "severity": "critical",
             "theme": "login", "window": {"from": NOW.isoformat(), "to": NOW.isoformat()}}
    decision = route(RoutingFacts(event=RoutedEvent("insight", "e3", other, "another-insight"), rules=[rule], now=NOW,
                                  episodes={"r1": EpisodeMark(NOW, "warning")}),
                     first_delay=0.0, digest_grace_s=1.0, episode_gap_s=3600.0)
    assert [d.channel_index for d in decision.deliveries] == [1]
    fresh = route(RoutingFacts(event=RoutedEvent("insight", "e3", other, "another-insight"), rules=[rule], now=NOW,
                               episodes={"r1": EpisodeMark(NOW - timedelta(days=1), "warning")}),
                  first_delay=0.0, digest_grace_s=1.0, episode_gap_s=3600.0)
    assert [d.channel_index for d in fresh.deliveries] == [0, 1], "a new episode files a new issue"
