"""KPIs over a window and their change against the previous window. Pure.

* NPS = (promoters - detractors) / responses x 100, over ``nps`` ratings on 0-10 (9-10 promote, 0-6 detract).
* CSAT = satisfied / responses x 100, over ``csat`` ratings on 1-5 (4 and 5 are satisfied).
* volume = items created in the window; negative share = negative items / items.
* median time to classify = median of (classified_at - created_at) in seconds, over the window's items.
A KPI with no data in a window is None, and so is its change.
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregation.domain.rollups import Measures

__all__ = ["KpiSet", "kpis_of"]


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


def kpis_of(m: Measures, median_latency: float | None) -> KpiSet:
    return KpiSet(
        volume=m.count,
        negative_share=round(m.negative / m.count, 4) if m.count else None,
        sentiment_avg=round(m.sentiment_sum / m.count, 4) if m.count else None,
        nps=round(100 * (m.nps_promoters - m.nps_detractors) / m.nps_responses, 2) if m.nps_responses else None,
        nps_responses=m.nps_responses,
        csat=round(100 * m.csat_satisfied / m.csat_responses, 2) if m.csat_responses else None,
        csat_responses=m.csat_responses,
        median_time_to_classify_s=round(median_latency, 3) if median_latency is not None else None,
    )
