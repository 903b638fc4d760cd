"""Reads and writes of classifications. Never commits: the unit of work does."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from classification.store.models import Classification
from feedbackloop.contracts import ClassifiedFeedback

__all__ = ["ClassificationRepository"]


class ClassificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, feedback_id: str) -> Classification | None:
        return await self.session.get(Classification, feedback_id)

    async def upsert(self, item: ClassifiedFeedback, *, created_at: datetime) -> bool:
        """Store ``item`` unless a row with the same or a newer revision exists; True when it was written.

        Idempotent: storing the same revision twice changes nothing, and an older revision never overwrites a
        newer one, so a redelivered or replayed event cannot undo a correction.
        """
        values = {
            "feedback_id": str(item.feedback_id),
            "revision": item.revision,
            "created_at": created_at,
            "classified_at": item.classified_at or created_at,
            "kind": item.kind,
            "sentiment": item.sentiment.label,
            "item": item.model_dump(mode="json"),
        }
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        insert = dialect.insert(Classification).values(**values)
        statement = insert.on_conflict_do_update(
            index_elements=[Classification.feedback_id],
            set_={k: insert.excluded[k] for k in ("revision", "classified_at", "kind", "sentiment", "item")},
            where=Classification.revision < insert.excluded.revision,
        )
        result = await self.session.execute(statement)
        return bool(result.rowcount)  # type: ignore[attr-defined]
