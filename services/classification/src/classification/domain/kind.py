"""Kind step: what the item is — bug, feature_request, question, complaint, praise or other — by explicit rules.

Each kind has a list of phrase patterns (below, in plain sight: tune them here). The first rule that holds wins:

1. **bug** — a malfunction phrase ("crash", "error", "doesn't work", "broken", "fails", "freezes" …) and at least as
   many of them as feature-request phrases ("please add an option to export errors" is a request, not a bug).
2. **feature_request** — "would be nice", "please add", "feature request", "I wish", "could you add" …
3. **complaint** — an explicit grievance ("too expensive", "terrible", "waste of", "unacceptable" …).
4. **question** — "how do I", "is there a way", "can I" …, or a question mark ending a sentence.
5. **complaint** — no phrase matched but the sentiment is negative or mixed.
6. **praise** — positive sentiment (and, by now, no problem found).
7. **other**.

``confidence`` grows with the number of distinct phrases that matched and is low for the fallbacks (5 to 7): a
consumer may treat a kind under 0.5 as a guess. Never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from classification.domain.sentiment import SentimentResult

__all__ = ["RULES", "VERSION", "KindResult", "detect_kind", "phrase_hits"]

VERSION = "1"

_NEG = (r"(?:doesn'?t|does not|don'?t|do not|didn'?t|did not|won'?t|will not|can'?t|cannot|can not|isn'?t|is not"
        r"|wont|cant)")
_VERBS = (r"(?:work|load|open|start|sync|save|connect|log ?in|sign ?in|upload|download|update|send|show|display|respond"
           r"|access|install|play|print)")

RULES: dict[str, tuple[str, ...]] = {
    "bug": (
        r"\bcrash\w*", r"\berrors?\b", r"\bbug(?:s|gy)?\b", r"\bbroken\b", r"\bbreaks?\b",
        r"\bfail(?:s|ed|ing|ure)?\b", rf"\b{_NEG} (?:\w+ ){{0,2}}{_VERBS}\w*",
        r"\bnot (?:working|loading|responding)\b",
        r"\bstopped working\b", r"\bfreez\w*|\bfroze\b", r"\bglitch\w*", r"\bexception\b", r"\bhangs?\b",
        r"\bstuck\b", r"\bblank (?:screen|page)\b", r"\bforce clos\w*", r"\bunresponsive\b", r"\b(?:404|500|503)\b",
        r"\bdata (?:loss|lost)\b", r"\blost (?:all )?(?:my|our) \w+",
        r"\bwrong (?:number|amount|total|value|result)s?\b",
        r"\btimes? ?out\b", r"\bkeeps? (?:crashing|closing|logging me out|freezing)\b",
    ),
    "feature_request": (
        r"\bwould be (?:nice|great|awesome|helpful|useful|cool)\b",
        r"\bplease (?:add|make|include|support|allow|implement)\b", r"\bfeature request\b", r"\bi wish\b",
        r"\bwish (?:there|it|you)\b", r"\b(?:could|can|would) you (?:please )?add\b",
        r"\bit would be \w+ (?:if|to)\b", r"\b(?:add|adding) (?:an? |the )?(?:option|setting|way|button|feature)\b",
        r"\b(?:should|needs? to) (?:have|support|add|allow|include|offer)\b", r"\bsupport for\b",
        r"\bmissing (?:feature|option)\b", r"\bneeds? (?:an? )?(?:way|option|setting)\b",
        r"\b(?:allow|let) (?:us|me|users) to\b", r"\bsuggestion\b", r"\bwould love (?:to see|if|a|an)\b",
        r"\bany plans? (?:to|for)\b", r"\bi(?:'d| would) like (?:to be able|a|an|the option)\b",
    ),
    "complaint": (
        r"\btoo (?:expensive|slow|complicated|many|much)\b", r"\boverpriced\b", r"\bterrible\b", r"\bawful\b",
        r"\bhorrible\b", r"\bworst\b", r"\bunacceptable\b", r"\bdisappoint\w*", r"\bfrustrat\w*", r"\bannoying\b",
        r"\bwaste of\b", r"\bridiculous\b", r"\buseless\b", r"\bpoor (?:service|support|quality|experience)\b",
        r"\b(?:so|very|really|painfully|extremely) slow\b", r"\bno (?:one|body) (?:answers|responds|replied)\b",
        r"\bstill waiting\b", r"\brip[- ]?off\b",
    ),
    "question": (
        r"^\s*(?:how|what|where|when|why|which|who|is|are|can|could|does|do|should)\b[^.!]*\?",
        r"\bhow (?:do|can|should|would) (?:i|we|you)\b", r"\bhow to\b", r"\bis (?:it|there) (?:possible|a way)\b",
        r"\b(?:can|could) (?:i|we)\b[^.!?]*\?", r"\bwhere (?:is|are|can|do)\b", r"\bany (?:way|idea)s? (?:to|how)\b",
        r"\?(?:\s|$)",
    ),
    "praise": (
        r"\blove\b", r"\bgreat\b", r"\bawesome\b", r"\bexcellent\b", r"\bamazing\b", r"\bperfect\b",
        r"\bthank(?:s| you)\b", r"\bfantastic\b", r"\bbest\b", r"\bwell done\b",
    ),
}

_COMPILED = {kind: tuple(re.compile(p, re.IGNORECASE | re.MULTILINE) for p in patterns)
             for kind, patterns in RULES.items()}


@dataclass(frozen=True, slots=True)
class KindResult:
    kind: str
    confidence: float
    evidence: tuple[str, ...]


def phrase_hits(kind: str, text: str) -> tuple[str, ...]:
    """The phrases of ``kind``'s rules found in ``text`` (one per rule that matched)."""
    return _hits(kind, text.replace("\u2019", "'"))


@lru_cache(maxsize=256)
def _hits(kind: str, text: str) -> tuple[str, ...]:
    # Cached: the rules (detect_kind) and the kind head's features (phrase_hits) read the same text.
    found: list[str] = []
    for pattern in _COMPILED[kind]:
        match = pattern.search(text)
        if match:
            found.append(match.group(0).strip()[:80])
    return tuple(found)


def _confidence(base: float, hits: int) -> float:
    return round(min(0.95, base + 0.15 * hits), 2)


def detect_kind(text: str, sentiment: SentimentResult) -> KindResult:
    """The kind of ``text`` by the rules in the module docstring; ``evidence`` holds the phrases that matched."""
    text = text.replace("\u2019", "'")
    bug, feature = _hits("bug", text), _hits("feature_request", text)
    if bug and len(bug) >= len(feature):
        return KindResult("bug", _confidence(0.45, len(bug)), bug)
    if feature:
        return KindResult("feature_request", _confidence(0.45, len(feature)), feature)
    complaint = _hits("complaint", text)
    if complaint:
        return KindResult("complaint", _confidence(0.4, len(complaint)), complaint)
    question = _hits("question", text)
    if question:
        return KindResult("question", _confidence(0.4, len(question)), question)
    if sentiment.label in ("negative", "mixed"):
        return KindResult("complaint", round(min(0.45, 0.2 + 0.3 * abs(sentiment.score)), 2), ())
    if sentiment.label == "positive":
        praise = _hits("praise", text)
        return KindResult("praise", round(min(0.9, 0.3 + 0.3 * sentiment.score + 0.1 * len(praise)), 2), praise)
    return KindResult("other", 0.1 if not text.strip() else 0.2, ())
