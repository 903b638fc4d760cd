"""``feedbackloop erase``: asks the running ingest to erase one customer's or one author's feedback everywhere.

Failures are :class:`EraseFailed`, whose message is one line for stderr (no key in it, ever).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from feedbackloop.keys import NoApiKey, cli_api_key

__all__ = ["EraseFailed", "erasure_body", "request_erasure", "resolve_key"]


class EraseFailed(Exception):
    """The erasure was not requested (bad arguments, no key, ingest unreachable or refusing): the message says why."""


def resolve_key(explicit: str | None, var_dir: Path = Path("var")) -> str:
    """``--key``, else ``FEEDBACKLOOP_API_KEY``, else the key ``make run`` wrote to ``var/api-key``."""
    try:
        return cli_api_key(explicit, "--key", var_dir)
    except NoApiKey as exc:
        raise EraseFailed(str(exc)) from None


def erasure_body(customer: str | None, author_email: str | None, reason: str) -> dict[str, Any]:
    """The ``POST /v1/erasures`` body; at least one of customer and author email, else :class:`EraseFailed`."""
    if not (customer or "").strip() and not (author_email or "").strip():
        raise EraseFailed("give --customer or --author-email (or both)")
    body: dict[str, Any] = {"reason": reason}
    if customer:
        body["customer_id"] = customer
    if author_email:
        body["author_email"] = author_email
    return body


def request_erasure(url: str, key: str, body: dict[str, Any], *, timeout: float = 30.0) -> dict[str, Any]:
    """POST the request to ingest at ``url``; its 202 answer (``request_id``, ``items``)."""
    try:
        response = httpx.post(f"{url.rstrip('/')}/v1/erasures", json=body, timeout=timeout,
                              headers={"authorization": f"Bearer {key}"})
    except httpx.HTTPError as exc:
        raise EraseFailed(f"ingest at {url} is unreachable: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 202:
        try:
            problem = response.json()
            detail = problem.get("detail") or problem.get("title") or response.text
        except ValueError:
            detail = response.text
        one_line = " ".join(str(detail).split())[:300]
        raise EraseFailed(f"ingest refused the erasure ({response.status_code}): {one_line}")
    answer: dict[str, Any] = response.json()
    return answer
