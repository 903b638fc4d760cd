"""Which dirty hours are anomalous, and which anomalies raise an insight. Pure.

The detectors' decision, in two steps around one read of the stored episodes:

1. :func:`find_anomalies` judges each dirty hour (from the first hour with items) against the hourly rollups
   (:class:`HourlyRollups`): a **spike** per theme and product area (``domain/spike.py``), most specific first,
   so that a parent theme, or a product area of the same name, does not repeat its child's spike in the same
   hour; a **sentiment drop** per theme and overall, and an **NPS** or **CSAT drop** (``domain/drops.py``).
2. :func:`plan_episodes` folds those anomalies, in order, into the episodes stored for their subjects
   (``domain/episodes.py``): one within an episode's cooldown extends it, any other opens a new one. A drop
   is raised when it opens its episode; every spike episode the run touched is told once all hours are judged
   (a new one raised, a grown one revised: ``domain/spike_insight.py``).

What each insight says (title, severity, metrics) is ``domain/insights.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from aggregation.domain.drops import DropConfig, DropVerdict, csat_drop, nps_drop, sentiment_drop
from aggregation.domain.episodes import Episode, episode_insight_id, find_episode
from aggregation.domain.rollups import UNKNOWN, Measures
from aggregation.domain.series import DAY, HOUR, HourlySeries
from aggregation.domain.spike import SpikeConfig, expected_count, judge_spike
from aggregation.domain.spike_insight import SpikeTally

__all__ = [
    "DIMENSIONS",
    "KPI_DROP",
    "SENTIMENT_DROP",
    "SPIKE",
    "Anomaly",
    "DetectorConfig",
    "EpisodePlan",
    "HourlyRollups",
    "SpikeEpisode",
    "dirty_windows",
    "find_anomalies",
    "hours_to_read",
    "plan_episodes",
    "spike_tally",
]

SPIKE, SENTIMENT_DROP, KPI_DROP = "spike", "sentiment_drop", "kpi_drop"
#: The rollup dimensions the detectors read.
DIMENSIONS = ("all", "theme", "product_area")
_KPI_FIELDS = ("nps_promoters", "nps_detractors", "nps_responses", "csat_satisfied", "csat_responses")


@dataclass(frozen=True)
class DetectorConfig:
    spike: SpikeConfig = field(default_factory=SpikeConfig)
    drops: DropConfig = field(default_factory=DropConfig)
    spike_cooldown_hours: int = 6

    def cooldown(self, detector: str) -> int:
        """Seconds within which another anomalous hour of the same subject joins an episode of ``detector``."""
        if detector == SPIKE:
            return self.spike_cooldown_hours * HOUR
        if detector == SENTIMENT_DROP:
            return self.drops.window_hours * HOUR
        return self.drops.kpi_window_days * DAY


def _lookback(config: DetectorConfig) -> int:
    """Seconds of history before an hour that judging it reads (the longest any detector needs)."""
    drops = config.drops
    return max(config.spike.history_days, 2 * drops.kpi_window_days, drops.baseline_days + 1) * DAY


def hours_to_read(dirty: Iterable[int], config: DetectorConfig) -> tuple[int, int]:
    """The [begin, end) of the hourly rollups that judging the ``dirty`` hours needs (their history included)."""
    hours = list(dirty)
    return min(hours) - _lookback(config), max(hours) + HOUR


def dirty_windows(dirty: Iterable[int], config: DetectorConfig) -> list[list[int]]:
    """The ``dirty`` hours in ascending windows that each span less than the history an hour needs.

    A run judges one window at a time, so what it holds at once is the rollups of at most twice that history
    (the window and the history of its first hour), however far apart the dirty hours are: after a backfill of
    two years they span all of it. All the windows together read at most twice what one read of the whole span
    would."""
    span = _lookback(config)
    windows: list[list[int]] = []
    for hour in sorted(dirty):
        if windows and hour < windows[-1][0] + span:
            windows[-1].append(hour)
        else:
            windows.append([hour])
    return windows


class HourlyRollups:
    """The hourly series the detectors judge, from the rollup cells ``(dimension, key) -> {hour: measures}``
    of [begin, end); ``overall`` (dimension ``all``) is None when no hour of the span has an item."""

    def __init__(self, cells: Mapping[tuple[str, str], Mapping[int, Measures]], begin: int, end: int) -> None:
        hours = (end - begin) // HOUR

        def series(of: Mapping[int, Measures], name: str) -> HourlySeries:
            return HourlySeries(begin, hours, {t: float(getattr(m, name)) for t, m in of.items()})

        self.count = {dk: series(c, "count") for dk, c in cells.items()}
        self.negative = {dk: series(c, "negative") for dk, c in cells.items()}
        self.overall = self.count.get(("all", "*"))
        every = cells.get(("all", "*"), {})
        self.kpi = {name: series(every, name) for name in _KPI_FIELDS}
        # Which subjects have an item in each hour: most have none in most hours, and a subject without an item
        # is neither a spike nor a drop, so the detectors judge only these (a run over a backfill judges
        # thousands of hours, each against thousands of subjects).
        self._order = {dk: n for n, dk in enumerate(cells)}
        self._with_items: dict[int, list[tuple[str, str]]] = {}
        for dk, of in cells.items():
            for hour, measures in of.items():
                if measures.count and begin <= hour < end:
                    self._with_items.setdefault(hour, []).append(dk)

    def with_items(self, begin: int, end: int) -> list[tuple[str, str]]:
        """The subjects with an item in some hour of [begin, end), in the order of the cells given."""
        found = {dk for hour in range(begin - begin % HOUR, end, HOUR) for dk in self._with_items.get(hour, ())}
        return sorted(found, key=self._order.__getitem__)

    def kpi_total(self, name: str, begin: int, end: int) -> int:
        return int(self.kpi[name].total(begin, end))


@dataclass(frozen=True)
class Anomaly:
    """An anomalous hour of one subject. Drops carry their verdict, the window judged and its ``volume``
    (items for a sentiment drop, ratings for a KPI drop); a KPI drop's subject is ``nps`` or ``csat``."""

    detector: str
    subject: str
    hour: int
    dimension: str = ""
    key: str = ""
    verdict: DropVerdict | None = None
    volume: int = 0
    start: int = 0
    end: int = 0


