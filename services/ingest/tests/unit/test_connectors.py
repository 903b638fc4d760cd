"""Every connector against the project's own vendor fixtures (tests/fixtures/webhooks/, written from the vendors'
documentation) and, as the ``handed_data`` tier, against the real payloads in ../shared/fixtures/webhooks/; each
signed the vendor's way in the test (with hmac/hashlib directly, not the code under test), plus forged, tampered
and stale deliveries and the vendors' published test vectors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedbackloop_testing import handed_data
from ingest.domain.connectors import CONNECTORS, ConnectorOptions, Delivery, VerificationFailed
from ingest.domain.connectors.freshdesk import AUTOMATION_TEMPLATE
from ingest.domain.connectors.slack import slack_signature
from ingest.domain.connectors.standard import standard_signature

SECRET = "s3cr3t-for-tests"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
OPTIONS = ConnectorOptions()


OWN = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"


def fixture(name: str) -> bytes:
    """One of the project's own fixtures (tests/fixtures/webhooks/)."""
    return (OWN / name).read_bytes()


def handed(name: str) -> bytes:
    """One of the real payloads handed to the project (call it inside ``handed_data`` tests only)."""
    return Path(handed_data(f"fixtures/webhooks/{name}")).read_bytes()


def _hmac(key: str | bytes, message: bytes, algo: str) -> bytes:
    return hmac.new(key.encode() if isinstance(key, str) else key, message, getattr(hashlib, algo)).digest()


def sign(
    source: str, body: bytes, *, secret: str = SECRET, sent_at: datetime = NOW, nonce: str = "n-1"
) -> dict[str, str]:
    """Headers exactly as each vendor sends them."""
    ts = str(int(sent_at.timestamp()))
    if source == "zendesk":
        iso = sent_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        sig = base64.b64encode(_hmac(secret, iso.encode() + body, "sha256")).decode()
        return {"x-zendesk-webhook-signature": sig, "x-zendesk-webhook-signature-timestamp": iso}
    if source == "intercom":
        return {"x-hub-signature": "sha1=" + _hmac(secret, body, "sha1").hex()}
    if source == "freshdesk":
        return {"authorization": "Basic " + base64.b64encode(f"freshdesk:{secret}".encode()).decode()}
    if source == "helpscout":
        return {"x-helpscout-signature": base64.b64encode(_hmac(secret, body, "sha1")).decode()}
    if source == "github":
        return {"x-hub-signature-256": "sha256=" + _hmac(secret, body, "sha256").hex()}
    if source == "jira":
        return {"x-hub-signature": "sha256=" + _hmac(secret, body, "sha256").hex()}
    if source == "linear":  # Linear's timestamp is in the body (webhookTimestamp), signed with the rest of it
        return {"linear-signature": _hmac(secret, body, "sha256").hex()}
    if source == "typeform":
        return {"typeform-signature": "sha256=" + base64.b64encode(_hmac(secret, body, "sha256")).decode()}
    if source == "delighted":
        return {"x-delighted-webhook-signature": "sha256=" + _hmac(secret, body, "sha256").hex()}
    if source == "canny":
        sig = base64.b64encode(_hmac(secret, nonce.encode(), "sha256")).decode()
        return {"canny-nonce": nonce, "canny-signature": sig, "canny-timestamp": str(int(sent_at.timestamp() * 1000))}
    if source == "slack":
        sig = "v0=" + _hmac(secret, f"v0:{ts}:".encode() + body, "sha256").hex()
        return {"x-slack-signature": sig, "x-slack-request-timestamp": ts}
    if source == "standard":
        key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
        sig = base64.b64encode(_hmac(key, f"msg_1.{ts}.".encode() + body, "sha256")).decode()
        return {"webhook-id": "msg_1", "webhook-timestamp": ts, "webhook-signature": f"v1,{sig}"}
    raise AssertionError(source)


