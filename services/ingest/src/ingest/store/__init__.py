"""Ingest's store: tables (:mod:`.models`), repositories (:mod:`.repository`), the group commit, migrations."""

from pathlib import Path

#: The Alembic migrations folder (``feedbackloop migrate ingest``, the runtime's schema check).
MIGRATIONS = Path(__file__).parent / "migrations"
