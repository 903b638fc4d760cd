"""The detectors' use case (:func:`run_detectors`): spikes, sentiment drops, KPI drops, emerging themes.

Streaming: every applied item marks the hour of its ``created_at`` dirty; a run (``worker.py``) judges each
dirty hour against the hourly rollups, raises insights through the outbox and forgets the hours it judged,
all in one unit of work. Items that arrive late or out of order re-mark their hour, which is judged again;
episodes (``domain/episodes.py``) keep that from raising the same insight twice. A spike's figures are its
episode's (all its hours so far), told once the run has judged every dirty hour; an episode that has grown
materially since its insight was published re-publishes it as the next revision (``domain/spike_insight.py``).
A growing cluster is an emerging theme unless it repeats a theme the store knows (``domain/emerging.py``). A
run that fails (store locked) leaves the hours dirty for the next run.

Load → decide → apply: the run reads the rollups around the dirty hours, a window of them at a time so that a
backfill's two years of dirty hours are never all in memory (``dirty_windows``), :func:`find_anomalies` and
:func:`plan_episodes` (``domain/anomalies.py``) decide which hours are anomalous and which insights they
raise, the episodes are written, and each insight's evidence and release are read before
``domain/insights.py`` says what it says; the insight is stored and raised through the outbox.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from aggregation.config import AggregationSettings
from aggregation.domain.anomalies import (
    DIMENSIONS,
    SENTIMENT_DROP,
    Anomaly,
    HourlyRollups,
    SpikeEpisode,
    dirty_windows,
    find_anomalies,
    hours_to_read,
    plan_episodes,
    spike_tally,
)
from aggregation.domain.emerging import (
    VOCABULARY_DAYS,
    ClusterFacts,
    ClusterVerdict,
    TermUse,
    judge_cluster,
    term_words,
    terms_to_check,
)
from aggregation.domain.episodes import Episode, episode_insight_id, insight_event_id
from aggregation.domain.insights import (
    at,
    emerging_insight,
    kpi_drop_insight,
    label,
    release_note,
    sentiment_drop_insight,
    spike_insight,
)
from aggregation.domain.series import HOUR
from aggregation.domain.spike_insight import EVIDENCE_CAP, ReleaseNote, SpikeTally
from aggregation.store.detection import ClusterRow, DetectionRepository
from aggregation.store.repository import InsightRepository
from feedbackloop.contracts import INSIGHTS, Insight
from feedbackloop.db import UnitOfWork
from feedbackloop.logs import get_logger

__all__ = ["run_detectors"]

log = get_logger(__name__)

#: Items of a sentiment drop's window read to find its first item (the insight carries the first 50).
_DROP_ITEMS_READ = 200


class _Detection:
    """One run's unit of work, its repositories, and the insights it raised."""

    def __init__(self, uow: UnitOfWork, settings: AggregationSettings, now: datetime) -> None:
        self.uow = uow
        self.settings = settings
        self.config = settings.detector_config()
        self.now = now
        self.repo = DetectionRepository(uow.session)
        self.insights = InsightRepository(uow.session)
        self.raised: list[Insight] = []

    async def publish(self, insight: Insight, *, new: bool) -> None:
        """Store the insight (a new one, or a later revision over the stored one) and raise its event."""
        insight_id = str(insight.insight_id)
        data = insight.model_dump(mode="json", by_alias=True)
        if new:
            await self.insights.add(insight_id, insight.type, insight.severity, insight.theme, insight.created_at,
                                    data)
        else:
            await self.insights.revise(insight_id, insight.severity, data)
        self.uow.publish(INSIGHTS, insight, event_id=insight_event_id(insight_id, insight.revision))
        self.raised.append(insight)

    async def release(self, first_item: datetime) -> ReleaseNote | None:
        """The release or incident posted at most ``release_window_hours`` before ``first_item``."""
        stored = await self.repo.release_before(first_item, self.settings.release_window_hours * 3600)
        return release_note(stored, first_item)

    async def judge_hours(self, dirty: Iterable[int], first: int) -> None:
        """Judge the dirty hours window by window (``dirty_windows``), then tell each spike episode they touched
        once, as it stands after the last window (raised if this run opened it, else revised if it has grown)."""
        now = int(self.now.timestamp())
        spikes: dict[str, tuple[SpikeEpisode, SpikeTally]] = {}
        names: dict[str, str] = {}
        for window in dirty_windows(dirty, self.config):
            await self.judge_window(window, first, now, spikes, names)
        for spiking, tally in spikes.values():
            insight = await self.spike_insight(spiking, tally, names)
            if insight is not None:
                await self.publish(insight, new=spiking.opened)

    async def judge_window(self, window: list[int], first: int, now: int,
                           spikes: dict[str, tuple[SpikeEpisode, SpikeTally]], names: dict[str, str]) -> None:
        """Judge one window's hours against the rollups around them: write the episodes, raise the drops and
        tally the spike episodes touched (into ``spikes``, over what an earlier window tallied)."""
        begin, end = hours_to_read(window, self.config)
        cells = await self.repo.hourly(DIMENSIONS, begin, end)
        names.update(await self.repo.theme_names(k for d, k in cells if d == "theme" and k not in names))
        rollups = HourlyRollups(cells, begin, end)
        del cells  # (the series hold what the run needs of them)
        anomalies = find_anomalies(rollups, window, first, now, self.config)
        subjects = dict.fromkeys((a.detector, a.subject) for a in anomalies)
        plan = plan_episodes(anomalies, {s: await self.repo.episodes(*s) for s in subjects}, self.config)
        for episode in plan.opened:
            await self.repo.open_episode(episode)
        for episode in plan.extended:
            await self.repo.extend_episode(episode, episode.last)
        for drop, episode in plan.drops:
            await self.publish(await self.drop_insight(drop, episode, names), new=True)
        for spiking in plan.spikes:
            assert rollups.overall is not None  # (there are no anomalies without any item)
            tally = spike_tally(spiking.episode, rollups.count[(spiking.dimension, spiking.key)], rollups.overall,
                                first, now, self.config.spike)
            earlier = spikes.get(spiking.episode.insight_id)
            if earlier is not None:  # an episode this run opened in an earlier window is still new
                spiking = replace(spiking, opened=spiking.opened or earlier[0].opened)
            spikes[spiking.episode.insight_id] = (spiking, tally)

    async def drop_insight(self, drop: Anomaly, episode: Episode, names: dict[str, str]) -> Insight:
        if drop.detector != SENTIMENT_DROP:
            return kpi_drop_insight(drop, episode.insight_id, window_days=self.config.drops.kpi_window_days,
                                    now=self.now)
        evidence = await self.repo.evidence(drop.dimension, drop.key, at(drop.start), at(drop.end),
                                            limit=_DROP_ITEMS_READ)
        first_item = await self.repo.first_created(evidence) or at(drop.start)
        return sentiment_drop_insight(drop, episode.insight_id, subject=label(drop.dimension, drop.key, names),
                                      evidence=evidence, release=await self.release(first_item),
                                      window_hours=self.config.drops.window_hours, now=self.now)

    async def spike_insight(self, spiking: SpikeEpisode, tally: SpikeTally, names: dict[str, str]) -> Insight | None:
        episode = spiking.episode
        start, end = at(episode.first), at(episode.last + HOUR)
        evidence = await self.repo.evidence(spiking.dimension, spiking.key, start, end, limit=EVIDENCE_CAP)
        first_item = await self.repo.first_created(evidence) or start
        release = await self.release(first_item)
        published = None if spiking.opened else await self.insights.published(episode.insight_id)
        return spike_insight(spiking, tally, subject=label(spiking.dimension, spiking.key, names),
                             first_item=first_item, release=release, evidence=evidence, config=self.config.spike,
                             now=self.now, published=published)

    async def emerging(self) -> None:
        settings = self.settings
        since = self.now - timedelta(days=settings.emerging_window_days)
        names: dict[str, str] | None = None
        for cluster in await self.repo.unflagged_clusters(settings.emerging_min_items):
            recent = await self.repo.cluster_items_since(cluster.cluster_id, since)
            if recent < settings.emerging_min_items:
                continue
            names = names if names is not None else await self.repo.all_theme_names()
            verdict = await self.judge_cluster(cluster, recent, since, names)
            if verdict.duplicate_of is not None:
                log.info("cluster repeats an existing theme; no emerging theme raised", cluster_id=cluster.cluster_id,
                         theme=verdict.duplicate_of, reason=verdict.reason)
                await self.repo.mark_duplicate(cluster.cluster_id, verdict.duplicate_of, cluster.items)
                continue
            insight_id = episode_insight_id("emerging_theme", cluster.cluster_id, 0)
            evidence = await self.repo.evidence("cluster", cluster.cluster_id, since, self.now + timedelta(days=1))
            insight = emerging_insight(insight_id, cluster_id=cluster.cluster_id, terms=cluster.terms,
                                       items=cluster.items, recent=recent, evidence=evidence, since=since,
                                       now=self.now, window_days=settings.emerging_window_days,
                                       min_items=settings.emerging_min_items)
            await self.repo.flag_cluster(cluster.cluster_id, insight_id)
            await self.publish(insight, new=True)

    async def judge_cluster(self, cluster: ClusterRow, recent: int, since: datetime,
                            names: dict[str, str]) -> ClusterVerdict:
        """Whether the cluster is new or repeats an existing theme (``domain/emerging.py``), from what the store
        holds of its items and of the items outside it that use its terms."""
        themed, themes = await self.repo.cluster_themes(cluster.cluster_id, since)
        vocabulary_since = self.now - timedelta(days=VOCABULARY_DAYS)
        use = {}
        for term in terms_to_check(cluster.terms):
            items, by_theme = await self.repo.term_use(cluster.cluster_id, term_words(term), vocabulary_since)
            use[term] = TermUse(items, by_theme)
        facts = ClusterFacts(cluster.cluster_id, tuple(cluster.terms), recent, themed, themes)
        return judge_cluster(facts, names, use)


async def run_detectors(uow: UnitOfWork, settings: AggregationSettings, now: datetime) -> list[Insight]:
    """Judge every dirty hour and every growing cluster; returns the insights raised or revised (``revision`` >
    1), not yet committed."""
    run = _Detection(uow, settings, now)
    dirty = await run.repo.dirty_hours()
    if dirty:
        first = await run.repo.first_hour()
        if first is not None:
            await run.judge_hours(dirty, first)
        await run.repo.clear_dirty(dirty)
    await run.emerging()
    return run.raised
