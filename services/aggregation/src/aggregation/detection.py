"""The detectors' use case and the worker that runs it: spikes, sentiment drops, KPI drops, emerging themes.

Streaming: every applied item marks the hour of its ``created_at`` dirty (``detect_dirty_hours``); the
:class:`DetectionWorker` wakes every ``AGGREGATION_DETECT_INTERVAL_SECONDS`` (10 s), judges each dirty
hour against the hourly rollups, raises insights through the outbox and forgets the hours it judged,
all in one unit of work. Items that arrive late or out of order re-mark their hour, which is judged
again; episodes (``domain/episodes.py``) keep that from raising the same insight twice. A spike's
figures are its episode's (all its hours so far), told once the run has judged every dirty hour; an
episode that has grown materially since its insight was published re-publishes it as the next revision
(``domain/spike_insight.py``). A growing cluster is an emerging theme unless it repeats a theme the
store knows (``domain/emerging.py``). A run that fails (store locked) leaves the hours dirty for the next run.

Several copies on one PostgreSQL store: a run first takes the leader lease :data:`DETECTOR_LEASE`
(``feedbackloop.db.leader_lease``, an advisory lock); a copy that does not get it skips that tick, so
one copy judges at a time and a dead leader's lease passes to the next copy that ticks. On SQLite every
run holds it (one process per store).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aggregation.config import AggregationSettings
from aggregation.domain.drops import csat_drop, nps_drop, sentiment_drop
from aggregation.domain.emerging import (
    VOCABULARY_DAYS,
    ClusterFacts,
    TermUse,
    judge_cluster,
    term_words,
    terms_to_check,
)
from aggregation.domain.episodes import Episode, episode_insight_id, find_episode, insight_event_id
from aggregation.domain.rollups import UNKNOWN, Measures
from aggregation.domain.series import DAY, HOUR, HourlySeries
from aggregation.domain.spike import SpikeConfig, expected_count, judge_spike
from aggregation.domain.spike_insight import (
    EVIDENCE_CAP,
    PublishedSpike,
    ReleaseNote,
    SpikeContext,
    SpikeTally,
    revise_spike,
    tell_spike,
)
from aggregation.store.analytics import DetectionRepository
from aggregation.store.repository import InsightRepository
from feedbackloop.contracts import INSIGHTS, Insight
from feedbackloop.db import UnitOfWork, leader_lease
from feedbackloop.logs import get_logger
from feedbackloop.runtime import ServiceRuntime, Worker

__all__ = ["DETECTOR_LEASE", "DetectionWorker", "detection_worker", "run_detectors"]

DETECTOR_LEASE = "aggregation.detector"

log = get_logger(__name__)


def _at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass
class _Series:
    count: HourlySeries
    negative: HourlySeries


@dataclass
class _Spiking:
    """A spike episode an anomalous hour of this run belongs to; ``opened`` when this run opened it."""

    episode: Episode
    opened: bool
    dimension: str
    key: str


def _series(cells: dict[int, Measures], begin: int, hours: int, field: str) -> HourlySeries:
    return HourlySeries(begin, hours, {t: float(getattr(m, field)) for t, m in cells.items()})


class _Run:
    """One pass of the detectors over the dirty hours, inside ``uow``."""

    def __init__(self, uow: UnitOfWork, settings: AggregationSettings, now: datetime) -> None:
        self.uow = uow
        self.settings = settings
        self.now = now
        self.repo = DetectionRepository(uow.session)
        self.insights = InsightRepository(uow.session)
        self.raised: list[Insight] = []
        self.names: dict[str, str] = {}
        self.spiking: dict[str, _Spiking] = {}

    async def join_episode(self, detector: str, subject: str, hour: int, cooldown: int) -> tuple[Episode, bool]:
        """The episode ``hour`` belongs to, extended to it; or a new one opened at it (then True)."""
        known = find_episode(await self.repo.episodes(detector, subject), hour, cooldown)
        if known is not None:
            await self.repo.extend_episode(known, hour)
            return Episode(known.detector, known.subject, known.first, max(known.last, hour), known.insight_id), False
        episode = Episode(detector, subject, hour, hour, episode_insight_id(detector, subject, hour))
        await self.repo.open_episode(episode)
        return episode, True

    async def episode(self, detector: str, subject: str, hour: int, cooldown: int,
                      build: Callable[[str], Any]) -> None:
        """Open an episode and raise its insight, or extend the episode ``hour`` belongs to."""
        episode, opened = await self.join_episode(detector, subject, hour, cooldown)
        if opened:
            await self.publish(await build(episode.insight_id), new=True)

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
        release = await self.repo.release_before(first_item, self.settings.release_window_hours * 3600)
        if release is None:
            return None
        released_at = datetime.fromisoformat(release["released_at"])
        return ReleaseNote(release["release_id"], release["version"], release.get("kind", "release"),
                           int((first_item - released_at).total_seconds() // 60))

    async def release_note(self, first_item: datetime) -> tuple[str, dict[str, Any]]:
        note = await self.release(first_item)
        return (note.phrase, note.metrics()) if note is not None else ("", {})

    def label(self, dimension: str, key: str) -> str:
        if dimension == "theme":
            return self.names.get(key, key)
        if dimension == "product_area":
            return f"Product area {key}"
        return "All feedback"

    async def run(self) -> int:
        dirty = await self.repo.dirty_hours()
        if dirty:
            first = await self.repo.first_hour()
            if first is not None:
                await self.judge(dirty, first)
            await self.repo.clear_dirty(dirty)
        await self.emerging()
        return len(self.raised)

    async def judge(self, dirty: dict[int, int], first: int) -> None:
        spike, drops = self.settings.spike_config(), self.settings.drop_config()
        lookback = max(spike.history_days, 2 * drops.kpi_window_days, drops.baseline_days + 1) * DAY
        begin, end = min(dirty) - lookback, max(dirty) + HOUR
        hours = (end - begin) // HOUR
        cells = await self.repo.hourly(("all", "theme", "product_area"), begin, end)
        self.names = await self.repo.theme_names(k for d, k in cells if d == "theme")
        series = {dk: _Series(_series(c, begin, hours, "count"), _series(c, begin, hours, "negative"))
                  for dk, c in cells.items()}
        overall = series.get(("all", "*"))
        if overall is None:
            return
        all_cells = cells[("all", "*")]
        kpi = {f: _series(all_cells, begin, hours, f) for f in
               ("nps_promoters", "nps_detractors", "nps_responses", "csat_satisfied", "csat_responses")}
        # Most specific first, so that a parent theme or product area does not repeat its child's spike.
        keys = sorted((dk for dk in series if dk[0] != "all" and dk[1] != UNKNOWN),
                      key=lambda dk: (dk[0] != "theme", -dk[1].count("."), dk[1]))
        now_epoch = int(self.now.timestamp())
        for hour in sorted(dirty):
            if hour < first:
                continue
            elapsed = (now_epoch - hour) / HOUR if hour <= now_epoch < hour + HOUR else 1.0
            spiked: list[str] = []
            for dimension, key in keys:
                observed = int(series[(dimension, key)].count.at(hour))
                if observed < spike.min_count or any(s.startswith(key + ".") or s == key for s in spiked):
                    continue
                expected = expected_count(series[(dimension, key)].count, overall.count, hour, first, spike,
                                          elapsed=elapsed)
                if expected is None:
                    continue
                verdict = judge_spike(observed, expected, spike)
                if verdict.is_spike:
                    spiked.append(key)
                    await self.spike(dimension, key, hour)
            await self.judge_sentiment(hour, series, drops)
            await self.judge_kpis(hour, kpi, drops)
        for spiking in self.spiking.values():
            count = series[(spiking.dimension, spiking.key)].count
            await self.tell(spiking, self.tally(spiking.episode, count, overall.count, first, spike))

    async def spike(self, dimension: str, key: str, hour: int) -> None:
        """Note the episode an anomalous hour belongs to; it is told once every dirty hour is judged."""
        episode, opened = await self.join_episode("spike", f"{dimension}:{key}", hour,
                                                  self.settings.spike_cooldown_hours * HOUR)
        seen = self.spiking.get(episode.insight_id)
        if seen is not None:
            episode = Episode(episode.detector, episode.subject, episode.first,
                              max(episode.last, seen.episode.last), episode.insight_id)
        self.spiking[episode.insight_id] = _Spiking(episode, opened or (seen is not None and seen.opened),
                                                    dimension, key)

    def tally(self, episode: Episode, count: HourlySeries, overall: HourlySeries, first_seen: int,
              config: SpikeConfig) -> SpikeTally:
        """The episode's items and their expected number, summed over its hours (the running one in part)."""
        now_epoch = int(self.now.timestamp())
        observed, expected = 0, 0.0
        for hour in range(max(episode.first, count.start), episode.last + HOUR, HOUR):
            observed += int(count.at(hour))
            elapsed = (now_epoch - hour) / HOUR if hour <= now_epoch < hour + HOUR else 1.0
            baseline = expected_count(count, overall, hour, first_seen, config, elapsed=elapsed)
            expected += baseline if baseline is not None else config.min_expected
        return SpikeTally(observed, expected)

    async def tell(self, spiking: _Spiking, tally: SpikeTally) -> None:
        """Raise a new episode's spike insight, or re-publish a grown one's as its next revision."""
        episode, dimension, key = spiking.episode, spiking.dimension, spiking.key
        start, end = _at(episode.first), _at(episode.last + HOUR)
        evidence = await self.repo.evidence(dimension, key, start, end, limit=EVIDENCE_CAP)
        first_item = await self.repo.first_created(evidence) or start
        context = SpikeContext(self.label(dimension, key), dimension, key, first_item,
                               await self.release(first_item), self.settings.spike_nb_size, self.settings.spike_alpha)
        told = {"window": {"from": start, "to": end}, "evidence": evidence}
        if spiking.opened:
            story = tell_spike(tally, context)
            await self.publish(Insight.model_validate({
                "insight_id": episode.insight_id, "type": "spike", "title": story.title,
                "theme": key if dimension == "theme" else None, "metrics": dict(story.metrics),
                "severity": story.severity, "created_at": self.now, **told}), new=True)
            return
        stored = await self.insights.published(episode.insight_id)
        if stored is None:  # its insight was removed from the store by hand: nothing to revise
            return
        severity, data = stored
        metrics = data.get("metrics") or {}
        first_observed = metrics.get("first_observed")
        published = PublishedSpike(int(data.get("revision") or 1), int(metrics.get("observed") or 0), severity,
                                   int(first_observed) if first_observed is not None else None)
        revised = revise_spike(published, tally, context)
        if revised is None:
            return
        await self.publish(Insight.model_validate({
            **data, "title": revised.title, "metrics": dict(revised.metrics), "severity": revised.severity,
            "revision": revised.revision, "updated_at": self.now, **told}), new=False)

    async def judge_sentiment(self, hour: int, series: dict[tuple[str, str], _Series], drops: Any) -> None:
        end = hour + HOUR
        start = end - drops.window_hours * HOUR
        base = start - drops.baseline_days * DAY
        for (dimension, key), s in series.items():
            if dimension == "product_area" or key == UNKNOWN:
                continue
            n_now = int(s.count.total(start, end))
            if n_now < drops.min_items:
                continue
            verdict = sentiment_drop(int(s.negative.total(start, end)), n_now, int(s.negative.total(base, start)),
                                     int(s.count.total(base, start)), drops)
            if not verdict.is_drop:
                continue

            async def build(insight_id: str, dimension: str = dimension, key: str = key,
                            verdict: Any = verdict, n_now: int = n_now) -> Insight:
                evidence = await self.repo.evidence(dimension, key, _at(start), _at(end), limit=200)
                negative_ids = evidence  # the window's items; the negative ones lead the dashboard's drill-down
                first_item = await self.repo.first_created(negative_ids) or _at(start)
                note, release = await self.release_note(first_item)
                return Insight.model_validate({
                    "insight_id": insight_id, "type": "sentiment_drop",
                    "title": f"{self.label(dimension, key)}: negative share {verdict.current:.0%} in "
                             f"{drops.window_hours} h, up from {verdict.previous:.0%}{note}",
                    "theme": key if dimension == "theme" else None,
                    "window": {"from": _at(start), "to": _at(end)},
                    "metrics": {"observed": verdict.current, "expected": verdict.previous, "z": verdict.z,
                                "items": n_now, "dimension": dimension, "key": key, **release},
                    "severity": "critical" if verdict.current - verdict.previous >= 0.35 else "warning",
                    "evidence": evidence[:50], "created_at": self.now})

            await self.episode("sentiment_drop", f"{dimension}:{key}", hour, drops.window_hours * HOUR, build)

    async def judge_kpis(self, hour: int, kpi: dict[str, HourlySeries], drops: Any) -> None:
        end = hour + HOUR
        start = end - drops.kpi_window_days * DAY
        prev = start - drops.kpi_window_days * DAY

        def total(field: str, a: int, b: int) -> int:
            return int(kpi[field].total(a, b))

        checks = [
            ("NPS", nps_drop((total("nps_promoters", start, end), total("nps_detractors", start, end),
                              total("nps_responses", start, end)),
                             (total("nps_promoters", prev, start), total("nps_detractors", prev, start),
                              total("nps_responses", prev, start)), drops), total("nps_responses", start, end)),
            ("CSAT", csat_drop((total("csat_satisfied", start, end), total("csat_responses", start, end)),
                               (total("csat_satisfied", prev, start), total("csat_responses", prev, start)), drops),
             total("csat_responses", start, end)),
        ]
        for name, verdict, responses in checks:
            if not verdict.is_drop:
                continue

            async def build(insight_id: str, name: str = name, verdict: Any = verdict,
                            responses: int = responses) -> Insight:
                unit = "" if name == "NPS" else "%"
                return Insight.model_validate({
                    "insight_id": insight_id, "type": "kpi_drop",
                    "title": f"{name} fell to {verdict.current:g}{unit} over {drops.kpi_window_days} days, "
                             f"from {verdict.previous:g}{unit}",
                    "window": {"from": _at(start), "to": _at(end)},
                    "metrics": {"kpi": name.lower(), "observed": verdict.current, "expected": verdict.previous,
                                "z": verdict.z, "responses": responses},
                    "severity": "critical" if verdict.previous - verdict.current >= 25 else "warning",
                    "evidence": [], "created_at": self.now})

            await self.episode("kpi_drop", name.lower(), hour, drops.kpi_window_days * DAY, build)

    async def emerging(self) -> None:
        settings = self.settings
        since = self.now - timedelta(days=settings.emerging_window_days)
        names: dict[str, str] | None = None
        for cluster in await self.repo.unflagged_clusters(settings.emerging_min_items):
            recent = await self.repo.cluster_items_since(cluster.cluster_id, since)
            if recent < settings.emerging_min_items:
                continue
            names = names if names is not None else await self.repo.all_theme_names()
            duplicate_of = await self.repeats_theme(cluster.cluster_id, cluster.terms, recent, since, names)
            if duplicate_of is not None:
                await self.repo.mark_duplicate(cluster.cluster_id, duplicate_of, cluster.items)
                continue
            insight_id = episode_insight_id("emerging_theme", cluster.cluster_id, 0)
            evidence = await self.repo.evidence("cluster", cluster.cluster_id, since, self.now + timedelta(days=1))
            terms = ", ".join(f"“{t}”" for t in cluster.terms[:5]) or cluster.cluster_id
            insight = Insight.model_validate({
                "insight_id": insight_id, "type": "emerging_theme",
                "title": f"Emerging theme: {terms} — {recent} similar items in {settings.emerging_window_days} days "
                         "that fit no known theme",
                "window": {"from": since, "to": self.now},
                "metrics": {"observed": recent, "cluster_id": cluster.cluster_id, "items": cluster.items,
                            "terms": ", ".join(cluster.terms[:10])},
                "severity": "warning" if recent >= 3 * settings.emerging_min_items else "info",
                "evidence": evidence, "created_at": self.now})
            await self.repo.flag_cluster(cluster.cluster_id, insight_id)
            await self.publish(insight, new=True)

    async def repeats_theme(self, cluster_id: str, terms: list[str], recent: int, since: datetime,
                            names: dict[str, str]) -> str | None:
        """The existing theme the cluster repeats (``domain/emerging.py``), or None when it is new."""
        themed, themes = await self.repo.cluster_themes(cluster_id, since)
        vocabulary_since = self.now - timedelta(days=VOCABULARY_DAYS)
        use = {}
        for term in terms_to_check(terms):
            items, by_theme = await self.repo.term_use(cluster_id, term_words(term), vocabulary_since)
            use[term] = TermUse(items, by_theme)
        verdict = judge_cluster(ClusterFacts(cluster_id, tuple(terms), recent, themed, themes), names, use)
        if not verdict.emerging:
            log.info("cluster repeats an existing theme; no emerging theme raised", cluster_id=cluster_id,
                     theme=verdict.duplicate_of, reason=verdict.reason)
        return verdict.duplicate_of


