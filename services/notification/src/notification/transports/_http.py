"""One HTTP POST through the guarded client (:mod:`notification.transports.egress`), as a :class:`SendOutcome`.

A 2xx is a success; a network error, 5xx, 408 or 429 is worth trying again (``Retry-After`` honoured); any other
status, a refused target or a URL ``httpx`` cannot send to is not. Redirects are not followed.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from notification.domain.backoff import is_retryable, parse_retry_after
from notification.transports.base import SendOutcome
from notification.transports.egress import TargetRefused

__all__ = ["host_of", "post"]

#: How much of a reply is read: a receiver's answer is small; a larger one is cut and its connection closed.
_REPLY_LIMIT = 64 * 1024


async def post(client: httpx.AsyncClient, url: str, body: str, headers: dict[str, str], *,
               timeout: float) -> SendOutcome:
    """POST ``body`` to ``url``; ``timeout`` (the client's) only names the limit in a time-out's error."""
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    try:
        async with client.stream("POST", url, content=body.encode(), headers=headers) as response:
            status = response.status_code
            # Read the reply to its end (up to a bound): only a connection whose reply was read goes back to the
            # pool; one left unread is closed, and every attempt paid a new TCP connection and a resolution.
            reply = await _read_some(response, _REPLY_LIMIT)
            if not 200 <= status < 300:
                text = reply[:300].decode("utf-8", "replace").strip()
                error = f"HTTP {status}" + (f": {text}" if text else "")
                retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
    except TargetRefused as exc:
        return SendOutcome(None, str(exc))
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:  # the URL itself: sending again cannot help
        return SendOutcome(None, f"cannot send to this URL: {exc}")
    except httpx.TimeoutException:
        error = f"timed out after {timeout:g} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return SendOutcome(status, error, retry_after, retryable=is_retryable(status))


def host_of(url: object) -> str:
    """The host of a channel URL, for the span (the URL itself may hold a credential); ``""`` if unreadable."""
    try:
        return httpx.URL(str(url)).host
    except (httpx.InvalidURL, TypeError, ValueError):
        return ""


async def _read_some(response: httpx.Response, limit: int) -> bytes:
    """The body up to about ``limit`` bytes; never the whole of a large body (the connection is then closed)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)
