"""Urgency step: low | normal | high | critical, by rules over the text, the kind and the customer.

1. A base level:
   * **critical** — data loss ("lost all my data", "data is gone"), a security incident ("hacked", "breach",
     "data leak"), an outage ("site is down", "nobody can log in"), or a legal threat ("lawyer", "lawsuit", "GDPR
     complaint").
   * **high** — a churn threat ("cancel my subscription", "switching to", "refund or"), "urgent" / "asap", being
     blocked ("can't log in", "blocking us"), or a double charge.
   * **normal** — a bug or complaint, or negative / mixed sentiment.
   * **low** — anything else (questions, requests, praise, other).
2. A customer worth more raises the level by one (never past critical): its plan is one of ``priority_plans``
   (default: enterprise) or its MRR is at least ``high_value_mrr``.

``reasons`` names the rules that fired. Never raises.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from classification.domain.sentiment import SentimentResult
from feedbackloop.contracts import Customer

__all__ = ["DEFAULT_HIGH_VALUE_MRR", "DEFAULT_PRIORITY_PLANS", "LEVELS", "VERSION", "UrgencyResult", "assess_urgency"]

VERSION = "1"
LEVELS = ("low", "normal", "high", "critical")
DEFAULT_HIGH_VALUE_MRR = 1000.0
DEFAULT_PRIORITY_PLANS: tuple[str, ...] = ("enterprise",)

_NEG = r"(?:can'?t|cannot|can not|unable to|couldn'?t|not able to)"

_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "data_loss": ("critical", (
        r"\bdata (?:loss|lost)\b",
        r"\blost (?:all )?(?:of )?(?:my|our) (?:data|work|files|documents|projects|notes|records)",
        r"\b(?:data|files|records|everything|all my \w+) (?:is|are|was|were|got|has been|have been)"
        r" (?:gone|deleted|wiped|erased|lost)\b",
        r"\b(?:deleted|wiped|erased) (?:all )?(?:my|our) (?:data|files|account|records|projects)\b",
        r"\b(?:corrupted|corrupts|corrupting) (?:all )?(?:my|our) (?:data|database|files|documents|records)\b",
        r"\b(?:data|database) (?:is |was |got |has been )?corrupt\w*",
    )),
    "security": ("critical", (
        r"\bhacked\b", r"\bbreach\w*", r"\bdata leak\w*", r"\bleak(?:ed|ing) (?:my|our|customer|personal)",
        r"\bsecurity (?:issue|hole|vulnerability|incident|problem)\b", r"\bvulnerab\w*",
        r"\bunauthori[sz]ed (?:access|charge)",
        r"\bcompromised\b", r"\bsomeone else'?s (?:data|account)\b", r"\bphishing\b",
    )),
    "outage": ("critical", (
        r"\boutage\b",
        r"\b(?:site|app|service|server|system|platform|everything|api|production) (?:is|was|went)"
        r" (?:completely )?down\b",
        r"\bdown for (?:everyone|all|hours)\b", r"\b(?:nobody|no one|none of (?:us|our users)) can\b",
        r"\ball (?:of )?(?:our|my) (?:users|customers|team)\b[^.]{0,40}\b(?:can'?t|cannot|unable)\b",
        r"\b500 (?:error|internal)\b", r"\bproduction (?:is )?(?:down|broken)\b",
    )),
    "legal": ("critical", (
        r"\blawyers?\b", r"\blawsuit\b", r"\blegal (?:action|team|department|steps)\b", r"\bsue\b", r"\battorney\b",
        r"\bgdpr (?:complaint|request|violation)\b", r"\bdata protection (?:authority|officer)\b", r"\bregulator\b",
    )),
    "churn_threat": ("high", (
        r"\bcancel\w* (?:my|our|the) (?:subscription|account|plan|contract)\b", r"\bswitch(?:ing)? to\b",
        r"\bmov(?:e|ing) to (?:a )?(?:competitor|another)\b", r"\b(?:looking for|find) (?:an )?alternatives?\b",
        r"\bnot renew\w*|\bwon'?t (?:be )?renew\w*", r"\brefund or\b", r"\bunsubscribing\b", r"\bleaving\b",
    )),
    "urgent": ("high", (r"\burgent\w*", r"\basap\b", r"\bemergency\b")),
    "blocked": ("high", (
        rf"\b{_NEG} (?:\w+ ){{0,2}}(?:log ?in|sign ?in|access|pay|check ?out|work)\b",
        r"\bblock(?:ing|ed|s) (?:us|me|our)\b",
        r"\blocked out\b", r"\bcharged twice\b", r"\bdouble charged\b",
    )),
}
_COMPILED = {name: (level, tuple(re.compile(p, re.IGNORECASE) for p in patterns))
             for name, (level, patterns) in _RULES.items()}


@dataclass(frozen=True, slots=True)
class UrgencyResult:
    level: str
    reasons: tuple[str, ...]


def _raise(level: str) -> str:
    return LEVELS[min(LEVELS.index(level) + 1, len(LEVELS) - 1)]


def assess_urgency(text: str, *, kind: str, sentiment: SentimentResult, customer: Customer | None = None,
                   high_value_mrr: float = DEFAULT_HIGH_VALUE_MRR,
                   priority_plans: Collection[str] = DEFAULT_PRIORITY_PLANS) -> UrgencyResult:
    """The urgency of an item by the rules in the module docstring."""
    text = text.replace("\u2019", "'")
    level, reasons = "low", []
    for name, (rule_level, patterns) in _COMPILED.items():
        if any(p.search(text) for p in patterns):
            reasons.append(name)
            if LEVELS.index(rule_level) > LEVELS.index(level):
                level = rule_level
    if level == "low" and (kind in ("bug", "complaint") or sentiment.label in ("negative", "mixed")):
        level = "normal"
        reasons.append(kind if kind in ("bug", "complaint") else f"{sentiment.label}_sentiment")
    if customer is not None:
        plans = {p.lower() for p in priority_plans}
        if (customer.plan or "").lower() in plans:
            level = _raise(level)
            reasons.append(f"plan:{customer.plan}")
        elif customer.mrr is not None and customer.mrr >= high_value_mrr:
            level = _raise(level)
            reasons.append("high_mrr")
    return UrgencyResult(level, tuple(reasons))
