"""Which failures retry the whole batch (nothing skipped) and which dead-letter one event."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError

from feedbackloop.runtime.errors import PoisonMessage, TransientError, is_transient


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _dbapi(sqlstate: str) -> DBAPIError:
    return DBAPIError("INSERT …", {}, _DriverError(sqlstate))


def test_deadlocks_and_serialization_failures_retry_the_batch() -> None:
    assert is_transient(_dbapi("40P01"))
    assert is_transient(_dbapi("40001"))


def test_other_database_errors_do_not() -> None:
    assert not is_transient(_dbapi("23505"))
    assert not is_transient(IntegrityError("INSERT …", {}, _DriverError("23505")))
    assert not is_transient(ValueError("bad payload"))
    assert not is_transient(PoisonMessage("never"))
    assert is_transient(TransientError("store away"))
