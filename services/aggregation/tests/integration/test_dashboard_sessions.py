"""Dashboard sign-in: the cookie is an opaque session id mapped in aggregation's store, never the API key.

The production profile (no open loopback), a real server, broker and store. A session ends when its browser
signs out, when it expires, and when its API key is revoked; the cookie is Secure when the request came over
https through a trusted proxy (loopback, uvicorn's default) or when the setting says so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from aggregation.config import AggregationSettings
from aggregation.main import create_app
from feedbackloop.keys import KeyStore
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import query_store, serve_app, wait_for

FORM = {"content-type": "application/x-www-form-urlencoded"}


@asynccontextmanager
async def dashboard(settings: AggregationSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as browser:
        await wait_for(lambda: browser.get("/readyz"), lambda r: r.status_code == 200, what="aggregation ready")
        yield browser


def _settings(database_url: Callable[[str], str], kafka: KafkaSettings, common: CommonSettings,
              **changes: object) -> AggregationSettings:
    production = common.model_copy(update={"profile": "production"})
    return AggregationSettings(database_url=database_url("aggregation"), kafka=kafka, common=production,
                               detect_interval_seconds=3600, **changes)  # type: ignore[arg-type]


async def test_the_cookie_is_an_opaque_session_that_sign_out_revokes(
        kafka_settings: KafkaSettings, common_settings: CommonSettings, read_key: str,
        database_url: Callable[[str], str]) -> None:
    settings = _settings(database_url, kafka_settings, common_settings)
    async with dashboard(settings) as browser:
        # The plaintext key in the cookie of earlier versions opens nothing any more.
        old = await browser.get("/", headers={"cookie": f"feedbackloop_read_key={read_key}"})
        assert old.status_code == 303 and old.headers["location"] == "/login"

        signed_in = await browser.post("/login", content=f"key={read_key}", headers=FORM)
        assert signed_in.status_code == 303, signed_in.text
        cookie = signed_in.headers["set-cookie"]
        token = browser.cookies["feedbackloop_session"]
        secret = read_key.split("_")[2]
        assert secret not in cookie and read_key.split("_")[1] not in token and len(token) >= 40
        attributes = cookie.lower()
        assert "httponly" in attributes and "samesite=strict" in attributes and "max-age=43200" in attributes
        assert "secure" not in attributes, "plain http: a Secure cookie would never come back"

        page = await browser.get("/")
        assert page.status_code == 200 and 'id="themes"' in page.text and "Sign out" in page.text
        stored = await query_store(settings.database_url, "SELECT token_hash, key_id FROM dashboard_sessions")
        assert len(stored) == 1 and stored[0][0] != token and stored[0][1] == read_key.split("_")[1]

        signed_out = await browser.post("/logout")
        assert signed_out.status_code == 303 and signed_out.headers["location"] == "/login"
        assert 'feedbackloop_session=""' in signed_out.headers["set-cookie"] or \
            "max-age=0" in signed_out.headers["set-cookie"].lower()
        assert await query_store(settings.database_url, "SELECT token_hash FROM dashboard_sessions") == []
        replayed = await browser.get("/", headers={"cookie": f"feedbackloop_session={token}"})
        assert replayed.status_code == 303, "a signed-out session id opens nothing, wherever it was copied"


async def test_a_session_ends_when_it_expires_or_its_key_is_revoked(
        kafka_settings: KafkaSettings, common_settings: CommonSettings, read_key: str, keys_file: Path,
        database_url: Callable[[str], str]) -> None:
    settings = _settings(database_url, kafka_settings, common_settings, dashboard_session_hours=2 / 3600)
    async with dashboard(settings) as browser:
        await browser.post("/login", content=f"key={read_key}", headers=FORM)
        assert (await browser.get("/")).status_code == 200
        await wait_for(lambda: browser.get("/"), lambda r: r.status_code == 303, what="the session expired",
                       timeout=10, interval=0.5)

        await browser.post("/login", content=f"key={read_key}", headers=FORM)
        assert (await browser.get("/")).status_code == 200
        assert KeyStore(keys_file).revoke(read_key.split("_")[1])
        assert (await browser.get("/")).status_code == 303, "a revoked key ends its sessions"


async def test_the_cookie_is_secure_over_https_or_when_configured(
        kafka_settings: KafkaSettings, common_settings: CommonSettings, read_key: str,
        database_url: Callable[[str], str]) -> None:
    settings = _settings(database_url, kafka_settings, common_settings)
    async with dashboard(settings) as browser:  # a TLS proxy on loopback, which uvicorn trusts by default
        proxied = await browser.post("/login", content=f"key={read_key}",
                                     headers={**FORM, "x-forwarded-proto": "https"})
        assert "secure" in proxied.headers["set-cookie"].lower()
    async with dashboard(settings.model_copy(update={"dashboard_cookie_secure": True})) as browser:
        configured = await browser.post("/login", content=f"key={read_key}", headers=FORM)
        assert "secure" in configured.headers["set-cookie"].lower()
