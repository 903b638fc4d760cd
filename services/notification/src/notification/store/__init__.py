"""Notification's store: tables (:mod:`.models`), repositories (:mod:`.repository`), Alembic migrations."""

from pathlib import Path

#: The Alembic migrations folder (``feedbackloop migrate notification``, the runtime's schema check).
MIGRATIONS = Path(__file__).parent / "migrations"