async def run_detectors(uow: UnitOfWork, settings: AggregationSettings, now: datetime) -> list[Insight]:
    """Judge every dirty hour and every growing cluster; returns the insights raised or revised (``revision`` >
    1), not yet committed."""
    run = _Run(uow, settings, now)
    await run.run()
    return run.raised


class DetectionWorker:
    """Runs :func:`run_detectors` every ``interval`` seconds in its own unit of work until stopped."""

    def __init__(self, runtime: ServiceRuntime, settings: AggregationSettings) -> None:
        self.runtime = runtime
        self.settings = settings
        self._stopping = asyncio.Event()
        self.runs = 0

    async def run_once(self) -> list[Insight]:
        """One run, if this copy holds the detector lease; ``[]`` without running when another copy does."""
        async with leader_lease(self.runtime.engine, DETECTOR_LEASE) as held:
            if not held:
                return []
            async with self.runtime.uow() as uow:
                raised = await run_detectors(uow, self.settings, datetime.now(UTC))
                await uow.commit()
        self.runs += 1
        for insight in raised:
            log.info("insight raised" if insight.revision == 1 else "insight revised", type=insight.type,
                     title=insight.title, insight_id=str(insight.insight_id), revision=insight.revision)
        return raised

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception as exc:  # a failed run leaves its hours dirty; the next run retries them
                log.warning("detectors failed, retrying next interval", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.settings.detect_interval_seconds)

    def stop(self) -> None:
        self._stopping.set()


def detection_worker(settings: AggregationSettings) -> Callable[[ServiceRuntime], Worker]:
    def make(runtime: ServiceRuntime) -> Worker:
        return DetectionWorker(runtime, settings)
    return make

