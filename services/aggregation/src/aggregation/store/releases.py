"""The release and incident markers aggregation stores from ``releases.v1`` (:class:`ReleaseRepository`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from aggregation.domain.items import as_utc
from aggregation.store._sql import dialect_insert
from aggregation.store.models import ReleaseRecord

__all__ = ["ReleaseRepository"]


class ReleaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(self, release_id: str, version: str, kind: str, service: str | None, released_at: datetime,
                     data: dict[str, Any]) -> None:
        values = {"release_id": release_id, "version": version, "kind": kind, "service": service,
                  "released_at": as_utc(released_at), "data": data}
        stmt = dialect_insert(self.session)(ReleaseRecord.__table__).values(values)
        stmt = stmt.on_conflict_do_update(index_elements=["release_id"],
                                          set_={k: v for k, v in values.items() if k != "release_id"})
        await self.session.execute(stmt)

