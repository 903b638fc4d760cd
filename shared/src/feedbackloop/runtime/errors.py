"""How a failure in the consumer path is treated.

    Exception
    ├── TransientError      retried with backoff, never skipped (store locked or away, broker away,
    │                       a PostgreSQL deadlock or serialization failure)
    └── PoisonMessage       dead-lettered at once: the message can never succeed as it is
        └── DecodeError     (feedbackloop.contracts) not JSON, not an envelope, schema violation

Any other exception raised by a handler is retried a few times for the one event, then the event is
dead-lettered with the error: a bug that fails one payload must not stall the stream, but it must
not vanish either.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

__all__ = ["RETRY_SQLSTATES", "PoisonMessage", "TransientError", "is_transient"]

#: PostgreSQL's serialization_failure and deadlock_detected: the transaction lost a race with another
#: (two copies upserting the same rollup rows, a detector clearing what a consumer marks) and succeeds
#: when run again, so the whole batch is retried instead of the event being dead-lettered.
RETRY_SQLSTATES = frozenset({"40001", "40P01"})


class TransientError(Exception):
    """A failure that will pass: retry the whole batch later, skip nothing."""


class PoisonMessage(Exception):
    """The payload is rejected by the domain; dead-letter it and move on."""


def _sqlstate(exc: DBAPIError) -> str | None:
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return state if isinstance(state, str) else None


def is_transient(exc: BaseException) -> bool:
    if isinstance(
        exc,
        (
            TransientError,
            OperationalError,
            DisconnectionError,
            PoolTimeout,
            ConnectionError,
            asyncio.TimeoutError,
            TimeoutError,
        ),
    ):
        return True
    if isinstance(exc, DBAPIError) and (exc.connection_invalidated or _sqlstate(exc) in RETRY_SQLSTATES):
        return True
    return isinstance(exc, OSError)