def _elapsed(hour: int, now: int) -> float:
    """The share of ``hour`` that has passed: 1.0 for a past hour, part of it for the running one."""
    return (now - hour) / HOUR if hour <= now < hour + HOUR else 1.0


def _spikes(rollups: HourlyRollups, hour: int, first: int, now: int, config: SpikeConfig) -> list[Anomaly]:
    """The spiking subjects of ``hour``; a key is skipped once one of its children (``key.``…) spiked."""
    assert rollups.overall is not None
    # Most specific first, so that a parent theme or product area does not repeat its child's spike.
    keys = sorted((dk for dk in rollups.with_items(hour, hour + HOUR) if dk[0] != "all" and dk[1] != UNKNOWN),
                  key=lambda dk: (dk[0] != "theme", -dk[1].count("."), dk[1]))
    spiked: list[str] = []
    found = []
    for dimension, key in keys:
        count = rollups.count[(dimension, key)]
        observed = int(count.at(hour))
        if observed < config.min_count or any(s.startswith(key + ".") or s == key for s in spiked):
            continue
        expected = expected_count(count, rollups.overall, hour, first, config, elapsed=_elapsed(hour, now))
        if expected is None:
            continue
        if judge_spike(observed, expected, config).is_spike:
            spiked.append(key)
            found.append(Anomaly(SPIKE, f"{dimension}:{key}", hour, dimension, key))
    return found


def _sentiment_drops(rollups: HourlyRollups, hour: int, drops: DropConfig) -> list[Anomaly]:
    """Themes (and all feedback) whose negative share of the last ``window_hours`` rose against the baseline."""
    end = hour + HOUR
    start = end - drops.window_hours * HOUR
    base = start - drops.baseline_days * DAY
    found = []
    for dimension, key in rollups.with_items(start, end):
        if dimension == "product_area" or key == UNKNOWN:
            continue
        count = rollups.count[(dimension, key)]
        n_now = int(count.total(start, end))
        if n_now < drops.min_items:
            continue
        negative = rollups.negative[(dimension, key)]
        verdict = sentiment_drop(int(negative.total(start, end)), n_now, int(negative.total(base, start)),
                                 int(count.total(base, start)), drops)
        if verdict.is_drop:
            found.append(Anomaly(SENTIMENT_DROP, f"{dimension}:{key}", hour, dimension, key, verdict, n_now,
                                 start, end))
    return found


def _kpi_drops(rollups: HourlyRollups, hour: int, drops: DropConfig) -> list[Anomaly]:
    """NPS and CSAT of the last ``kpi_window_days`` against the same length before."""
    end = hour + HOUR
    start = end - drops.kpi_window_days * DAY
    prev = start - drops.kpi_window_days * DAY

    now_, before = ({name: rollups.kpi_total(name, a, b) for name in _KPI_FIELDS} for a, b in ((start, end),
                                                                                                (prev, start)))
    checks = [
        ("nps", nps_drop((now_["nps_promoters"], now_["nps_detractors"], now_["nps_responses"]),
                         (before["nps_promoters"], before["nps_detractors"], before["nps_responses"]), drops),
         now_["nps_responses"]),
        ("csat", csat_drop((now_["csat_satisfied"], now_["csat_responses"]),
                           (before["csat_satisfied"], before["csat_responses"]), drops), now_["csat_responses"]),
    ]
    return [Anomaly(KPI_DROP, name, hour, verdict=verdict, volume=responses, start=start, end=end)
            for name, verdict, responses in checks if verdict.is_drop]


