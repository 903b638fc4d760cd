"""One POST of a delivery (:func:`notification.transports._http.post`) against a real local HTTP server."""

from __future__ import annotations

from fastapi import FastAPI, Response

from feedbackloop_testing import serve_app
from notification.transports._http import post
from notification.transports.egress import guarded_client


async def test_attempts_in_a_row_share_one_connection_and_an_error_reply_is_quoted() -> None:
    """The reply is read to its end, so the connection goes back to the pool: ten attempts, one connection (one
    resolution, which the guard makes per connection). Unread replies cost a connection and a lookup each."""
    app = FastAPI()

    @app.post("/hook")
    async def hook() -> dict[str, str]:
        return {"ok": "yes"}

    @app.post("/broken")
    async def broken() -> Response:
        return Response("upstream said no " * 40, status_code=502)

    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    async with serve_app(app) as url, guarded_client(allow_private=True, timeout=5, headers={},
                                                     resolver=resolve) as client:
        outcomes = [await post(client, f"{url}/hook", "{}", {"content-type": "application/json"}, timeout=5)
                    for _ in range(10)]
        assert [(o.status, o.error) for o in outcomes] == [(200, None)] * 10
        assert lookups == ["127.0.0.1"], "one connection for ten attempts"
        failed = await post(client, f"{url}/broken", "{}", {}, timeout=5)
    assert failed.status == 502 and failed.retryable
    assert failed.error is not None and failed.error.startswith("HTTP 502: upstream said no")
    assert len(failed.error) <= len("HTTP 502: ") + 300
