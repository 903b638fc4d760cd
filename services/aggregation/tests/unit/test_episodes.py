"""Episodes (``domain/episodes.py``): which anomalous hours belong together, and their deterministic ids."""

from __future__ import annotations

import uuid

from aggregation.domain.episodes import Episode, episode_insight_id, find_episode, insight_event_id

H = 3600
SIX_HOURS = 6 * H


def _episode(first: int, last: int, subject: str = "theme:login") -> Episode:
    return Episode("spike", subject, first, last, episode_insight_id("spike", subject, first))


def test_no_episode_yet_starts_a_new_one() -> None:
    assert find_episode([], 100 * H, SIX_HOURS) is None


def test_an_hour_within_the_cooldown_on_either_side_joins_the_episode() -> None:
    episode = _episode(100 * H, 102 * H)
    for hour in (94, 100, 101, 102, 108):  # the span, and the cooldown's edges (inclusive) before and after
        assert find_episode([episode], hour * H, SIX_HOURS) == episode, hour
    for hour in (93, 109):  # one hour past either edge
        assert find_episode([episode], hour * H, SIX_HOURS) is None, hour


def test_without_cooldown_only_the_span_itself_joins() -> None:
    episode = _episode(100 * H, 102 * H)
    assert find_episode([episode], 102 * H, 0) == episode
    assert find_episode([episode], 103 * H, 0) is None and find_episode([episode], 99 * H, 0) is None


def test_the_first_matching_episode_wins() -> None:
    early, late = _episode(100 * H, 100 * H), _episode(110 * H, 110 * H)
    assert find_episode([early, late], 105 * H, SIX_HOURS) == early
    assert find_episode([late, early], 105 * H, SIX_HOURS) == late
    assert find_episode([early, late], 115 * H, SIX_HOURS) == late


def test_insight_ids_are_derived_from_detector_subject_and_first_hour() -> None:
    one = episode_insight_id("spike", "theme:login", 100 * H)
    assert one == episode_insight_id("spike", "theme:login", 100 * H), "the same hour again is the same insight"
    assert uuid.UUID(one).version == 5
    others = {episode_insight_id("sentiment_drop", "theme:login", 100 * H),
              episode_insight_id("spike", "theme:billing", 100 * H),
              episode_insight_id("spike", "theme:login", 101 * H)}
    assert one not in others and len(others) == 3
    # the separator keeps (detector, subject) pairs that concatenate alike apart
    assert episode_insight_id("spike", "x", 1) != episode_insight_id("spik", "ex", 1)


def test_the_first_revision_s_event_id_is_the_insight_id_and_later_ones_their_own() -> None:
    insight_id = episode_insight_id("spike", "theme:login", 100 * H)
    assert insight_event_id(insight_id, 1) == insight_id
    assert insight_event_id(insight_id, 0) == insight_id
    second, third = insight_event_id(insight_id, 2), insight_event_id(insight_id, 3)
    assert len({insight_id, second, third}) == 3
    assert second == insight_event_id(insight_id, 2), "deterministic"