# (fixture, source, extra headers, expected: None = ignored, else (external_id part, text fragment, channel))
CASES = [
    ("zendesk/ticket_created.json", "zendesk", {}, ("48213", "CSV export of our invoices stops at 1,000", "ticket")),
    ("zendesk/ticket_comment_added.json", "zendesk", {}, ("48213:comment:31000000000555", "same limit", "ticket")),
    ("zendesk/private_comment_added.json", "zendesk", {}, None),
    ("zendesk/trigger_ticket.json", "zendesk", {}, ("48250", "SMS codes for two-factor login", "ticket")),
    ("intercom/conversation_user_created.json", "intercom", {}, ("2418", "logs me out", "chat")),
    ("intercom/conversation_user_replied.json", "intercom", {}, ("2418:part:9002", "Pixel 8", "chat")),
    ("intercom/conversation_admin_replied.json", "intercom", {}, None),
    ("intercom/ticket_created.json", "intercom", {}, ("ticket:77", "charged twice", "ticket")),
    ("freshdesk/ticket_created.json", "freshdesk", {}, ("5120", "spinner since Monday", "ticket")),
    ("freshdesk/public_reply.json", "freshdesk", {}, ("5120:comment:", "clearing the cache", "ticket")),
    ("freshdesk/private_note.json", "freshdesk", {}, None),
    ("helpscout/convo_created.json", "helpscout", {"x-helpscout-event": "convo.created"},
     ("2931845", "shows up twice", "email")),
    ("helpscout/satisfaction_rating.json", "helpscout", {"x-helpscout-event": "satisfaction.ratings"},
     ("rating:5501", "four days", "survey")),
    ("github/issues.opened.json", "github", {"x-github-event": "issues"},
     ("acme-oss/widgets:issue:2790011223", "weeks starting on Sunday", "community")),
    ("github/issues.closed.json", "github", {"x-github-event": "issues"}, None),
    ("github/issue_comment.created.json", "github", {"x-github-event": "issue_comment"}, None),
    ("github/discussion.created.json", "github", {"x-github-event": "discussion"},
     ("acme-oss/widgets:discussion:7300123", "dark theme", "community")),
    ("typeform/form_response.json", "typeform", {}, ("a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6", "Search is slow", "survey")),
    ("delighted/survey_response_created.json", "delighted", {}, ("61239845", "doubled our bill", "survey")),
    ("canny/post_created.json", "canny", {}, ("post:6790a1b2c3d4e5f6a7b8c9d0", "export a board to CSV", "community")),
    ("canny/comment_created.json", "canny", {}, ("comment:6790b2c3d4e5f6a7b8c9d0e1", "custom fields", "community")),
    ("canny/vote_created.json", "canny", {}, None),
    ("slack/message.json", "slack", {}, ("T07ACME01:C07FEEDBK:1767610203.000100", "onboarding checklist", "chat")),
    ("slack/thread_reply.json", "slack", {}, ("T07ACME01:C07FEEDBK:1767610500.000200", "progress bar", "chat")),
    ("slack/bot_message.json", "slack", {}, None),
    ("standard/feedback_items.json", "standard", {}, ("resp-1001", "Apple Pay", "survey")),
    ("jira/issue_updated.json", "jira", {}, None),
    ("linear/issue_updated.json", "linear", {}, None),
]
ITEMS = {"standard/feedback_items.json": 2}  # items a fixture holds, when not one
# The tracker changes a fixture tells (issue key, status); every other own fixture tells none.
CHANGES = {
    "github/issues.opened.json": ("github:acme-oss/widgets#311", "open"),
    "github/issues.closed.json": ("github:acme-oss/widgets#311", "done"),
    "jira/issue_updated.json": ("jira:AUTH-7", "done"),
    "linear/issue_updated.json": ("linear:ENG-12", "done"),
}
# The support-tool conversation each item of a fixture carries (source, id); every other own fixture's carry none.
CONVERSATIONS = {
    "zendesk/ticket_created.json": ("zendesk", "48213"),
    "zendesk/ticket_comment_added.json": ("zendesk", "48213"),
    "zendesk/trigger_ticket.json": ("zendesk", "48250"),
    "intercom/conversation_user_created.json": ("intercom", "2418"),
    "intercom/conversation_user_replied.json": ("intercom", "2418"),
    "intercom/ticket_created.json": ("intercom", "77"),
}

