"""One request to a tracker, with its failures mapped to :class:`TrackerError` the same way for every tracker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from feedbackloop.trackers.base import TrackerError, parse_retry_after

MESSAGE_LIMIT = 300
#: Statuses worth trying again: the tracker is overloaded, restarting or timed out.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` cut to the message limit, with any credential in it masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:MESSAGE_LIMIT]


async def send(http: httpx.AsyncClient, tracker: str, method: str, url: str, *, secrets: Iterable[str],
               timeout: float, **kwargs: Any) -> httpx.Response:
    """The answer, whatever its status; a network failure or timeout is a retryable :class:`TrackerError`."""
    try:
        return await http.request(method, url, timeout=timeout, **kwargs)
    except httpx.TimeoutException as exc:
        raise TrackerError(f"{tracker}: no answer within {timeout:g} s ({type(exc).__name__})",
                           retryable=True) from None
    except httpx.HTTPError as exc:
        raise TrackerError(scrub(f"{tracker}: {type(exc).__name__}: {exc}", secrets), retryable=True) from None


def body_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def retry_after(response: httpx.Response) -> float | None:
    """The wait a tracker asks for: ``Retry-After``, else GitHub's rate-limit reset when nothing is left."""
    wait = parse_retry_after(response.headers.get("retry-after"))
    if wait is None and response.headers.get("x-ratelimit-remaining") == "0":
        try:
            wait = max(0.0, float(response.headers["x-ratelimit-reset"]) - time.time())
        except (KeyError, ValueError):
            wait = None
    return wait


def error_for(tracker: str, response: httpx.Response, what: str, *, secrets: Iterable[str],
              message_of: Callable[[Any], str | None]) -> TrackerError:
    """The error an unsuccessful answer stands for; its message is the tracker's own (cut to 300 characters)."""
    status = response.status_code
    vendor = message_of(body_json(response)) or response.text.strip()[:MESSAGE_LIMIT] or response.reason_phrase
    rate_limited = status == 403 and response.headers.get("x-ratelimit-remaining") == "0"  # GitHub's primary limit
    retryable = status in RETRYABLE_STATUSES or status >= 500 or rate_limited
    return TrackerError(scrub(f"{tracker}: {what} answered {status}: {vendor}", secrets), status=status,
                        retryable=retryable, retry_after=retry_after(response) if retryable else None)
