"""The send-time SSRF check: a public-looking name that resolves to a private address is refused; the address
that was checked is the one connected to. A real local HTTP server; the DNS answer is injected (no DNS here)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from feedbackloop.testing import serve_app
from notification.egress import TargetRefused, guarded_client


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
