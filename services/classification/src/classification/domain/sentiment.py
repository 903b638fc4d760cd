"""Sentiment step: VADER's compound score, a neutral band, and "mixed" when strong praise and strong blame meet.

VADER (Hutto & Gilbert 2014) is a lexicon-and-rules scorer for short social text; its lexicon ships inside the
``vaderSentiment`` wheel, so nothing is downloaded. Contract of :func:`score_sentiment`:

* ``score`` is VADER's compound score of the text's first :data:`SCORE_CHARS` characters, in [-1, 1]. VADER's
  cost grows with the square of the text's length, so a longer text is scored on its opening, which is where
  feedback usually says what it is about.
* ``label`` is ``mixed`` when one clause scores at least :data:`STRONG` and another at most ``-STRONG``
  (clauses = sentences, also split at "but" / "however", over the first :data:`CLAUSE_CHARS` characters);
  otherwise ``positive`` / ``negative`` outside the neutral band ``(-NEUTRAL_BAND, NEUTRAL_BAND)``, else
  ``neutral``.
* Never raises; empty or symbol-only text is neutral with score 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from feedbackloop.contracts import Sentiment

__all__ = ["NEUTRAL_BAND", "STRONG", "VERSION", "SentimentResult", "score_sentiment", "split_clauses"]

VERSION = "1"
NEUTRAL_BAND = 0.1
STRONG = 0.4
SCORE_CHARS = 3_000
CLAUSE_CHARS = 20_000
MAX_CLAUSE_CHARS = 600

_CLAUSE_BREAK = re.compile(r"(?<=[.!?;])\s+|\n+|,?\s+\b(?:but|however|although|though|except)\b\s+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SentimentResult:
    """VADER's reading: the label, the compound ``score``, the strongest clauses either way, the last clause's
    score (the verdict often comes last), and the shares of positive / negative / neutral words."""

    label: str
    score: float
    strongest_positive: float
    strongest_negative: float
    last_clause: float = 0.0
    positive: float = 0.0
    negative: float = 0.0
    neutral: float = 1.0

    def as_contract(self) -> Sentiment:
        return Sentiment(label=self.label, score=self.score)


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    # Built on first use, not at import: reading the lexicon takes a few milliseconds.
    return SentimentIntensityAnalyzer()


def _compound(text: str) -> float:
    return _scores(text)[0]


def _scores(text: str) -> tuple[float, float, float, float]:
    scores: dict[str, Any] = _analyzer().polarity_scores(text)
    return (max(-1.0, min(1.0, float(scores["compound"]))), float(scores["pos"]), float(scores["neg"]),
            float(scores["neu"]))


def split_clauses(text: str) -> list[str]:
    """Sentences of ``text`` (split again at "but", "however" …), each at most ``MAX_CLAUSE_CHARS`` long."""
    clauses: list[str] = []
    for part in _CLAUSE_BREAK.split(text[:CLAUSE_CHARS]):
        part = part.strip()
        clauses.extend(part[i:i + MAX_CLAUSE_CHARS] for i in range(0, len(part), MAX_CLAUSE_CHARS))
    return clauses


@lru_cache(maxsize=4096)
def score_sentiment(text: str) -> SentimentResult:
    """Label and score ``text``; see the module docstring for the rules. Cached: the kind and sentiment steps of
    one item, and its batch preparation, read the same text."""
    if not text.strip():
        return SentimentResult("neutral", 0.0, 0.0, 0.0)
    compound, positive, negative, neutral = _scores(text[:SCORE_CHARS])
    score = round(compound, 4)
    clause_scores = [_compound(c) for c in split_clauses(text)] or [score]
    high, low = max(clause_scores), min(clause_scores)
    if high >= STRONG and low <= -STRONG:
        label = "mixed"
    elif score >= NEUTRAL_BAND:
        label = "positive"
    elif score <= -NEUTRAL_BAND:
        label = "negative"
    else:
        label = "neutral"
    return SentimentResult(label, score, round(high, 4), round(low, 4), round(clause_scores[-1], 4),
                           round(positive, 4), round(negative, 4), round(neutral, 4))
