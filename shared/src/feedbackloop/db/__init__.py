"""A service's own store: engines, the unit of work, runtime tables and migrations."""

from feedbackloop.db.engine import as_utc, create_engine, insert_ignoring_duplicates, is_sqlite, reader, session_factory
from feedbackloop.db.lease import leader_lease, lease_key, try_transaction_lock
from feedbackloop.db.migrate import SchemaBehind, check_current, run_env, upgrade
from feedbackloop.db.tables import RuntimeTables, add_runtime_tables
from feedbackloop.db.uow import UnitOfWork, UnitOfWorkFactory
from feedbackloop.db.write_lock import StoreLocked, WriteLock

__all__ = [
    "RuntimeTables",
    "SchemaBehind",
    "StoreLocked",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "WriteLock",
    "add_runtime_tables",
    "as_utc",
    "check_current",
    "create_engine",
    "insert_ignoring_duplicates",
    "is_sqlite",
    "leader_lease",
    "lease_key",
    "reader",
    "run_env",
    "session_factory",
    "try_transaction_lock",
    "upgrade",
]
