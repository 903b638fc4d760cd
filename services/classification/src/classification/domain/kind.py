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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from classification.domain.documents import Document
from classification.domain.sentiment import SentimentResult

__all__ = ["ACTIONABLE", "RULES", "VERSION", "KindDecision", "KindResult", "agree_with_sentiment", "decide_kind",
           "detect_kind", "phrase_hits"]

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
        r"\bwould be (?:(?:super|really|very|so|extremely) )?(?:nice|great|awesome|helpful|useful|cool|handy)\b",
        r"\b(?:will|could|can) (?:it |this |that |they )?be added\b",
        r"\bis there (?:a|any) (?:possibility|chance|plan)s?\b",
        r"\bwould it be possible to (?:add|have|support|get)\b",
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


@lru_cache(maxsize=8192)
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


#: Kinds a team acts on, in the order one outranks another inside a document: a ticket that reports a bug and asks
#: a question is a bug report (with a question); a feature request that asks "is this planned?" is a request.
ACTIONABLE = ("bug", "feature_request", "question")
#: A part's probability of an actionable kind must reach this (and be the part's top kind) to decide a document.
PART_THRESHOLD = 0.5
#: A title decides alone when its top kind is actionable at this probability (titles say what an issue is).
TITLE_THRESHOLD = 0.65
STRUCTURE_CONFIDENCE = 0.85


@dataclass(frozen=True, slots=True)
class KindDecision:
    """The kind of a document, how sure, and why: ``part`` is the index of the deciding part in the
    :class:`Document` (None: the whole text or its structure decided); ``reason`` says which rule."""

    kind: str
    confidence: float
    part: int | None
    reason: str


def _top(proba: Mapping[str, float]) -> tuple[str, float]:
    kind = max(proba, key=lambda k: proba[k])
    return kind, float(proba[kind])


def decide_kind(whole: Mapping[str, float], parts: Sequence[Mapping[str, float]], document: Document) -> KindDecision:
    """Combine the kind probabilities of the whole text and of each part (same order as ``document.parts``).

    In order: a title tag ("[Bug]", "Feature request:", "Question:") decides; then issue-template headings and
    traces (a feature-request template outranks bug words in its "related to a problem?" section; a trace or a
    bug template makes a bug); then a confident title; then the parts, in :data:`ACTIONABLE` order (the first kind
    some part holds at :data:`PART_THRESHOLD` as its top kind, the most probable such part deciding); else the whole
    text's top kind. A document of one part is the whole text. Pure; never raises on empty input.
    """
    if not whole:
        return KindDecision("other", 0.1, None, "nothing to read")
    if document.title_tag is not None:
        return KindDecision(document.title_tag, STRUCTURE_CONFIDENCE, 0 if document.has_title else None, "title tag")
    if "feature_request" in document.headings:
        return KindDecision("feature_request", STRUCTURE_CONFIDENCE, None, "feature-request template")
    if "bug" in document.headings or document.has_trace:
        return KindDecision("bug", STRUCTURE_CONFIDENCE, None,
                            "bug-report template" if "bug" in document.headings else "stack trace or error log")
    if "question" in document.headings:
        return KindDecision("question", STRUCTURE_CONFIDENCE, None, "question template")
    whole_kind, whole_p = _top(whole)
    if len(parts) <= 1:
        return KindDecision(whole_kind, whole_p, 0 if parts else None, "whole text")
    if document.has_title:
        title_kind, title_p = _top(parts[0])
        if title_kind in ACTIONABLE and title_p >= TITLE_THRESHOLD:
            return KindDecision(title_kind, title_p, 0, "title")
    for kind in ACTIONABLE:
        held = [(p[kind], n) for n, p in enumerate(parts) if _top(p)[0] == kind and p[kind] >= PART_THRESHOLD]
        if held:
            best, index = max(held)
            return KindDecision(kind, max(float(best), float(whole.get(kind, 0.0))), index, "sentence")
    return KindDecision(whole_kind, whole_p, None, "whole text")


def agree_with_sentiment(decision: KindDecision, sentiment: str) -> KindDecision:
    """A complaint is negative and praise is positive by definition: a complaint the sentiment does not find
    negative (or mixed), or praise it does not find positive (or mixed), is ``other`` — "Ticket 42" is neither."""
    if (decision.kind == "complaint" and sentiment not in ("negative", "mixed")) or \
            (decision.kind == "praise" and sentiment not in ("positive", "mixed")):
        return KindDecision("other", round(max(0.1, 1 - decision.confidence), 3), decision.part,
                            f"{decision.kind} without {'negative' if decision.kind == 'complaint' else 'positive'} "
                            "sentiment")
    return decision
