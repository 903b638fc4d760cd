"""Is a growing cluster an emerging theme, or a theme the taxonomy already has? Pure.

Classification puts an item that fits no theme into a cluster of similar ones, named by its most telling
terms; a cluster that grows is a candidate emerging theme. Of the taxonomy, aggregation sees only what items
carry on ``feedback.classified.v1``: theme ids, names and confidences. Keywords and descriptions stay in
classification's store, which no other service reads. So a cluster is judged against three things it can see:

1. **its own items**: when at least :data:`MEMBER_THEMED_SHARE` of its recent items carry a theme, the
   cluster is that theme again (today's classification clears the cluster of an item it gives a theme, so
   this guards against a producer that sends both);
2. **theme names**: a top term whose every word is a word of a theme's name or id (light stemming, so
   "invoices" is "invoice"), e.g. "login" against "Login & authentication";
3. **the vocabulary of themed items**, which stands in for the keywords: the recent items outside the cluster
   whose text holds every word of a top term. When at least :data:`VOCABULARY_MIN_ITEMS` of them, and at least
   :data:`VOCABULARY_SHARE` of them, carry one theme, the term is that theme's word: items saying "setting up
   my workspace" filed under Onboarding make "setting workspace" Onboarding's. This covers what the keywords
   matched and what the embedding matched beside them.

One matching top term (of the first :data:`TERMS_CHECKED`) is enough: terms are ranked by how much they
tell this cluster apart, so a top term that already belongs to a theme means the cluster is that theme. The
theme with the most matching terms wins (then the higher-ranked term, then the more specific id).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "MEMBER_THEMED_SHARE",
    "TERMS_CHECKED",
    "VOCABULARY_DAYS",
    "VOCABULARY_MIN_ITEMS",
    "VOCABULARY_SHARE",
    "ClusterFacts",
    "ClusterVerdict",
    "TermUse",
    "judge_cluster",
    "term_words",
    "terms_to_check",
]

#: Share of a cluster's recent items that carry a theme from which the cluster is not new.
MEMBER_THEMED_SHARE = 0.5
#: How many of the cluster's terms (best first) are compared with the themes.
TERMS_CHECKED = 5
#: Items outside the cluster that must contain a term, in one theme, before the term counts as that theme's.
VOCABULARY_MIN_ITEMS = 3
#: ... and the share of all items containing the term that this theme must hold.
VOCABULARY_SHARE = 0.5
#: How far back the items that show a theme's vocabulary are read.
VOCABULARY_DAYS = 30

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset({"and", "the", "for", "with", "from", "into", "your", "our", "my", "of", "to", "in", "on", "or",
                   "app", "help", "other", "general"})


@dataclass(frozen=True)
class ClusterFacts:
    """What the store knows of one cluster: its terms (best first) and its recent items' themes."""

    cluster_id: str
    terms: tuple[str, ...]
    items: int
    themed_items: int = 0
    themes: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TermUse:
    """The recent items outside the cluster whose text holds every word of a term, and their themes."""

    items: int
    themes: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterVerdict:
    """``duplicate_of`` is None for an emerging theme; else the theme the cluster repeats, and why."""

    duplicate_of: str | None
    reason: str
    terms: tuple[str, ...] = ()

    @property
    def emerging(self) -> bool:
        return self.duplicate_of is None


def _stem(word: str) -> str:
    """Crude and symmetric: both sides go through it, so "settings", "setting" and "set" meet."""
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "aeiou":
        word = word[:-1]
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def term_words(text: str) -> tuple[str, ...]:
    """The words of a term or a name that carry meaning: lower case, no stop words, at least 3 characters."""
    return tuple(w for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in _STOP)


def terms_to_check(terms: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The cluster's first :data:`TERMS_CHECKED` terms that have a word to compare."""
    return tuple(t for t in terms if term_words(t))[:TERMS_CHECKED]


def _name_words(theme_id: str, name: str) -> frozenset[str]:
    return frozenset(_stem(w) for w in term_words(f"{name} {theme_id.replace('.', ' ')}"))


def _owner(use: TermUse) -> str | None:
    """The theme that a term's items mostly carry, if it holds enough of them."""
    if use.items <= 0 or not use.themes:
        return None
    theme, count = max(use.themes.items(), key=lambda kv: (kv[1], kv[0].count("."), kv[0]))
    if count >= VOCABULARY_MIN_ITEMS and count / use.items >= VOCABULARY_SHARE:
        return theme
    return None


def judge_cluster(cluster: ClusterFacts, theme_names: Mapping[str, str],
                  term_use: Mapping[str, TermUse]) -> ClusterVerdict:
    """Whether ``cluster`` is an emerging theme, or which existing theme it repeats.

    ``theme_names`` maps every known theme id to its name; ``term_use`` holds, for terms of
    :func:`terms_to_check`, the items outside the cluster that contain them (a term missing from it has
    no such items). Never raises.
    """
    if cluster.items > 0 and cluster.themed_items / cluster.items >= MEMBER_THEMED_SHARE and cluster.themes:
        theme = max(cluster.themes.items(), key=lambda kv: (kv[1], kv[0].count("."), kv[0]))[0]
        return ClusterVerdict(theme, f"{cluster.themed_items} of its {cluster.items} items carry a theme")

    names = {theme_id: _name_words(theme_id, name) for theme_id, name in theme_names.items()}
    matched: dict[str, list[tuple[int, str]]] = {}
    for rank, term in enumerate(terms_to_check(cluster.terms)):
        words = {_stem(w) for w in term_words(term)}
        hits = {theme_id for theme_id, name in names.items() if words and words <= name}
        owner = _owner(term_use.get(term, TermUse(0)))
        if owner is not None:
            hits.add(owner)
        for theme_id in hits:
            matched.setdefault(theme_id, []).append((rank, term))
    if not matched:
        return ClusterVerdict(None, "no theme's name or vocabulary matches its terms")
    theme, ranked = min(matched.items(), key=lambda kv: (-len(kv[1]), kv[1][0][0], -kv[0].count("."), kv[0]))
    terms = tuple(term for _, term in ranked)
    return ClusterVerdict(theme, f"its terms {', '.join(terms)} belong to {theme_names.get(theme, theme)!r}", terms)
