"""Deletes and anonymises what aggregation holds of erased items and customers. Never commits."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aggregation.domain.erasure import pruned_evidence, pruned_link_items, renamed_theme_customer_key
from aggregation.store.models import (
    FeedbackRecord,
    FeedbackTheme,
    InsightRecord,
    LabelKey,
    Rollup,
    ThemeCustomer,
    TrackerLink,
)

__all__ = ["ErasureRepository"]

_ROLLUPS = cast(Table, Rollup.__table__)


class ErasureRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def delete_items(self, feedback_ids: Sequence[str], customer_id: str | None) -> list[str]:
        """Delete the items (and their theme rows): those listed, and every item of ``customer_id``. Their ids."""
        query = select(FeedbackRecord.feedback_id).where(FeedbackRecord.feedback_id.in_(list(feedback_ids)))
        found = {r[0] for r in await self.session.execute(query)}
        if customer_id is not None:
            by_customer = select(FeedbackRecord.feedback_id).where(FeedbackRecord.customer_id == customer_id)
            found |= {r[0] for r in await self.session.execute(by_customer)}
        ids = sorted(found)
        if ids:
            await self.session.execute(delete(FeedbackTheme).where(FeedbackTheme.feedback_id.in_(ids)))
            await self.session.execute(delete(FeedbackRecord).where(FeedbackRecord.feedback_id.in_(ids)))
        return ids

    async def delete_insights(self, insight_ids: Collection[str], outbox: Table, topic: str) -> None:
        """Delete insights about one erased item (an urgent item names its customer) and their retained events."""
        ids = list(insight_ids)
        if ids:
            await self.session.execute(delete(InsightRecord).where(InsightRecord.insight_id.in_(ids)))
            await self.session.execute(delete(outbox).where(outbox.c.topic == topic, outbox.c.key.in_(ids)))

    async def prune_evidence(self, erased: Collection[str]) -> int:
        """Take the erased items out of every stored insight's evidence; how many insights changed. Reads every
        insight: an erasure is rare and insights are few."""
        changed = 0
        for insight_id, data in (await self.session.execute(select(InsightRecord.insight_id, InsightRecord.data))):
            pruned = pruned_evidence(dict(data), erased)
            if pruned is not None:
                await self.session.execute(update(InsightRecord).where(InsightRecord.insight_id == insight_id)
                                           .values(data=pruned))
                changed += 1
        return changed

    async def prune_link_items(self, erased: Collection[str]) -> None:
        """Take the erased items out of the tracker links made for a set of items (the few ``items`` links)."""
        rows = await self.session.execute(select(TrackerLink.link_id, TrackerLink.feedback_ids)
                                          .where(TrackerLink.subject == "items"))
        for link_id, feedback_ids in rows.all():
            pruned = pruned_link_items(feedback_ids, erased)
            if pruned is not None:
                await self.session.execute(update(TrackerLink).where(TrackerLink.link_id == link_id)
                                           .values(feedback_ids=pruned))

    async def anonymise_customer(self, customer_id: str, label: str) -> None:
        """Replace the customer's id by ``label`` in the counters keyed by it; the counts stay."""
        await self.session.execute(update(_ROLLUPS).where(_ROLLUPS.c.dimension == "customer",
                                                          _ROLLUPS.c.key == customer_id).values(key=label))
        keys = await self.session.execute(select(_ROLLUPS.c.key).where(_ROLLUPS.c.dimension == "theme_customer",
                                                                       _ROLLUPS.c.key.endswith(customer_id))
                                          .distinct())
        for (key,) in keys.all():
            renamed = renamed_theme_customer_key(key, customer_id, label)
            if renamed is not None:
                await self.session.execute(update(_ROLLUPS).where(_ROLLUPS.c.dimension == "theme_customer",
                                                                  _ROLLUPS.c.key == key).values(key=renamed))
        await self.session.execute(update(ThemeCustomer).where(ThemeCustomer.customer_id == customer_id)
                                   .values(customer_id=label))
        await self.session.execute(update(LabelKey).where(LabelKey.kind == "customer", LabelKey.value == customer_id)
                                   .values(value=label))
