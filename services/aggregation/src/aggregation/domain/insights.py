"""What each detector insight says: title, severity, metrics, window and evidence. Pure.

* **sentiment drop** (:func:`sentiment_drop_insight`): "<subject>: negative share 45% in 24 h, up from 10%",
  critical when the share rose by :data:`CRITICAL_SHARE_RISE` (35 points) or more, else a warning;
* **KPI drop** (:func:`kpi_drop_insight`): "NPS fell to 5 over 7 days, from 40", critical when it fell by
  :data:`CRITICAL_KPI_FALL` (25 points) or more, else a warning;
* **spike** (:func:`spike_insight`): revision 1 when its episode opened in this run, else the next revision
  once the episode has grown (``domain/spike_insight.py``);
* **emerging theme** (:func:`emerging_insight`): a warning at :data:`EMERGING_WARNING_FACTOR` times the
  items a cluster needs to emerge, else info.

Drops and spikes name the release posted shortly before their first item (:class:`ReleaseNote`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aggregation.domain.anomalies import Anomaly, SpikeEpisode
from aggregation.domain.drops import DropVerdict
from aggregation.domain.series import HOUR
from aggregation.domain.spike import SpikeConfig
from aggregation.domain.spike_insight import (
    PublishedSpike,
    ReleaseNote,
    SpikeContext,
    SpikeTally,
    revise_spike,
    tell_spike,
)
from feedbackloop.contracts import Insight

__all__ = [
    "CRITICAL_KPI_FALL",
    "CRITICAL_SHARE_RISE",
    "EMERGING_WARNING_FACTOR",
    "at",
    "emerging_insight",
    "kpi_drop_insight",
    "label",
    "release_note",
    "sentiment_drop_insight",
    "spike_insight",
]

#: A sentiment drop whose negative share rose by this much (0..1) is critical.
CRITICAL_SHARE_RISE = 0.35
#: An NPS or CSAT drop of this many points is critical.
CRITICAL_KPI_FALL = 25
#: An emerging theme with this many times the items it needed is a warning, not info.
EMERGING_WARNING_FACTOR = 3
#: At most this many items of a drop's window travel as its evidence.
DROP_EVIDENCE_CAP = 50


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def label(dimension: str, key: str, names: Mapping[str, str]) -> str:
    """How an insight names its subject: the theme's name, the product area, or all feedback."""
    if dimension == "theme":
        return names.get(key, key)
    if dimension == "product_area":
        return f"Product area {key}"
    return "All feedback"


