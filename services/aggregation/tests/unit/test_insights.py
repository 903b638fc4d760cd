"""The detectors' decision without a store: which hours are anomalous (parent-theme suppression included), how
anomalies fold into episodes, and what each insight says (``domain/anomalies.py``, ``domain/insights.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aggregation.domain.anomalies import (
    KPI_DROP,
    SENTIMENT_DROP,
    SPIKE,
    Anomaly,
    DetectorConfig,
    HourlyRollups,
    SpikeEpisode,
    dirty_windows,
    find_anomalies,
    hours_to_read,
    plan_episodes,
    spike_tally,
)
from aggregation.domain.drops import DropVerdict
from aggregation.domain.episodes import Episode, episode_insight_id
from aggregation.domain.insights import (
    emerging_insight,
    kpi_drop_insight,
    label,
    release_note,
    sentiment_drop_insight,
    spike_insight,
)
from aggregation.domain.rollups import UNKNOWN, Measures
from aggregation.domain.series import DAY, HOUR, HourlySeries
from aggregation.domain.spike import SpikeConfig
from aggregation.domain.spike_insight import ReleaseNote, SpikeTally

T0 = int(datetime(2025, 3, 10, tzinfo=UTC).timestamp())  # a Monday, 00:00 UTC
NOW = datetime(2025, 3, 10, 12, 30, tzinfo=UTC)
CONFIG = DetectorConfig()
Cells = dict[tuple[str, str], dict[int, Measures]]


def _steady(keys: list[tuple[str, str]], begin: int, end: int, every: int = 3) -> Cells:
    """One item every ``every`` hours for each key, and their sum under ("all", "*")."""
    cells: Cells = {("all", "*"): {}}
    for hour in range(begin, end, HOUR):
        if (hour - begin) // HOUR % every:
            continue
        for key in keys:
            cells.setdefault(key, {})[hour] = Measures(count=1)
        cells[("all", "*")][hour] = Measures(count=len(keys))
    for key in keys:
        cells.setdefault(key, {})
    return cells


def _burst(cells: Cells, hour: int, counts: dict[tuple[str, str], int]) -> None:
    for key, n in counts.items():
        cells[key][hour] = Measures(count=n)
    cells[("all", "*")][hour] = Measures(count=sum(counts.values()))


def _judge(cells: Cells, dirty: list[int], first: int, now: int | None = None) -> list[Anomaly]:
    begin, end = hours_to_read(dirty, CONFIG)
    return find_anomalies(HourlyRollups(cells, begin, end), dirty, first, now or int(NOW.timestamp()), CONFIG)


# -- which hours are anomalous ------------------------------------------------------------------------------------


def test_the_span_read_covers_the_longest_history_a_detector_needs() -> None:
    begin, end = hours_to_read([T0 + 5 * HOUR, T0 + 2 * HOUR], CONFIG)
    assert (begin, end) == (T0 + 2 * HOUR - 28 * DAY, T0 + 6 * HOUR)  # spike history (28 d) > 2 x 7 d of KPIs
    short = DetectorConfig(spike=SpikeConfig(history_days=3))
    assert hours_to_read([T0], short) == (T0 - 14 * DAY, T0 + HOUR)


def test_dirty_hours_are_judged_in_windows_shorter_than_the_history_each_reads() -> None:
    hours = [T0 + 40 * DAY, T0, T0 + 27 * DAY, T0 + 28 * DAY - HOUR, T0 + 28 * DAY, T0 + 400 * DAY]
    windows = dirty_windows(hours, CONFIG)  # the history read before an hour is 28 days (above)
    assert windows == [[T0, T0 + 27 * DAY, T0 + 28 * DAY - HOUR], [T0 + 28 * DAY, T0 + 40 * DAY], [T0 + 400 * DAY]]
    assert all(hours_to_read(w, CONFIG)[1] - hours_to_read(w, CONFIG)[0] <= 2 * 28 * DAY for w in windows)
    assert dirty_windows([T0], DetectorConfig(spike=SpikeConfig(history_days=3))) == [[T0]]
    assert [len(w) for w in dirty_windows(range(T0, T0 + 30 * DAY, HOUR), DetectorConfig(
        spike=SpikeConfig(history_days=3)))] == [14 * 24, 14 * 24, 2 * 24]  # 14 days: twice the KPI window
    assert dirty_windows([], CONFIG) == []


def test_a_child_theme_s_spike_suppresses_its_parent_and_product_area_but_not_a_sibling() -> None:
    login, account, billing, area = ("theme", "account.login"), ("theme", "account"), ("theme", "billing"), \
        ("product_area", "account")
    first = T0 - 14 * DAY
    hour = T0 + 10 * HOUR
    cells = _steady([login, account, billing, area], first, hour)
    _burst(cells, hour, {login: 30, account: 30, billing: 30, area: 30})
    spikes = [a for a in _judge(cells, [hour], first) if a.detector == SPIKE]
    assert [(a.subject, a.hour) for a in spikes] == [("theme:account.login", hour), ("theme:billing", hour)]
    assert (spikes[0].dimension, spikes[0].key) == ("theme", "account.login")


def test_a_parent_spikes_on_its_own_when_its_child_does_not() -> None:
    login, account = ("theme", "account.login"), ("theme", "account")
    first = T0 - 14 * DAY
    hour = T0 + 10 * HOUR
    cells = _steady([login, account], first, hour)
    _burst(cells, hour, {login: 1, account: 30})
    assert [a.subject for a in _judge(cells, [hour], first)] == ["theme:account"]


def test_a_spike_needs_min_count_items_and_unknown_is_never_judged() -> None:
    login, unknown = ("theme", "account.login"), ("theme", UNKNOWN)
    first = T0 - 14 * DAY
    hour = T0 + 10 * HOUR
    cells = _steady([login, unknown], first, hour, every=24)
    _burst(cells, hour, {login: 4, unknown: 50})  # 4 < min_count (5), however rare
    assert _judge(cells, [hour], first) == []
    _burst(cells, hour, {login: 5, unknown: 50})
    assert [a.subject for a in _judge(cells, [hour], first)] == ["theme:account.login"]


def test_hours_before_the_first_item_and_an_empty_span_are_not_judged() -> None:
    login = ("theme", "account.login")
    first = T0 - 14 * DAY
    hour = T0 + 10 * HOUR
    cells = _steady([login], first, hour)
    _burst(cells, hour, {login: 30})
    assert _judge(cells, [hour], first=hour + HOUR) == []
    assert _judge({}, [hour], first) == []
    assert _judge({login: {hour: Measures(count=30)}}, [hour], first) == [], "no overall series: nothing judged"


def test_too_little_history_is_no_spike() -> None:
    login = ("theme", "account.login")
    hour = T0 + 10 * HOUR
    first = hour - 2 * DAY  # under min_history_days (3)
    cells = _steady([login], first, hour)
    _burst(cells, hour, {login: 30})
    assert _judge(cells, [hour], first) == []


def _sentiment_cells(key: tuple[str, str], hour: int, negative_hours: int) -> Cells:
    """An item an hour for eight days, the last ``negative_hours`` of them negative; the same under "all"."""
    cells: Cells = {key: {}, ("all", "*"): {}}
    for t in range(hour - 8 * DAY + HOUR, hour + HOUR, HOUR):
        negative = 1 if t > hour - negative_hours * HOUR else 0
        cells[key][t] = cells[("all", "*")][t] = Measures(count=1, negative=negative)
    return cells


def test_a_rising_negative_share_is_a_sentiment_drop_of_the_theme_and_of_all_feedback() -> None:
    hour = T0 + 10 * HOUR
    cells = _sentiment_cells(("theme", "billing"), hour, negative_hours=12)
    cells[("product_area", "billing")] = dict(cells[("theme", "billing")])
    drops = [a for a in _judge(cells, [hour], hour - 8 * DAY) if a.detector == SENTIMENT_DROP]
    assert [a.subject for a in drops] == ["theme:billing", "all:*"], "product areas have no sentiment drop"
    drop = drops[0]
    assert drop.verdict is not None and (drop.verdict.current, drop.verdict.previous) == (0.5, 0.0)
    assert (drop.volume, drop.start, drop.end) == (24, hour + HOUR - 24 * HOUR, hour + HOUR)


def test_a_small_rise_of_the_negative_share_is_no_drop() -> None:
    hour = T0 + 10 * HOUR
    cells = _sentiment_cells(("theme", "billing"), hour, negative_hours=3)  # 3 of 24: 12.5 points
    assert [a for a in _judge(cells, [hour], hour - 8 * DAY) if a.detector == SENTIMENT_DROP] == []


def test_an_nps_fall_is_a_kpi_drop() -> None:
    hour = T0 + 10 * HOUR
    cells: Cells = {("all", "*"): {
        hour - 10 * DAY: Measures(count=40, nps_responses=40, nps_promoters=30, nps_detractors=5),
        hour - 2 * DAY: Measures(count=40, nps_responses=40, nps_promoters=5, nps_detractors=30),
    }}
    drops = [a for a in _judge(cells, [hour], hour - 20 * DAY) if a.detector == KPI_DROP]
    assert [(a.subject, a.volume) for a in drops] == [("nps", 40)]
    assert drops[0].verdict is not None and (drops[0].verdict.current, drops[0].verdict.previous) == (-62.5, 62.5)


# -- episodes ------------------------------------------------------------------------------------------------------


def _spike(hour: int, key: str = "account.login") -> Anomaly:
    return Anomaly(SPIKE, f"theme:{key}", hour, "theme", key)


def _drop(hour: int, key: str = "billing") -> Anomaly:
    return Anomaly(SENTIMENT_DROP, f"theme:{key}", hour, "theme", key, DropVerdict(0.5, 0.1, 5.0, True), 24,
                   hour - 23 * HOUR, hour + HOUR)


def _stored(detector: str, subject: str, first: int, last: int) -> Episode:
    return Episode(detector, subject, first, last, episode_insight_id(detector, subject, first))


def test_a_new_drop_opens_an_episode_and_is_raised() -> None:
    plan = plan_episodes([_drop(T0)], {}, CONFIG)
    opened = Episode(SENTIMENT_DROP, "theme:billing", T0, T0, episode_insight_id(SENTIMENT_DROP, "theme:billing", T0))
    assert plan.opened == [opened] and plan.extended == [] and plan.spikes == []
    assert plan.drops == [(_drop(T0), opened)]


def test_a_drop_within_its_episode_s_cooldown_extends_it_and_raises_nothing() -> None:
    stored = _stored(SENTIMENT_DROP, "theme:billing", T0 - 30 * HOUR, T0 - 20 * HOUR)
    plan = plan_episodes([_drop(T0)], {(SENTIMENT_DROP, "theme:billing"): [stored]}, CONFIG)
    assert plan.opened == [] and plan.drops == []
    assert plan.extended == [Episode(SENTIMENT_DROP, "theme:billing", T0 - 30 * HOUR, T0, stored.insight_id)]
    # one hour past the cooldown (24 h) is a new episode
    plan = plan_episodes([_drop(T0 + 5 * HOUR)], {(SENTIMENT_DROP, "theme:billing"): [stored]}, CONFIG)
    assert [e.first for e in plan.opened] == [T0 + 5 * HOUR] and len(plan.drops) == 1 and plan.extended == []


def test_an_hour_inside_a_stored_episode_changes_nothing() -> None:
    stored = _stored(SPIKE, "theme:account.login", T0, T0 + 3 * HOUR)
    plan = plan_episodes([_spike(T0 + HOUR)], {(SPIKE, "theme:account.login"): [stored]}, CONFIG)
    assert plan.opened == [] and plan.extended == []
    assert plan.spikes == [SpikeEpisode(stored, False, "theme", "account.login")], "told again: maybe it grew"


def test_spike_hours_of_one_run_make_one_episode_told_once() -> None:
    anomalies = [_spike(T0), _spike(T0 + 2 * HOUR), _spike(T0 + 2 * HOUR, "billing"), _spike(T0 + 9 * HOUR)]
    plan = plan_episodes(anomalies, {}, CONFIG)
    login = Episode(SPIKE, "theme:account.login", T0, T0 + 2 * HOUR,
                    episode_insight_id(SPIKE, "theme:account.login", T0))
    later = Episode(SPIKE, "theme:account.login", T0 + 9 * HOUR, T0 + 9 * HOUR,
                    episode_insight_id(SPIKE, "theme:account.login", T0 + 9 * HOUR))  # 7 h on: past the 6 h cooldown
    billing = Episode(SPIKE, "theme:billing", T0 + 2 * HOUR, T0 + 2 * HOUR,
                      episode_insight_id(SPIKE, "theme:billing", T0 + 2 * HOUR))
    assert plan.spikes == [SpikeEpisode(login, True, "theme", "account.login"),
                           SpikeEpisode(billing, True, "theme", "billing"),
                           SpikeEpisode(later, True, "theme", "account.login")]
    assert sorted(plan.opened, key=lambda e: (e.subject, e.first)) == [login, later, billing]
    assert plan.drops == [] and plan.extended == []


def test_a_late_hour_just_before_an_episode_joins_it_and_an_earlier_one_opens_its_own() -> None:
    stored = _stored(SPIKE, "theme:account.login", T0, T0)
    plan = plan_episodes([_spike(T0 - 6 * HOUR), _spike(T0 - 13 * HOUR)],
                         {(SPIKE, "theme:account.login"): [stored]}, CONFIG)
    assert plan.extended == [], "joining before its first hour moves neither end"
    assert [e.first for e in plan.opened] == [T0 - 13 * HOUR]
    assert [(s.episode.first, s.opened) for s in plan.spikes] == [(T0, False), (T0 - 13 * HOUR, True)]


def test_the_oldest_matching_episode_takes_the_hour() -> None:
    old = _stored(SPIKE, "theme:account.login", T0, T0)
    new = _stored(SPIKE, "theme:account.login", T0 + 10 * HOUR, T0 + 10 * HOUR)
    plan = plan_episodes([_spike(T0 + 5 * HOUR)], {(SPIKE, "theme:account.login"): [new, old]}, CONFIG)
    assert plan.extended == [Episode(SPIKE, "theme:account.login", T0, T0 + 5 * HOUR, old.insight_id)]


def test_a_spike_tally_sums_the_episode_s_hours() -> None:
    count = HourlySeries(T0, 24, {T0 + h * HOUR: float(h) for h in range(24)})
    episode = Episode(SPIKE, "theme:x", T0 + 2 * HOUR, T0 + 4 * HOUR, "id")
    tally = spike_tally(episode, count, count, T0, int(NOW.timestamp()), SpikeConfig())
    # no history before T0: each hour expects min_expected (0.2)
    assert tally == SpikeTally(2 + 3 + 4, pytest.approx(0.6))


# -- what each insight says ----------------------------------------------------------------------------------------


def test_labels_name_the_theme_the_product_area_or_all_feedback() -> None:
    names = {"account.login": "Login & authentication"}
    assert label("theme", "account.login", names) == "Login & authentication"
    assert label("theme", "billing", names) == "billing"
    assert label("product_area", "web", names) == "Product area web"
    assert label("all", "*", names) == "All feedback"


def test_a_release_note_counts_whole_minutes_to_the_first_item() -> None:
    release = {"release_id": "r-1", "version": "4.2.1", "released_at": "2025-03-10T00:01:30+00:00"}
    note = release_note(release, datetime(2025, 3, 10, 1, 1, tzinfo=UTC))
    assert note == ReleaseNote("r-1", "4.2.1", "release", 59)
    assert release_note({**release, "kind": "incident"}, datetime(2025, 3, 10, 1, 1, tzinfo=UTC)).kind == "incident"
    assert release_note(None, datetime(2025, 3, 10, tzinfo=UTC)) is None


@pytest.mark.parametrize(("current", "previous", "severity"), [
    (0.45, 0.10, "critical"), (0.44, 0.10, "warning"), (0.95, 0.10, "critical"), (0.30, 0.10, "warning")])
def test_a_sentiment_drop_is_critical_from_a_35_point_rise(current: float, previous: float, severity: str) -> None:
    drop = Anomaly(SENTIMENT_DROP, "theme:billing", T0, "theme", "billing", DropVerdict(current, previous, 6.0, True),
                   40, T0 - 23 * HOUR, T0 + HOUR)
    insight = sentiment_drop_insight(drop, episode_insight_id(SENTIMENT_DROP, "theme:billing", T0), subject="Billing",
                                     evidence=[], release=None, window_hours=24, now=NOW)
    assert insight.severity == severity


def test_a_sentiment_drop_says_its_shares_window_and_release() -> None:
    drop = _drop(T0)
    evidence = [str(episode_insight_id("x", "y", n)) for n in range(60)]
    insight = sentiment_drop_insight(drop, episode_insight_id(SENTIMENT_DROP, "theme:billing", T0), subject="Billing",
                                     evidence=evidence, release=ReleaseNote("r-1", "4.2.1", "release", 12),
                                     window_hours=24, now=NOW)
    assert insight.title == "Billing: negative share 50% in 24 h, up from 10%, 12 minutes after release 4.2.1"
    assert insight.type == "sentiment_drop" and insight.theme == "billing" and insight.severity == "critical"
    assert insight.window.from_ == datetime(2025, 3, 9, 1, tzinfo=UTC)
    assert [str(e) for e in insight.evidence] == evidence[:50], "at most 50 items of evidence"
    metrics: dict[str, Any] = dict(insight.metrics)
    assert metrics["observed"] == 0.5 and metrics["expected"] == 0.1 and metrics["items"] == 24
    assert metrics["release_version"] == "4.2.1" and metrics["minutes_after_release"] == 12
    overall = Anomaly(SENTIMENT_DROP, "all:*", T0, "all", "*", DropVerdict(0.5, 0.1, 5.0, True), 24, T0, T0 + HOUR)
    assert sentiment_drop_insight(overall, "6f1c1b0e-0000-5000-8000-000000000000", subject="All feedback",
                                  evidence=[], release=None, window_hours=24, now=NOW).theme is None


@pytest.mark.parametrize(("subject", "current", "previous", "title", "severity"), [
    ("nps", 10.0, 35.0, "NPS fell to 10 over 7 days, from 35", "critical"),
    ("nps", 10.5, 35.0, "NPS fell to 10.5 over 7 days, from 35", "warning"),
    ("csat", 70.0, 80.0, "CSAT fell to 70% over 7 days, from 80%", "warning"),
    ("csat", 55.0, 80.0, "CSAT fell to 55% over 7 days, from 80%", "critical"),
])
def test_a_kpi_drop_is_critical_from_25_points(subject: str, current: float, previous: float, title: str,
                                               severity: str) -> None:
    drop = Anomaly(KPI_DROP, subject, T0, verdict=DropVerdict(current, previous, -4.0, True), volume=41,
                   start=T0 - 7 * DAY + HOUR, end=T0 + HOUR)
    insight = kpi_drop_insight(drop, episode_insight_id(KPI_DROP, subject, T0), window_days=7, now=NOW)
    assert (insight.title, insight.severity, insight.type) == (title, severity, "kpi_drop")
    assert dict(insight.metrics)["kpi"] == subject and dict(insight.metrics)["responses"] == 41
    assert insight.evidence == [] and insight.theme is None


def _spiking(opened: bool) -> SpikeEpisode:
    episode = Episode(SPIKE, "theme:account.login", T0 + HOUR, T0 + 3 * HOUR,
                      episode_insight_id(SPIKE, "theme:account.login", T0 + HOUR))
    return SpikeEpisode(episode, opened, "theme", "account.login")


def _tell(spiking: SpikeEpisode, observed: int, published: tuple[str, dict[str, Any]] | None = None,
          expected: float = 0.5) -> Any:
    return spike_insight(spiking, SpikeTally(observed, expected), subject="Login & authentication",
                         first_item=datetime(2025, 3, 10, 1, 1, tzinfo=UTC), release=None, evidence=[],
                         config=SpikeConfig(), now=NOW, published=published)


def test_a_spike_episode_opened_in_this_run_is_raised_as_revision_1() -> None:
    insight = _tell(_spiking(opened=True), 30)
    assert insight.revision == 1 and insight.type == "spike" and insight.theme == "account.login"
    assert insight.title == "Login & authentication: 30 items, ×60.0 the usual, since 01:01 UTC"  # noqa: RUF001
    assert insight.severity == "critical"
    assert (insight.window.from_, insight.window.to) == (datetime(2025, 3, 10, 1, tzinfo=UTC),
                                                         datetime(2025, 3, 10, 4, tzinfo=UTC))
    assert _tell(_spiking(opened=True), 6, expected=1.5).severity == "warning", "x4 is a spike, not critical"


def test_a_grown_spike_episode_is_revised_and_its_severity_never_falls() -> None:
    first = _tell(_spiking(opened=True), 30)
    published = ("critical", first.model_dump(mode="json", by_alias=True))
    assert _tell(_spiking(opened=False), 39, published) is None, "nine more items is not news"
    revised = _tell(_spiking(opened=False), 40, published, expected=20.0)
    assert revised.revision == 2 and revised.updated_at == NOW and revised.created_at == first.created_at
    assert revised.severity == "critical", "x2 alone would be a warning"
    assert dict(revised.metrics)["first_observed"] == 30 and dict(revised.metrics)["observed"] == 40
    assert _tell(_spiking(opened=False), 40, None) is None, "its insight was removed from the store"


@pytest.mark.parametrize(("recent", "severity"), [(14, "info"), (15, "warning")])
def test_an_emerging_theme_is_a_warning_from_three_times_the_items_it_needs(recent: int, severity: str) -> None:
    now = datetime(2025, 3, 10, tzinfo=UTC)
    insight = emerging_insight(episode_insight_id("emerging_theme", "c-1", 0), cluster_id="c-1",
                               terms=["workspace", "invite", "seat", "sso", "domain", "extra"], items=20,
                               recent=recent, evidence=[], since=now - timedelta(days=7), now=now, window_days=7,
                               min_items=5)
    assert insight.severity == severity
    assert insight.title == (f"Emerging theme: “workspace”, “invite”, “seat”, “sso”, “domain” — {recent} similar "
                             "items in 7 days that fit no known theme")
    assert dict(insight.metrics)["terms"] == "workspace, invite, seat, sso, domain, extra"


def test_an_emerging_cluster_without_terms_is_named_by_its_id() -> None:
    now = datetime(2025, 3, 10, tzinfo=UTC)
    insight = emerging_insight(episode_insight_id("emerging_theme", "c-9", 0), cluster_id="c-9", terms=[], items=5,
                               recent=5, evidence=[], since=now - timedelta(days=7), now=now, window_days=7,
                               min_items=5)
    assert insight.title.startswith("Emerging theme: c-9 — 5 similar items") and insight.severity == "info"
