"""KPIs over a window and their change against the previous window. Pure.

* NPS = (promoters - detractors) / responses x 100, over ``nps`` ratings on 0-10 (9-10 promote, 0-6 detract).
* CSAT = satisfied / responses x 100, over ``csat`` ratings on 1-5 (4 and 5 are satisfied).
* volume = items created in the window; negative share = negative items / items.
* median time to classify = median of (classified_at - created_at) in seconds, over the window's items
  received live: back-dated imports (``domain/items.py``, :data:`~aggregation.domain.items.BACKDATED_AFTER`)
  would measure when they were imported, so they are left out and counted in ``backdated_excluded``.
A KPI with no data in a window is None, and so is its change.
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregation.domain.items import BACKDATED_AFTER
from aggregation.domain.rollups import Measures

__all__ = ["KpiSet", "backdated_definition", "kpis_of", "time_to_classify_caption"]


@dataclass(frozen=True)
class KpiSet:
    volume: int
    negative_share: float | None
    sentiment_avg: float | None
    nps: float | None
    nps_responses: int
    csat: float | None
    csat_responses: int
    median_time_to_classify_s: float | None
    backdated_excluded: int = 0


def kpis_of(m: Measures, median_latency: float | None, backdated_excluded: int = 0) -> KpiSet:
    """The KPIs of a window's summed ``m``; ``median_latency`` is over its live items, ``backdated_excluded``
    the back-dated imports left out of it."""
    return KpiSet(
        volume=m.count,
        negative_share=round(m.negative / m.count, 4) if m.count else None,
        sentiment_avg=round(m.sentiment_sum / m.count, 4) if m.count else None,
        nps=round(100 * (m.nps_promoters - m.nps_detractors) / m.nps_responses, 2) if m.nps_responses else None,
        nps_responses=m.nps_responses,
        csat=round(100 * m.csat_satisfied / m.csat_responses, 2) if m.csat_responses else None,
        csat_responses=m.csat_responses,
        median_time_to_classify_s=round(median_latency, 3) if median_latency is not None else None,
        backdated_excluded=backdated_excluded,
    )


def time_to_classify_caption(backdated_excluded: int) -> str:
    """What the time-to-classify figure measures, in words for the dashboard."""
    caption = "median created → classified, items received live"
    if backdated_excluded:
        plural = "import" if backdated_excluded == 1 else "imports"
        caption += f"; {backdated_excluded:,} back-dated {plural} excluded"
    return caption


def backdated_definition() -> str:
    """When an item counts as back-dated, in words (the API's and the dashboard's footnote)."""
    return f"created more than {BACKDATED_AFTER.total_seconds() / 3600:g} h before it was received"
