"""One call to a support tool's API (Zendesk, Intercom) as a response or a failed :class:`SendOutcome`.

These APIs are reached with the operator's credentials at URLs from the operator's environment
(``NOTIFICATION_ZENDESK_URL``, ``NOTIFICATION_INTERCOM_API_URL``), never from a rule, so the client is a plain one,
not the egress-guarded client of rule-given URLs (which would refuse a 127.0.0.1 stand-in). Redirects are not
followed. A network error, 5xx, 408 or 429 (``Retry-After`` honoured) is worth trying again; any other status,
or a URL that cannot be sent to, is not.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from notification.domain.backoff import is_retryable, parse_retry_after
from notification.transports.base import SendOutcome

__all__ = ["call", "json_of"]

_ANSWER_CHARS = 300


async def call(client: httpx.AsyncClient, method: str, url: str, *, what: str, **kwargs: Any
               ) -> httpx.Response | SendOutcome:
    """The 2xx response of one request, or the failed outcome it came to (``what`` names the call in errors)."""
    try:
        response = await client.request(method, url, **kwargs)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        return SendOutcome(None, f"{what}: cannot send to the configured URL: {exc}")
    except httpx.TimeoutException:
        return SendOutcome(None, f"{what}: timed out", retryable=True)
    except httpx.HTTPError as exc:
        return SendOutcome(None, f"{what}: {type(exc).__name__}", retryable=True)
    status = response.status_code
    if 200 <= status < 300:
        return response
    text = " ".join(response.text[:_ANSWER_CHARS].split())
    return SendOutcome(status, f"{what}: HTTP {status}" + (f": {text}" if text else ""),
                       retry_after=parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC)),
                       retryable=is_retryable(status))


def json_of(response: httpx.Response) -> Any:
    """The response's JSON, or ``None`` when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None
