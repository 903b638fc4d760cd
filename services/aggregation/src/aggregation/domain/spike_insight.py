"""What a spike insight says, and when its episode has grown enough to say it again. Pure.

A spike is raised once per episode (``domain/episodes.py``), as soon as its first anomalous hour passes
the test, so its first figures are what had arrived by then. The episode goes on: late items of the same
hours, further anomalous hours within the cooldown. Its figures are the episode's sums over its hours
[first, last]: ``observed`` items against ``expected`` items. When ``observed`` has grown by at least
:data:`GROWTH_ITEMS` items or :data:`GROWTH_SHARE` since the published revision, the insight is re-published
as the next revision: same insight_id, new title, metrics, window and evidence, a severity that never falls
(an incident once critical stays critical while it lasts). Anything less is noise and is not published.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from aggregation.domain.stats import nb_upper_tail

__all__ = ["CRITICAL_ALPHA_SHARE", "CRITICAL_RATIO", "EVIDENCE_CAP", "GROWTH_ITEMS", "GROWTH_SHARE", "PublishedSpike",
           "ReleaseNote", "SpikeContext", "SpikeStory", "SpikeTally", "has_grown", "revise_spike", "tell_spike"]

#: An episode whose observed count grew by this many items since its last publication is re-published ...
GROWTH_ITEMS = 10
#: ... and so is one that grew by this share of it (5 → 8 items is news, 200 → 205 is not).
GROWTH_SHARE = 0.5
#: At most this many items of evidence (the episode's first ones) travel with an insight.
EVIDENCE_CAP = 50
#: A spike is critical at this ratio to expected or more, with a p-value under the test's alpha / 1000.
CRITICAL_RATIO = 6.0
CRITICAL_ALPHA_SHARE = 1e-3

_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class SpikeTally:
    """An episode's items and the items its baseline expected, summed over its hours."""

    observed: int
    expected: float


@dataclass(frozen=True)
class ReleaseNote:
    """The release or incident posted shortly before an episode's first item."""

    release_id: str
    version: str
    kind: str
    minutes_after: int

    @property
    def phrase(self) -> str:
        word = "incident" if self.kind == "incident" else "release"
        return f", {self.minutes_after} minutes after {word} {self.version}"

    def metrics(self) -> dict[str, str | int]:
        return {"release_id": self.release_id, "release_version": self.version,
                "minutes_after_release": self.minutes_after}


@dataclass(frozen=True)
class SpikeContext:
    """What the story needs besides the tally: who spiked, since when, and the thresholds of severity."""

    label: str
    dimension: str
    key: str
    first_item: datetime
    release: ReleaseNote | None
    nb_size: float
    alpha: float


@dataclass(frozen=True)
class SpikeStory:
    title: str
    severity: str
    metrics: Mapping[str, float | int | str | None]
    revision: int = 1


@dataclass(frozen=True)
class PublishedSpike:
    """The revision of a spike insight last published, as stored."""

    revision: int
    observed: int
    severity: str
    first_observed: int | None = None

    @property
    def raised_with(self) -> int:
        """The count the insight was raised with (revision 1's)."""
        return self.first_observed if self.first_observed is not None else self.observed


def has_grown(published: int, observed: int) -> bool:
    """Whether an episode at ``observed`` items has grown materially since it said ``published``."""
    return observed > published and (observed - published >= GROWTH_ITEMS
                                     or observed >= published * (1 + GROWTH_SHARE))


def tell_spike(tally: SpikeTally, context: SpikeContext) -> SpikeStory:
    """Title, severity and metrics of a spike insight (revision 1) for the episode's ``tally``.

    The p-value is the negative-binomial upper tail of the episode's total against its expected total.
    """
    expected = max(tally.expected, 1e-9)
    ratio = tally.observed / expected
    p_value = nb_upper_tail(tally.observed, expected, context.nb_size)
    critical = ratio >= CRITICAL_RATIO and p_value < context.alpha * CRITICAL_ALPHA_SHARE
    note = context.release.phrase if context.release is not None else ""
    release = context.release.metrics() if context.release is not None else {}
    title = (f"{context.label}: {tally.observed} items, ×{ratio:.1f} the usual, since "  # noqa: RUF001
             f"{context.first_item:%H:%M} UTC{note}")
    return SpikeStory(title, "critical" if critical else "warning", {
        "observed": tally.observed, "expected": round(tally.expected, 3), "ratio": round(ratio, 2),
        "p_value": float(f"{p_value:.3g}"), "dimension": context.dimension, "key": context.key, **release})


def revise_spike(published: PublishedSpike, tally: SpikeTally, context: SpikeContext) -> SpikeStory | None:
    """The next revision of a published spike insight, or None when its episode has not grown enough.

    The revision says the episode's figures now (and, as ``first_observed``, the count it was raised with);
    its severity is the higher of the published one and the one the figures earn.
    """
    if not has_grown(published.observed, tally.observed):
        return None
    story = tell_spike(tally, context)
    severity = max(story.severity, published.severity, key=lambda s: _SEVERITY_RANK.get(s, 0))
    return SpikeStory(story.title, severity, {**story.metrics, "first_observed": published.raised_with},
                      published.revision + 1)
