"""Aggregation's store: tables (:mod:`.models`), one module per repository, Alembic migrations."""

from pathlib import Path

#: The Alembic migrations folder (``feedbackloop migrate aggregation``, the runtime's schema check).
MIGRATIONS = Path(__file__).parent / "migrations"
