"""No secret in any log line: plain tracebacks without locals, and the redacting processor, in both formats."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from feedbackloop.logs import REDACTED, get_logger, redact_secrets, redact_text, register_secrets, secret_values
from feedbackloop_testing import captured_logs

API_KEY = "flk_0123456789ab_S3cr3tP4rtOfTheKeyxxxxxxxxxxxxxxxxxxxx"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CONFIGURED = "configured-signing-secret-7Hq2"  # no known shape: masked because it was registered


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Authorization: Bearer {API_KEY}", f"Authorization: {REDACTED}"),
        ("authorization: Basic \xe9", f"authorization: {REDACTED}"),
        ("sent Basic dXNlcjpwYXNz to the vendor", f"sent Basic {REDACTED} to the vendor"),
        (f"key {API_KEY} revoked", f"key {REDACTED} revoked"),
        (f"secret {WEBHOOK_SECRET}.", f"secret {REDACTED}."),
        ("GET /hook?token=abc123&page=2", f"GET /hook?token={REDACTED}&page=2"),
        ("{'smtp_password': 'hunter2', 'host': 'mx'}", f"{{'smtp_password': '{REDACTED}', 'host': 'mx'}}"),
        ('{"api_key": "k-1", "x-signature": b"sha256=ab"}',
         f'{{"api_key": "{REDACTED}", "x-signature": b"{REDACTED}"}}'),
        ("signature mismatch for source=zendesk check=token", "signature mismatch for source=zendesk check=token"),
    ],
)
def test_redact_text_masks_secret_shapes_and_leaves_the_rest(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_redact_secrets_masks_fields_named_like_secrets_whatever_their_value() -> None:
    event = {
        "event": f"calling with {API_KEY}",
        "authorization": "anything at all",
        "headers": {"X-Api-Key": "k", "accept": "json"},
        "channels": [{"type": "webhook", "secret": "plain-string-secret"}],
        "token": None,
        "attempt": 3,
        "payload": ("a", WEBHOOK_SECRET),
    }
    assert redact_secrets(None, "info", event) == {
        "event": f"calling with {REDACTED}",
        "authorization": REDACTED,
        "headers": {"X-Api-Key": REDACTED, "accept": "json"},
        "channels": [{"type": "webhook", "secret": REDACTED}],
        "token": None,
        "attempt": 3,
        "payload": ["a", REDACTED],
    }


def test_secret_values_finds_secret_settings_nested_or_not() -> None:
    class Inner(BaseSettings):
        password: SecretStr = SecretStr("inner-password-1")

    class Outer(BaseSettings):
        secret: SecretStr | None = SecretStr("outer-secret-22")
        unset: SecretStr | None = None
        name: str = "not a secret"
        inner: Inner = Inner()

    assert secret_values(Outer()) == ["outer-secret-22", "inner-password-1"]


def _fail_holding_secrets() -> None:
    api_key = API_KEY  # locals a rich traceback would print
    channel = {"url": "https://example.com/hook", "secret": WEBHOOK_SECRET}
    body = b'{"note": "' + CONFIGURED.encode() + b'"}'
    raise RuntimeError(f"upstream refused Authorization: Bearer {api_key} for {channel['url']} ({len(body)} bytes)")


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_log_output_has_plain_tracebacks_and_no_secret(fmt: str) -> None:
    register_secrets([CONFIGURED])
    log = get_logger("feedbackloop.tests.logs")
    with captured_logs("test", fmt=fmt) as output:
        try:
            _fail_holding_secrets()
        except RuntimeError:
            log.exception("unhandled error", path="/v1/boom", authorization=f"Bearer {API_KEY}")
            # a foreign record (uvicorn's own) with the traceback and a secret in its message
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application: %s", CONFIGURED)
        log.warning("delivery failed", url=f"https://example.com/hook?token={CONFIGURED}", secret=WEBHOOK_SECRET)
    text = output.getvalue()
    assert "RuntimeError: upstream refused" in text and "_fail_holding_secrets" in text
    assert text.count("Traceback (most recent call last)") == 2
    for secret in (API_KEY, API_KEY[20:], WEBHOOK_SECRET, WEBHOOK_SECRET[6:], CONFIGURED):
        assert secret not in text
    for local in ("─ locals ─", "api_key = ", "channel = ", "body = "):  # rich: "╭─ locals ─╮", "name = value"
        assert local not in text
    if fmt == "json":
        lines = [json.loads(line) for line in text.splitlines()]
        assert lines[0]["event"] == "unhandled error"
        assert lines[0]["authorization"] == REDACTED and "exception" in lines[0]
