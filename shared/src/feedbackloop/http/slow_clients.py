"""Slow and oversized requests cannot hold a connection forever.

uvicorn has a keep-alive timeout between requests but none while a request arrives, and its default parser
(httptools) puts no bound on the size of the headers. Two guards close that:

- :class:`GuardedHttpTools`, uvicorn's httptools protocol with a header deadline and a header size cap: a
  connection whose request line and headers are not complete ``header_timeout`` seconds after it opened (or
  after the request's first byte, on a kept-alive connection) is answered ``408`` and closed (closed without an
  answer when nothing arrived at all); request line and headers over ``max_header_bytes`` are uvicorn's ``400
  Invalid HTTP request`` and a closed connection, as uvicorn's h11 parser answers over
  ``h11_max_incomplete_event_size``. ``feedbackloop.serve`` runs every service with it.
- a body deadline: the body must arrive whole within ``seconds`` of the app's first read of it; a client
  trickling it gets a 408 problem (``Connection: close``) when its time is up, wherever the body was being read
  (FastAPI's typed bodies, a route's own ``request.body()``). It is one of the request guards
  (:class:`feedbackloop.http._guards.RequestGuards`); :class:`SlowBody` is its exception.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from feedbackloop.http.problems import problem_response

__all__ = ["GuardedHttpTools", "HeadersTooLarge", "SlowBody", "install_slow_body_handler"]

_REQUEST_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                    b"content-length: 40\r\nconnection: close\r\n\r\nThe request headers arrived too slowly.\n")


class HeadersTooLarge(Exception):
    """Raised inside the parser's callback: uvicorn answers 400 and closes the connection."""


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size cap on each request's line and headers.

    The limits are class attributes so that a subclass made by :func:`feedbackloop.serve.server_config`
    carries them (uvicorn builds one protocol object per connection from the class alone)."""

    header_timeout: float = 10.0
    max_header_bytes: int = 32 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._begun = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._begun = True
        if self._header_deadline is None:  # a kept-alive connection's next request: its first byte starts the clock
            self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        self._begun = False
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            self._disarm()
            raise HeadersTooLarge(f"request line and headers over {self.max_header_bytes} bytes")

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if self._begun:
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()


class SlowBody(HTTPException):
    """The request body did not arrive in time. An HTTPException so that FastAPI's body parsing re-raises it
    instead of turning it into a 400; its handler answers the 408 problem."""


def install_slow_body_handler(app: FastAPI) -> None:
    @app.exception_handler(SlowBody)
    async def _slow_body(request: Request, exc: SlowBody) -> JSONResponse:
        return problem_response(408, "Request timeout", str(exc.detail), instance=request.url.path,
                                headers={"Connection": "close"})