def release_note(release: Mapping[str, Any] | None, first_item: datetime) -> ReleaseNote | None:
    """The stored ``releases.v1`` marker ``release`` as told beside an episode whose first item is ``first_item``."""
    if release is None:
        return None
    released_at = datetime.fromisoformat(release["released_at"])
    return ReleaseNote(release["release_id"], release["version"], release.get("kind", "release"),
                       int((first_item - released_at).total_seconds() // 60))


def _verdict(anomaly: Anomaly) -> DropVerdict:
    if anomaly.verdict is None:
        raise ValueError(f"a {anomaly.detector} anomaly without its verdict")
    return anomaly.verdict


def sentiment_drop_insight(drop: Anomaly, insight_id: str, *, subject: str, evidence: Sequence[str],
                           release: ReleaseNote | None, window_hours: int, now: datetime) -> Insight:
    """The insight of a sentiment drop that opened its episode; ``evidence``: its window's items, oldest first."""
    verdict = _verdict(drop)
    note, metrics = (release.phrase, release.metrics()) if release is not None else ("", {})
    return Insight.model_validate({
        "insight_id": insight_id, "type": "sentiment_drop",
        "title": f"{subject}: negative share {verdict.current:.0%} in {window_hours} h, "
                 f"up from {verdict.previous:.0%}{note}",
        "theme": drop.key if drop.dimension == "theme" else None,
        "window": {"from": at(drop.start), "to": at(drop.end)},
        "metrics": {"observed": verdict.current, "expected": verdict.previous, "z": verdict.z, "items": drop.volume,
                    "dimension": drop.dimension, "key": drop.key, **metrics},
        "severity": "critical" if verdict.current - verdict.previous >= CRITICAL_SHARE_RISE else "warning",
        "evidence": list(evidence[:DROP_EVIDENCE_CAP]), "created_at": now})


def kpi_drop_insight(drop: Anomaly, insight_id: str, *, window_days: int, now: datetime) -> Insight:
    """The insight of an NPS or CSAT drop that opened its episode."""
    verdict = _verdict(drop)
    name = drop.subject.upper()
    unit = "" if name == "NPS" else "%"
    return Insight.model_validate({
        "insight_id": insight_id, "type": "kpi_drop",
        "title": f"{name} fell to {verdict.current:g}{unit} over {window_days} days, from {verdict.previous:g}{unit}",
        "window": {"from": at(drop.start), "to": at(drop.end)},
        "metrics": {"kpi": drop.subject, "observed": verdict.current, "expected": verdict.previous, "z": verdict.z,
                    "responses": drop.volume},
        "severity": "critical" if verdict.previous - verdict.current >= CRITICAL_KPI_FALL else "warning",
        "evidence": [], "created_at": now})


def spike_insight(spiking: SpikeEpisode, tally: SpikeTally, *, subject: str, first_item: datetime,
                  release: ReleaseNote | None, evidence: Sequence[str], config: SpikeConfig, now: datetime,
                  published: tuple[str, Mapping[str, Any]] | None) -> Insight | None:
    """A spike episode's insight: revision 1 when this run opened the episode; otherwise the next revision of
    the ``published`` one (its stored severity and data) when the episode has grown, else None. None too for
    an episode whose insight is no longer stored (removed by hand): there is nothing to revise."""
    episode = spiking.episode
    context = SpikeContext(subject, spiking.dimension, spiking.key, first_item, release, config.nb_size,
                           config.alpha)
    told = {"window": {"from": at(episode.first), "to": at(episode.last + HOUR)}, "evidence": list(evidence)}
    if spiking.opened:
        story = tell_spike(tally, context)
        return Insight.model_validate({
            "insight_id": episode.insight_id, "type": "spike", "title": story.title,
            "theme": spiking.key if spiking.dimension == "theme" else None, "metrics": dict(story.metrics),
            "severity": story.severity, "created_at": now, **told})
    if published is None:
        return None
    severity, data = published
    metrics = data.get("metrics") or {}
    first_observed = metrics.get("first_observed")
    before = PublishedSpike(int(data.get("revision") or 1), int(metrics.get("observed") or 0), severity,
                            int(first_observed) if first_observed is not None else None)
    revised = revise_spike(before, tally, context)
    if revised is None:
        return None
    return Insight.model_validate({
        **data, "title": revised.title, "metrics": dict(revised.metrics), "severity": revised.severity,
        "revision": revised.revision, "updated_at": now, **told})


def emerging_insight(insight_id: str, *, cluster_id: str, terms: Sequence[str], items: int, recent: int,
                     evidence: Sequence[str], since: datetime, now: datetime, window_days: int,
                     min_items: int) -> Insight:
    """The insight of a cluster judged an emerging theme (``domain/emerging.py``): ``recent`` of its ``items``
    arrived since ``since``."""
    named = ", ".join(f"“{t}”" for t in terms[:5]) or cluster_id
    return Insight.model_validate({
        "insight_id": insight_id, "type": "emerging_theme",
        "title": f"Emerging theme: {named} — {recent} similar items in {window_days} days that fit no known theme",
        "window": {"from": since, "to": now},
        "metrics": {"observed": recent, "cluster_id": cluster_id, "items": items, "terms": ", ".join(terms[:10])},
        "severity": "warning" if recent >= EMERGING_WARNING_FACTOR * min_items else "info",
        "evidence": list(evidence), "created_at": now})
