from datetime import UTC, datetime

from aggregation.domain.episodes import episode_insight_id, insight_event_id
from aggregation.domain.spike_insight import (
    GROWTH_ITEMS,
    GROWTH_SHARE,
    PublishedSpike,
    ReleaseNote,
    SpikeContext,
    SpikeTally,
    has_grown,
    revise_spike,
    tell_spike,
)

FIRST_ITEM = datetime(2025, 3, 10, 1, 1, tzinfo=UTC)
RELEASE = ReleaseNote("r-1", "4.2.1", "release", 59)


def _context(release: ReleaseNote | None = RELEASE) -> SpikeContext:
    return SpikeContext("Login & authentication", "theme", "account.login", FIRST_ITEM, release, nb_size=5.0,
                        alpha=1e-5)


def test_growth_is_material_from_ten_items_or_half_again() -> None:
    assert (GROWTH_ITEMS, GROWTH_SHARE) == (10, 0.5)
    assert not has_grown(10, 14) and has_grown(10, 15), "half again"
    assert not has_grown(100, 109) and has_grown(100, 110), "ten more"
    assert has_grown(5, 8) and not has_grown(5, 7)
    assert not has_grown(10, 10) and not has_grown(60, 40), "no change, or fewer, is no news"


def test_a_spike_tells_its_episode_with_its_release() -> None:
    story = tell_spike(SpikeTally(observed=10, expected=0.2), _context())
    assert story.title == ("Login & authentication: 10 items, ×50.0 the usual, since 01:01 UTC, "  # noqa: RUF001
                           "59 minutes after release 4.2.1")
    assert story.revision == 1 and story.severity == "critical"
    assert story.metrics["observed"] == 10 and story.metrics["expected"] == 0.2 and story.metrics["ratio"] == 50.0
    assert story.metrics["release_version"] == "4.2.1" and story.metrics["minutes_after_release"] == 59
    assert story.metrics["key"] == "account.login" and float(story.metrics["p_value"] or 1) < 1e-8
    calm = tell_spike(SpikeTally(observed=6, expected=1.5), _context(None))
    assert calm.severity == "warning" and "after" not in calm.title and "release_id" not in calm.metrics
    incident = tell_spike(SpikeTally(10, 0.2), _context(ReleaseNote("i-1", "db-outage", "incident", 3)))
    assert incident.title.endswith(", 3 minutes after incident db-outage")


def test_a_grown_episode_is_revised_with_its_new_figures() -> None:
    published = PublishedSpike(revision=1, observed=10, severity="critical")
    revised = revise_spike(published, SpikeTally(observed=60, expected=1.2), _context())
    assert revised is not None and revised.revision == 2
    assert revised.title.startswith("Login & authentication: 60 items, ×50.0 the usual, since 01:01 UTC")  # noqa: RUF001
    assert revised.metrics["observed"] == 60 and revised.metrics["expected"] == 1.2
    assert revised.metrics["ratio"] == 50.0 and revised.metrics["first_observed"] == 10
    again = revise_spike(PublishedSpike(2, 60, "critical", first_observed=10), SpikeTally(95, 2.0), _context())
    assert again is not None and again.revision == 3 and again.metrics["first_observed"] == 10


def test_an_episode_that_has_not_grown_enough_is_not_revised() -> None:
    assert revise_spike(PublishedSpike(1, 10, "warning"), SpikeTally(14, 0.3), _context()) is None
    assert revise_spike(PublishedSpike(3, 200, "warning"), SpikeTally(209, 4.0), _context()) is None


def test_a_revision_never_lowers_the_severity() -> None:
    # A long episode's ratio falls as more hours join; the incident stays as severe as it was said to be.
    revised = revise_spike(PublishedSpike(1, 10, "critical"), SpikeTally(30, 10.0), _context())
    assert revised is not None and revised.metrics["ratio"] == 3.0 and revised.severity == "critical"
    escalated = revise_spike(PublishedSpike(1, 6, "warning"), SpikeTally(40, 0.5), _context())
    assert escalated is not None and escalated.severity == "critical"


def test_each_revision_has_its_own_event_id_and_the_first_keeps_the_insight_id() -> None:
    insight_id = episode_insight_id("spike", "theme:account.login", 1_741_568_400)
    assert insight_event_id(insight_id, 1) == insight_id
    ids = {insight_event_id(insight_id, r) for r in (1, 2, 3)}
    assert len(ids) == 3 and insight_event_id(insight_id, 2) == insight_event_id(insight_id, 2)