# The real payloads handed to the project (../shared/fixtures/webhooks/): the handed_data tier.
HANDED_CASES = [
    ("zendesk/ticket_created.json", "zendesk", {}, ("5158", "login issues with the mobile app", "ticket")),
    (
        "zendesk/zulip_ticket_create_update.json",
        "zendesk",
        {},
        ("7", "I am writing this to create a ticket.", "ticket"),
    ),
    ("intercom/conversation_user_created.json", "intercom", {}, ("", "", "chat")),
    ("intercom/conversation_admin_replied.json", "intercom", {}, None),
    ("intercom/ticket_created.json", "intercom", {}, ("ticket:", "", "ticket")),
    ("freshdesk/ticket_created.json", "freshdesk", {}, ("11", "Test ticket description ☃.", "ticket")),
    ("freshdesk/public_note.json", "freshdesk", {}, None),
    ("freshdesk/private_note.json", "freshdesk", {}, None),
    (
        "helpscout/conversation_php_sdk.json",
        "helpscout",
        {"x-helpscout-event": "convo.created"},
        ("123", "hard time", "email"),
    ),
    ("github/issues.opened.payload.json", "github", {"x-github-event": "issues"}, (":issue:", "", "community")),
    (
        "github/issues.opened.with-empty-body.payload.json",
        "github",
        {"x-github-event": "issues"},
        (":issue:", "", "community"),
    ),
    ("github/issue_comment.created.payload.json", "github", {"x-github-event": "issue_comment"}, None),
    (
        "github/discussion.created.payload.json",
        "github",
        {"x-github-event": "discussion"},
        (":discussion:", "", "community"),
    ),
    ("typeform/form_response.json", "typeform", {}, ("", "It's cold right now!", "survey")),
    ("delighted/survey_response_updated_promoter.json", "delighted", {}, ("5435", "fast and flawless", "survey")),
    ("canny/post_created.json", "canny", {}, ("post:62e26a7e1d4ea13c124337bd", "Array of images", "community")),
    ("canny/comment_created.json", "canny", {}, None),
    ("canny/vote_created.json", "canny", {}, None),
    ("slack/message_with_normal_text.json", "slack", {}, ("", "", "chat")),
    (
        "slack/message_thread_reply.json",
        "slack",
        {},
        ("T0GFJL5J7:C03CDQTPI65:1709441309.308399", "pricing of product X", "chat"),
    ),
]


def _verify_and_map(
    body: bytes, source: str, extra: dict[str, str], expected: tuple[str, str, str] | None, items: int = 1,
    name: str | None = None,
) -> None:
    """Verify and map; ``name`` (an own fixture's) also checks its tracker changes and conversations."""
    connector = CONNECTORS[source]
    delivery = Delivery({**sign(source, body), **extra}, body, received_at=NOW + timedelta(seconds=3))
    connector.verify(delivery, SECRET, OPTIONS)
    outcome = connector.map(json.loads(body), delivery, OPTIONS)
    if name is not None:
        changes = [(c.issue_key, c.status) for c in outcome.changes]
        assert changes == ([CHANGES[name]] if name in CHANGES else []), outcome
        conversation = CONVERSATIONS.get(name)
        assert all((i.conversation.source, i.conversation.id) == conversation if i.conversation else conversation
                   is None for i in outcome.items), outcome
    if expected is None:
        assert not outcome.items and (outcome.ignored or outcome.changes), outcome
        return
    assert outcome.ignored is None and len(outcome.items) == items, outcome
    item = outcome.items[0]
    ext, fragment, channel = expected
    assert ext in item.external_id and fragment in item.text and item.channel == channel
    assert (item.source == source or source == "standard") and item.text.strip()
    assert "<div>" not in item.text and "<p>" not in item.text