def find_anomalies(rollups: HourlyRollups, dirty: Iterable[int], first: int, now: int,
                   config: DetectorConfig) -> list[Anomaly]:
    """The anomalies of the ``dirty`` hours, hour by hour (spikes, then sentiment drops, then KPI drops).

    ``first`` is the first hour with any item (hours before it are not judged); ``now`` (epoch seconds) tells
    how much of the running hour has passed. Nothing is anomalous while the span holds no item at all.
    """
    if rollups.overall is None:
        return []
    found: list[Anomaly] = []
    for hour in sorted(dirty):
        if hour < first:
            continue
        found += _spikes(rollups, hour, first, now, config.spike)
        found += _sentiment_drops(rollups, hour, config.drops)
        found += _kpi_drops(rollups, hour, config.drops)
    return found


@dataclass(frozen=True)
class SpikeEpisode:
    """A spike episode an anomalous hour of this run belongs to, as it stands after the run; ``opened`` when
    this run opened it (then it is raised, else revised if it has grown)."""

    episode: Episode
    opened: bool
    dimension: str
    key: str


@dataclass
class EpisodePlan:
    """What the anomalies do to the episodes: those to insert and to extend in the store (as they stand after
    the run), the drops that opened an episode (each one insight to raise, in order), and the spike episodes
    to tell."""

    opened: list[Episode] = field(default_factory=list)
    extended: list[Episode] = field(default_factory=list)
    drops: list[tuple[Anomaly, Episode]] = field(default_factory=list)
    spikes: list[SpikeEpisode] = field(default_factory=list)


def plan_episodes(anomalies: Sequence[Anomaly], stored: Mapping[tuple[str, str], Sequence[Episode]],
                  config: DetectorConfig) -> EpisodePlan:
    """Fold ``anomalies`` (in order) into the ``stored`` episodes of their (detector, subject).

    An anomaly within the cooldown of an episode (the first by ``first`` when several are) extends it to its
    hour; any other opens an episode at its hour, whose insight id is derived from (detector, subject, hour).
    """
    episodes = {subject: sorted(known, key=lambda e: e.first) for subject, known in stored.items()}
    stored_last = {e.insight_id: e.last for known in stored.values() for e in known}
    opened: set[str] = set()
    plan = EpisodePlan()
    spikes: dict[str, tuple[str, str]] = {}
    for anomaly in anomalies:
        mine = episodes.setdefault((anomaly.detector, anomaly.subject), [])
        known = find_episode(mine, anomaly.hour, config.cooldown(anomaly.detector))
        if known is not None:
            episode = replace(known, last=max(known.last, anomaly.hour))
            mine[mine.index(known)] = episode
        else:
            episode = Episode(anomaly.detector, anomaly.subject, anomaly.hour, anomaly.hour,
                              episode_insight_id(anomaly.detector, anomaly.subject, anomaly.hour))
            mine.append(episode)
            mine.sort(key=lambda e: e.first)
            opened.add(episode.insight_id)
            if anomaly.detector != SPIKE:
                plan.drops.append((anomaly, episode))
        if anomaly.detector == SPIKE:
            spikes.setdefault(episode.insight_id, (anomaly.dimension, anomaly.key))
    final = {e.insight_id: e for known in episodes.values() for e in known}
    plan.opened = [final[i] for i in final if i in opened]
    plan.extended = [e for i, e in final.items() if i in stored_last and e.last != stored_last[i]]
    plan.spikes = [SpikeEpisode(final[i], i in opened, dimension, key) for i, (dimension, key) in spikes.items()]
    return plan


def spike_tally(episode: Episode, count: HourlySeries, overall: HourlySeries, first: int, now: int,
                config: SpikeConfig) -> SpikeTally:
    """The episode's items and their expected number, summed over its hours (the running one in part); an hour
    without enough history expects ``min_expected``."""
    observed, expected = 0, 0.0
    for hour in range(max(episode.first, count.start), episode.last + HOUR, HOUR):
        observed += int(count.at(hour))
        baseline = expected_count(count, overall, hour, first, config, elapsed=_elapsed(hour, now))
        expected += baseline if baseline is not None else config.min_expected
    return SpikeTally(observed, expected)
