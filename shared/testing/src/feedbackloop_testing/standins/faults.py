"""Fault injection and the request log, as ASGI middleware in front of every vendor router.

``status`` faults answer the vendor's error shape with the status (and ``Retry-After``; GitHub also gets its
``x-ratelimit-*`` headers on 429/403); ``down`` faults start an answer and drop the connection, so the client sees
a protocol error as when a server dies mid-request; ``lose_answer`` faults are taken by the write handlers
themselves (they must perform the write first).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feedbackloop_testing.standins.state import VENDORS, Fault, State, iso_now

__all__ = ["DropConnection", "FaultMiddleware", "QuietDrops", "fault_response"]

LOGGED_BODY = 4000


class DropConnection(Exception):
    """Raised after the answer started: the server closes the connection with no complete answer."""


class QuietDrops(logging.Filter):
    """Keeps the server's log free of the tracebacks of connections dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DropConnection))


def fault_response(fault: Fault) -> JSONResponse:
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = f"{fault.retry_after:g}"
    status = fault.status
    body: Any
    if fault.vendor == "github":
        if status in (403, 429):
            headers |= {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0",
                        "x-ratelimit-reset": str(int(time.time() + (fault.retry_after or 60)))}
        body = {"message": "API rate limit exceeded" if status in (403, 429) else "Server Error",
                "documentation_url": "https://docs.github.com/rest", "status": str(status)}
    elif fault.vendor == "jira":
        body = {"errorMessages": ["Rate limit exceeded." if status == 429 else f"Stand-in answered {status}."],
                "errors": {}}
    elif fault.vendor == "linear":
        code = "RATELIMITED" if status == 429 else "INTERNAL_SERVER_ERROR"
        body = {"errors": [{"message": "Rate limit exceeded" if status == 429 else "Internal server error",
                            "extensions": {"code": code, "type": code.lower()}}]}
    elif fault.vendor == "zendesk":
        body = {"error": "TooManyRequests" if status == 429 else "ServiceUnavailable",
                "description": f"Stand-in answered {status}"}
    else:
        body = {"type": "error.list", "errors": [{"code": "rate_limit_exceeded" if status == 429 else "server_error",
                                                  "message": f"Stand-in answered {status}"}]}
    return JSONResponse(body, status_code=status, headers=headers)


class FaultMiddleware:
    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        vendor = path.split("/", 2)[1] if scope["type"] == "http" and path.count("/") >= 1 else ""
        if vendor not in VENDORS:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        entry: dict[str, Any] = {"method": method, "path": path, "query": scope.get("query_string", b"").decode(),
                                 "at": iso_now(), "status": None, "body": ""}
        chunks: list[bytes] = []

        async def logged_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        try:
            fault = self.state.take_fault(vendor, ("status", "down"), method, path)
            if fault is not None and fault.kind == "down":
                entry["status"] = "dropped"
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
                await send({"type": "http.response.body", "body": b"{", "more_body": True})
                raise DropConnection
            if fault is not None:
                await fault_response(fault)(scope, logged_receive, logged_send)
            else:
                await self.app(scope, logged_receive, logged_send)
        finally:
            entry["body"] = b"".join(chunks).decode("utf-8", "replace")[:LOGGED_BODY]
            self.state.log_request(vendor, entry)
