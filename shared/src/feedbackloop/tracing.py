"""W3C trace context (``traceparent``) carried from the webhook to the notification.

The trace id is kept through every hop; each hop gets a span id of its own. The current context
lives in a context variable so that events published while handling an event continue its trace.
"""

from __future__ import annotations

import contextvars
import re
import secrets

__all__ = ["child_traceparent", "current_traceparent", "new_traceparent", "reset_traceparent", "use_traceparent"]

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("traceparent", default=None)


def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def child_traceparent(parent: str | None) -> str:
    """A new span in the parent's trace, or a new trace when the parent is missing or malformed."""
    match = _TRACEPARENT.match(parent or "")
    if not match or match.group(1) == "0" * 32:
        return new_traceparent()
    return f"00-{match.group(1)}-{secrets.token_hex(8)}-{match.group(3)}"


def current_traceparent() -> str | None:
    return _current.get()


def use_traceparent(value: str | None) -> contextvars.Token[str | None]:
    return _current.set(value)


def reset_traceparent(token: contextvars.Token[str | None]) -> None:
    _current.reset(token)