@pytest.mark.parametrize(("name", "source", "extra", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_fixture_verifies_and_maps(
    name: str, source: str, extra: dict[str, str], expected: tuple[str, str, str] | None
) -> None:
    _verify_and_map(fixture(name), source, extra, expected, ITEMS.get(name, 1), name=name)


@pytest.mark.handed_data
@pytest.mark.parametrize(("name", "source", "extra", "expected"), HANDED_CASES, ids=[c[0] for c in HANDED_CASES])
def test_each_handed_payload_verifies_and_maps(
    name: str, source: str, extra: dict[str, str], expected: tuple[str, str, str] | None
) -> None:
    _verify_and_map(handed(name), source, extra, expected)


def test_every_connector_has_fixtures_of_its_own() -> None:
    assert {c[1] for c in CASES} == set(CONNECTORS)
    assert {p.parent.name for p in OWN.glob("*/*.json")} == set(CONNECTORS)
    assert sorted(str(p.relative_to(OWN)) for p in OWN.glob("*/*.json")) == sorted(c[0] for c in CASES)


@pytest.mark.parametrize("source", sorted({c[1] for c in CASES}))
def test_forged_tampered_and_stale_deliveries_fail_a_named_check(source: str) -> None:
    connector = CONNECTORS[source]
    name = next(c[0] for c in CASES if c[1] == source)
    body = fixture(name)
    with pytest.raises(VerificationFailed) as forged:
        connector.verify(Delivery(sign(source, body, secret="not-the-secret"), body, received_at=NOW), SECRET, OPTIONS)
    assert forged.value.check in ("signature", "token") and SECRET not in forged.value.detail
    tampered = body.replace(b"e", b"E", 1)
    # Freshdesk sends no signature at all (a token) and Canny signs only its nonce: the body is not theirs to prove.
    if source not in ("freshdesk", "canny"):
        with pytest.raises(VerificationFailed) as changed:
            connector.verify(Delivery(sign(source, body), tampered, received_at=NOW), SECRET, OPTIONS)
        assert changed.value.check == "signature"
    if source == "canny":
        headers = {**sign(source, body), "canny-nonce": "another"}
        with pytest.raises(VerificationFailed) as renonced:
            connector.verify(Delivery(headers, body, received_at=NOW), SECRET, OPTIONS)
        assert renonced.value.check == "signature"
    with pytest.raises(VerificationFailed) as missing:
        connector.verify(Delivery({}, body, received_at=NOW), SECRET, OPTIONS)
    assert missing.value.check in ("signature", "timestamp", "token", "nonce")
    if source in ("zendesk", "canny", "slack", "standard"):
        stale = Delivery(sign(source, body, sent_at=NOW - timedelta(minutes=6)), body, received_at=NOW)
        with pytest.raises(VerificationFailed) as old:
            connector.verify(stale, SECRET, OPTIONS)
        assert old.value.check == "timestamp"
    if source == "linear":  # its timestamp is the body's: a delivery arriving 6 minutes after it was sent
        stale = Delivery(sign(source, body), body, received_at=NOW + timedelta(minutes=6))
        with pytest.raises(VerificationFailed) as old:
            connector.verify(stale, SECRET, OPTIONS)
        assert old.value.check == "timestamp" and "webhookTimestamp" in old.value.detail


def test_unknown_event_types_are_ignored_with_a_reason() -> None:
    body = fixture("github/issues.opened.json")
    outcome = CONNECTORS["github"].map(json.loads(body), Delivery({"x-github-event": "star"}, body), OPTIONS)
    assert outcome.ignored and "star" in outcome.ignored and not outcome.items
    for source in ("zendesk", "intercom", "typeform", "delighted", "canny", "slack"):
        assert CONNECTORS[source].map({"type": "nope", "topic": "nope"}, Delivery({}, b"{}"), OPTIONS).ignored


def test_handshakes_are_answered() -> None:
    slack = CONNECTORS["slack"].map({"type": "url_verification", "challenge": "abc"}, Delivery({}, b""), OPTIONS)
    assert slack.reply == {"challenge": "abc"}
    assert CONNECTORS["intercom"].map({"topic": "ping"}, Delivery({}, b""), OPTIONS).reply
    assert CONNECTORS["github"].map({"zen": "hi"}, Delivery({"x-github-event": "ping"}, b""), OPTIONS).reply


def test_github_allow_list_and_slack_channels() -> None:
    body = fixture("github/issues.opened.json")
    delivery = Delivery({"x-github-event": "issues"}, body)
    only = ConnectorOptions(github_repositories=frozenset({"someone/else"}))
    elsewhere = CONNECTORS["github"].map(json.loads(body), delivery, only)
    # the allow-list governs feedback only: the issue's change is taken from any repository
    assert not elsewhere.items and [c.issue_key for c in elsewhere.changes] == ["github:acme-oss/widgets#311"]
    discussion = fixture("github/discussion.created.json")
    ignored = CONNECTORS["github"].map(json.loads(discussion), Delivery({"x-github-event": "discussion"}, b""), only)
    assert "INGEST_GITHUB_REPOSITORIES" in (ignored.ignored or "") and not ignored.changes
    allowed = ConnectorOptions(github_repositories=frozenset({"ACME-OSS/Widgets"}))  # compared without case
    assert CONNECTORS["github"].map(json.loads(body), delivery, allowed).items
    slack_body = json.loads(fixture("slack/thread_reply.json"))
    assert (
        CONNECTORS["slack"]
        .map(slack_body, Delivery({}, b""), ConnectorOptions(slack_channels=frozenset({"C1"})))
        .ignored
    )
    taken = ConnectorOptions(slack_channels=frozenset({"C07FEEDBK"}))
    item = CONNECTORS["slack"].map(slack_body, Delivery({}, b""), taken)
    assert item.items[0].tags == ["slack-channel:C07FEEDBK", "thread-reply"]


def test_typeform_takes_text_rating_and_hidden_fields() -> None:
    item = (
        CONNECTORS["typeform"]
        .map(json.loads(fixture("typeform/form_response.json")), Delivery({}, b""), OPTIONS)
        .items[0]
    )
    assert item.rating is not None and (item.rating.kind, item.rating.value, item.rating.scale) == ("csat", 6, 11)
    assert item.author is not None and item.author.id == "u-88231" and item.author.email == "noor@example.com"
    assert item.customer is not None and (item.customer.id, item.customer.plan) == ("acct-5521", "business")
    assert "Noor" not in item.text  # the first-name answer is not the feedback
    assert item.subject == "Quarterly product survey" and item.tags == ["form:Qx7Lm2"]


@pytest.mark.handed_data
def test_typeform_documented_example_takes_text_rating_and_hidden_fields() -> None:
    item = (
        CONNECTORS["typeform"]
        .map(json.loads(handed("typeform/form_response.json")), Delivery({}, b""), OPTIONS)
        .items[0]
    )
    assert item.rating is not None and item.rating.kind == "csat" and item.rating.value == 2
    assert item.author is not None and item.author.id == "abc123456" and item.author.email == "laura@example.com"
    assert "Laura" not in item.text


def test_delighted_score_is_nps_and_the_company_the_customer() -> None:
    item = (
        CONNECTORS["delighted"]
        .map(json.loads(fixture("delighted/survey_response_created.json")), Delivery({}, b""), OPTIONS)
        .items[0]
    )
    assert item.rating is not None and (item.rating.kind, item.rating.value, item.rating.scale) == ("nps", 3, 10)
    assert item.customer is not None and (item.customer.id, item.customer.name) == ("cust-3304", "Adeyemi Foods")


@pytest.mark.handed_data
def test_delighted_real_payload_score_is_nps() -> None:
    item = (
        CONNECTORS["delighted"]
        .map(json.loads(handed("delighted/survey_response_updated_promoter.json")), Delivery({}, b""), OPTIONS)
        .items[0]
    )
    assert item.rating is not None and (item.rating.kind, item.rating.value, item.rating.scale) == ("nps", 9, 10)


def test_help_scout_rating_and_zendesk_trigger_byline() -> None:
    rating = CONNECTORS["helpscout"].map(
        json.loads(fixture("helpscout/satisfaction_rating.json")),
        Delivery({"x-helpscout-event": "satisfaction.ratings"}, b""), OPTIONS,
    ).items[0]
    assert rating.rating is not None
    assert (rating.rating.kind, rating.rating.value, rating.rating.scale) == ("csat", 1, 3)
    ticket = CONNECTORS["zendesk"].map(json.loads(fixture("zendesk/trigger_ticket.json")), Delivery({}, b""), OPTIONS)
    assert ticket.items[0].text.startswith("The SMS codes"), "the rule and the byline are not the customer's words"


def test_freshdesk_token_in_the_url_and_the_template() -> None:
    body = fixture("freshdesk/ticket_created.json")
    CONNECTORS["freshdesk"].verify(Delivery({}, body, query={"token": SECRET}), SECRET, OPTIONS)
    assert set(json.loads(body)["freshdesk_webhook"]) <= set(AUTOMATION_TEMPLATE["freshdesk_webhook"])


@pytest.mark.handed_data
def test_freshdesk_real_payload_fits_the_template() -> None:
    assert set(json.loads(handed("freshdesk/ticket_created.json"))["freshdesk_webhook"]) <= set(
        AUTOMATION_TEMPLATE["freshdesk_webhook"]
    )


# The vendors' published test vectors.


def test_github_documented_vector() -> None:
    headers = {"x-hub-signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
    CONNECTORS["github"].verify(Delivery(headers, b"Hello, World!"), "It's a Secret to Everybody", OPTIONS)
    with pytest.raises(VerificationFailed):
        CONNECTORS["github"].verify(Delivery(headers, b"Hello, World?"), "It's a Secret to Everybody", OPTIONS)


SLACK_DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)


def test_slack_documented_vector() -> None:
    secret, ts = "8f742231b10e8888abcd99yyyzzz85a5", "1531420618"
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert slack_signature(secret, ts, SLACK_DOC_BODY) == expected
    headers = {"x-slack-signature": expected, "x-slack-request-timestamp": ts}
    at = datetime.fromtimestamp(1531420618 + 60, UTC)
    CONNECTORS["slack"].verify(Delivery(headers, SLACK_DOC_BODY, received_at=at), secret, OPTIONS)
    with pytest.raises(VerificationFailed) as stale:
        CONNECTORS["slack"].verify(
            Delivery(headers, SLACK_DOC_BODY, received_at=at + timedelta(minutes=5)), secret, OPTIONS
        )
    assert stale.value.check == "timestamp"


def test_standard_webhooks_spec_vector() -> None:
    secret, msg_id, ts, body = (
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        b'{"test": 2432232314}',
    )
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert standard_signature(secret, msg_id, ts, body) == expected
    headers = {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": f"v1,bm90IGl0 {expected}"}
    CONNECTORS["standard"].verify(
        Delivery(headers, body, received_at=datetime.fromtimestamp(1614265330, UTC)), secret, OPTIONS
    )


@pytest.mark.handed_data
def test_help_scout_sdk_example() -> None:
    """Help Scout publishes no fixed vector; its own PHP SDK test signs this payload with secret 'asdffdsa'."""
    body = handed("helpscout/conversation_php_sdk.json")
    signature = base64.b64encode(hmac.new(b"asdffdsa", body, hashlib.sha1).digest()).decode()
    CONNECTORS["helpscout"].verify(Delivery({"x-helpscout-signature": signature}, body), "asdffdsa", OPTIONS)
    outcome = CONNECTORS["helpscout"].map(json.loads(body), Delivery({"x-helpscout-event": "convo"}, body), OPTIONS)
    assert outcome.items[0].external_id == "123"


def test_slack_and_standard_webhooks_failures_name_their_header() -> None:
    body = fixture("slack/message.json")
    headers = sign("slack", body)
    cases = {
        "x-slack-request-timestamp": {"x-slack-signature": headers["x-slack-signature"]},
        "x-slack-signature": {"x-slack-request-timestamp": headers["x-slack-request-timestamp"]},
    }
    for header, partial in cases.items():
        with pytest.raises(VerificationFailed) as missing:
            CONNECTORS["slack"].verify(Delivery(partial, body, received_at=NOW), SECRET, OPTIONS)
        assert f"`{header}`" in missing.value.detail
    body = fixture("standard/feedback_items.json")
    signed = sign("standard", body)
    for header, check in (("webhook-id", "signature"), ("webhook-timestamp", "timestamp"),
                          ("webhook-signature", "signature")):
        partial = {k: v for k, v in signed.items() if k != header}
        with pytest.raises(VerificationFailed) as missing:
            CONNECTORS["standard"].verify(Delivery(partial, body, received_at=NOW), SECRET, OPTIONS)
        assert missing.value.check == check and f"`{header}`" in missing.value.detail


def test_a_wider_window_is_honoured_and_a_body_that_is_not_utf8_is_no_slack_request() -> None:
    body = fixture("slack/message.json")
    late = Delivery(sign("slack", body, sent_at=NOW - timedelta(minutes=8)), body, received_at=NOW)
    CONNECTORS["slack"].verify(late, SECRET, ConnectorOptions(tolerance=timedelta(minutes=10)))
    garbled = b'{"type": "event_callback", "x": "\xff"}'
    with pytest.raises(VerificationFailed) as bad:
        CONNECTORS["slack"].verify(Delivery(sign("slack", garbled), garbled, received_at=NOW), SECRET, OPTIONS)
    assert bad.value.check == "signature"


def test_standard_webhooks_keys_whsec_base64_unpadded_and_raw() -> None:
    body = fixture("standard/feedback_items.json")
    for secret in ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "a-raw-shared-secret"):
        CONNECTORS["standard"].verify(Delivery(sign("standard", body, secret=secret), body, received_at=NOW), secret,
                                      OPTIONS)


def test_typeform_answers_of_the_wrong_type_are_skipped_not_a_crash() -> None:
    """Found by the fuzz test: a short_text answer holding the number 0 raised AttributeError."""
    payload = json.loads(fixture("typeform/form_response.json"))
    payload["form_response"]["answers"][2]["text"] = 0
    payload["form_response"]["answers"][3]["email"] = 7
    item = CONNECTORS["typeform"].map(payload, Delivery({}, b""), OPTIONS).items[0]
    assert item.text.startswith("Search is slow") and item.author is not None and item.author.email is None
