"""No secret in ingest's log, in either format, whatever fails: a real server, real store and broker, real logging.

Before: one unauthenticated ``Authorization: Basic \\xe9`` to the Freshdesk webhook was a 500 whose console
traceback (with every frame's local variables) printed the signing secrets, the request and the API keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from fastapi import APIRouter, Request

from feedbackloop.logs import get_logger
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import captured_logs, serve_app
from ingest.config import IngestSettings
from ingest.main import create_app

FRESHDESK_SECRET = "fd-basic-password-9Xq2"  # no known shape: masked because it is a configured SecretStr
SLACK_SECRET = "slack-signing-secret-4Kw7"
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY_MARKER = "customer-wrote-this-3Pz8"


def _boom_router() -> APIRouter:
    """A route that fails the way a bug would, holding the request, its key and a secret in its locals."""
    router = APIRouter()
    log = get_logger("ingest.tests.boom")

    @router.post("/v1/boom")
    async def boom(request: Request) -> None:
        body = await request.body()
        authorization = request.headers["authorization"]
        secret = STANDARD_SECRET
        log.warning("calling upstream", authorization=authorization, url=f"https://example.com/hook?token={secret}")
        raise RuntimeError(f"upstream refused Authorization: {authorization} ({len(body)} bytes)")

    return router


@pytest.mark.parametrize("fmt", ["console", "json"])
async def test_errors_are_logged_without_locals_or_secrets(
    fmt: str, kafka_settings: KafkaSettings, common_settings: CommonSettings,
    database_url: Callable[[str], str], admin_key: str,
) -> None:
    settings = IngestSettings(
        database_url=database_url("ingest"), kafka=kafka_settings, common=common_settings,
        freshdesk_secret=FRESHDESK_SECRET, slack_secret=SLACK_SECRET, standard_secret=STANDARD_SECRET,
    )
    app = create_app(settings)
    app.include_router(_boom_router())
    with captured_logs("ingest", fmt=fmt) as output:
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
            non_ascii = await client.post("/v1/webhooks/freshdesk", content=b"{}",
                                          headers=[(b"authorization", b"Basic \xe9")])
            wrong_password = await client.post("/v1/webhooks/freshdesk", content=b"{}",
                                               headers={"authorization": "Basic dXNlcjp3cm9uZw=="})
            crash = await client.post("/v1/boom", content=json.dumps({"note": BODY_MARKER, "secret": SLACK_SECRET}),
                                      headers={"authorization": f"Bearer {admin_key}"})
            bad_key = await client.post("/v1/feedback", content=b"{}",
                                        headers={"authorization": f"Bearer {admin_key[:-4]}xxxx"})
    text = output.getvalue()

    assert non_ascii.status_code == 401, non_ascii.text
    assert non_ascii.headers["content-type"] == "application/problem+json"
    assert non_ascii.json()["check"] == "token" and "base64" in non_ascii.json()["detail"]
    assert wrong_password.status_code == 401 and wrong_password.json()["check"] == "token"
    assert crash.status_code == 500 and bad_key.status_code == 401
    # the crash is logged, with its traceback
    assert "unhandled error" in text and "RuntimeError: upstream refused" in text and "in boom" in text
    assert "calling upstream" in text
    for secret in (FRESHDESK_SECRET, SLACK_SECRET, STANDARD_SECRET, STANDARD_SECRET.removeprefix("whsec_"),
                   admin_key, admin_key.rpartition("_")[2], BODY_MARKER):
        assert secret not in text, f"{secret[:8]}… is in the {fmt} log"
    for local in ("─ locals ─", "body = ", "authorization = ", "secret = ", "scope = "):
        assert local not in text, f"a local variable ({local!r}) is rendered in the {fmt} log"
    assert len(text) < 20_000, f"{len(text)} characters of log for four requests"
    if fmt == "json":
        assert all(json.loads(line) for line in text.splitlines())
