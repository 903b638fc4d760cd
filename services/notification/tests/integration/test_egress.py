"""The send-time SSRF check: a public-looking name that resolves to a private address is refused; the address
that was checked is the one connected to. A real local HTTP server; the DNS answer is injected (no DNS here)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from fastapi import FastAPI

from feedbackloop_testing import serve_app
from notification.transports.egress import TargetRefused, guarded_client


async def _resolves_to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


async def test_a_name_resolving_to_a_private_address_is_refused_at_send_time() -> None:
    app = FastAPI()

    @app.post("/hook")
    async def hook() -> dict[str, str]:
        return {"ok": "yes"}

    async with serve_app(app) as url:
        port = url.rsplit(":", 1)[1]
        target = f"http://hooks.example.com:{port}/hook"
        async with guarded_client(allow_private=False, timeout=5, headers={},
                                  resolver=_resolves_to_loopback) as client:
            with pytest.raises(TargetRefused, match=r"hooks\.example\.com resolves to 127\.0\.0\.1"):
                await client.post(target)
        # The same resolver with private targets allowed (the embedded profile) reaches the real server.
        async with guarded_client(allow_private=True, timeout=5, headers={}) as client:
            assert (await client.post(f"{url}/hook")).json() == {"ok": "yes"}


async def test_the_embedded_profile_checks_every_target_too_and_allows_only_loopback_besides_public() -> None:
    """With private targets allowed (the embedded profile) the sender still resolves and checks: loopback is
    reached, a name resolving to link-local metadata is refused before any connection is made."""
    app = FastAPI()
    hits: list[str] = []

    @app.post("/hook")
    async def hook() -> dict[str, str]:
        hits.append("hook")
        return {"ok": "yes"}

    looked_up: list[str] = []

    def resolving_to(address: str) -> Callable[[str, int], Awaitable[list[str]]]:
        async def resolve(host: str, port: int) -> list[str]:
            looked_up.append(host)
            return [address]

        return resolve

    async with serve_app(app) as url:
        async with guarded_client(allow_private=True, timeout=5, headers={},
                                  resolver=resolving_to("169.254.169.254")) as client:
            with pytest.raises(TargetRefused, match=r"127\.0\.0\.1 resolves to 169\.254\.169\.254"):
                await client.post(f"{url}/hook")
        assert looked_up == ["127.0.0.1"] and hits == [], "checked, and refused before connecting"
        async with guarded_client(allow_private=True, timeout=5, headers={},
                                  resolver=resolving_to("127.0.0.1")) as client:
            assert (await client.post(f"{url}/hook")).json() == {"ok": "yes"}
        assert hits == ["hook"]
