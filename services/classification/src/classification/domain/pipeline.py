"""The classifier: small versioned steps composed into one pure function, :func:`classify`.

    text (+ subject) ─▶ sentiment ─▶ kind ─▶ themes (taxonomy) ─▶ urgency (+ customer) ─▶ language (+ hint)

Each step lives in its own module with a ``VERSION``; :data:`MODEL` names the pipeline and carries every step's
version, and each result also names the taxonomy version it matched against, so a label can always be traced to
the rules that produced it. :func:`classify` never raises: empty, whitespace-only, emoji-only or very long text
(only the first :data:`MAX_TEXT_CHARS` characters are read) gets labels all the same. A text with no letter or
digit at all (empty, blank, emoji or punctuation only) is ``other`` / ``neutral`` / ``low`` with confidence 0.1:
there is nothing in it the rules can read, and an emoji's mood is too thin to call it praise or a complaint.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from classification.domain import kind as kind_step
from classification.domain import language as language_step
from classification.domain import sentiment as sentiment_step
from classification.domain import taxonomy as taxonomy_step
from classification.domain import urgency as urgency_step
from classification.domain.calibration import DEFAULT_REVIEW_THRESHOLDS, review_reasons
from classification.domain.documents import Document, split_document
from classification.domain.heads import LinearHead, ThemeModel, kind_features, sentiment_features
from classification.domain.memory import ExampleMemory
from classification.domain.taxonomy import Taxonomy
from feedbackloop.contracts import Customer, ModelInfo, Sentiment, ThemeLabel
from feedbackloop.contracts.events import Kind, Urgency

__all__ = ["MAX_TEXT_CHARS", "MODEL", "Explanation", "Labels", "Models", "classify", "model_for", "parts_needed",
           "problem_sentiment", "reading", "score_for", "whole_kind_proba"]

VERSION = "3"  # 2: a neutral bug / complaint is negative (problem_sentiment); 3: only without a sentiment head
MAX_TEXT_CHARS = 20_000
MODEL = ModelInfo(
    name="feedbackloop-rules",
    version=f"{VERSION}/sentiment-{sentiment_step.VERSION}/kind-{kind_step.VERSION}/themes-{taxonomy_step.VERSION}"
            f"/urgency-{urgency_step.VERSION}/language-{language_step.VERSION}",
)


class Explanation(BaseModel):
    """Why each label was given: the phrases and rules that fired (for previews and taxonomy tuning)."""

    kind: list[str] = Field(default_factory=list, description="Phrases (or the sentence) that decided the kind")
    kind_reason: str = Field(default="rules", description="What decided the kind: rules, whole text, title, "
                                                          "sentence, title tag, a template, a stack trace, memory")
    kind_sentence: str | None = Field(default=None, description="The sentence or title that decided the kind")
    themes: dict[str, list[str]] = Field(default_factory=dict, description="Keywords found, by theme id")
    urgency: list[str] = Field(default_factory=list, description="Urgency rules that fired")


class Labels(BaseModel):
    """Everything the classifier says about one text."""

    sentiment: Sentiment
    kind: Kind
    kind_confidence: float = Field(ge=0, le=1)
    themes: list[ThemeLabel]
    product_area: str | None
    urgency: Urgency
    language: str
    model: ModelInfo
    explanation: Explanation
    needs_review: bool = False
    review_reasons: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Models:
    """The learned parts: heads over the text's embedding, and the theme matcher built from the taxonomy.

    Any part may be None; that step then falls back to its rules. ``name`` / ``version`` go into the event's
    ``model`` (with the embedding model's name), so a label names what produced it.
    """

    embedding: str
    kind: LinearHead | None = None
    sentiment: LinearHead | None = None
    themes: ThemeModel | None = None
    version: str = "3"  # 3: heads on rated + forum + written data, calibrated; kind decided sentence by sentence
    memory: ExampleMemory | None = None


def model_for(taxonomy: Taxonomy, models: Models | None = None) -> ModelInfo:
    """:data:`MODEL` plus the version of the taxonomy the themes were matched against (and the embedding)."""
    if models is None:
        return ModelInfo.model_validate({**MODEL.model_dump(), "taxonomy": taxonomy.version})
    return ModelInfo.model_validate({"name": "feedbackloop-embedding",
                                     "version": f"{models.version}/{MODEL.version}",
                                     "embedding": models.embedding, "taxonomy": taxonomy.version})


def classify(text: str, *, subject: str | None = None, customer: Customer | None = None,
             language_hint: str | None = None, taxonomy: Taxonomy,
             high_value_mrr: float = urgency_step.DEFAULT_HIGH_VALUE_MRR,
             priority_plans: Collection[str] = urgency_step.DEFAULT_PRIORITY_PLANS,
             vector: npt.NDArray[np.float32] | None = None, models: Models | None = None,
             document: Document | None = None, part_vectors: npt.NDArray[np.float32] | None = None,
             review_thresholds: Mapping[str, float] = DEFAULT_REVIEW_THRESHOLDS) -> Labels:
    """Label one item. ``subject`` is read together with ``text``; ``customer`` can raise the urgency.

    With ``vector`` (the embedding of :func:`reading` of the item) and ``models``, kind, sentiment and themes
    come from the learned heads (each also reading the rules' signals); without them, from the rules alone. With
    ``document`` (:func:`split_document` of the item) and ``part_vectors`` (one embedding per part), the kind is
    decided part by part (:func:`~classification.domain.kind.decide_kind`). A label whose confidence is under its
    ``review_thresholds`` entry marks the item ``needs_review``.
    """
    full = reading(text, subject)
    if not any(ch.isalnum() for ch in full):
        return _unreadable(taxonomy, language_hint, models)
    sentiment = sentiment_step.score_sentiment(full)
    kind = kind_step.detect_kind(full, sentiment)
    sentiment_label = sentiment.as_contract()
    kind_label, kind_confidence = kind.kind, kind.confidence
    kind_evidence, kind_reason, kind_sentence = list(kind.evidence), "rules", None
    embedding_scores: dict[str, float] | None = None
    sentiment_recalled = False
    if vector is not None and models is not None:
        row = vector.reshape(1, -1).astype(np.float32)
        memory = models.memory if models.memory is not None and len(models.memory) else None
        if models.sentiment is not None:
            sentiment_label = _learned_sentiment(models.sentiment, row, sentiment, memory)
        if models.kind is not None:
            document = document or split_document(text, subject)
            decision = _learned_kind(models.kind, row, full, sentiment, document, part_vectors, memory)
            decision = kind_step.agree_with_sentiment(decision, sentiment_label.label)
            kind_label, kind_confidence, kind_reason = decision.kind, round(decision.confidence, 3), decision.reason
            if decision.part is not None and decision.part < len(document.parts):
                kind_sentence = document.parts[decision.part]
                kind_evidence = [kind_sentence, *kind_step.phrase_hits(decision.kind, kind_sentence)]
        if models.memory is not None and len(models.memory):
            # The team's corrections win over the heads for texts very like a corrected one.
            recalled_kind = models.memory.recall(row, "kind")
            if recalled_kind is not None:
                kind_label, kind_confidence, kind_reason = recalled_kind.label, recalled_kind.similarity, "memory"
            recalled_sentiment = models.memory.recall(row, "sentiment")
            if recalled_sentiment is not None and recalled_sentiment.label != sentiment_label.label:
                sentiment_label = Sentiment(label=recalled_sentiment.label,
                                            score=score_for(recalled_sentiment.label, sentiment_label.score),
                                            confidence=round(recalled_sentiment.similarity, 3))
            if recalled_sentiment is not None:
                sentiment_recalled = True
        if models.themes is not None and models.themes.theme_ids:
            scores = models.themes.scores(row)[0]
            embedding_scores = {t: float(s) for t, s in zip(models.themes.theme_ids, scores, strict=True)}
    if not sentiment_recalled and (models is None or models.sentiment is None or vector is None):
        # Only for VADER's label: the sentiment head learned flat problem reports itself, and on top of it this
        # rule cost 0.04 macro-F1 on the written sentences (factual text the kind head calls bug / complaint).
        sentiment_label = problem_sentiment(sentiment_label, kind_label)
    matches = taxonomy.match(full, embedding_scores)
    urgency = urgency_step.assess_urgency(full, kind=kind_label, sentiment=sentiment, customer=customer,
                                          high_value_mrr=high_value_mrr, priority_plans=priority_plans)
    reasons = review_reasons({"sentiment": sentiment_label.confidence, "kind": kind_confidence,
                              "themes": matches[0].confidence if matches else None}, review_thresholds)
    return Labels(
        sentiment=sentiment_label,
        kind=kind_label,
        kind_confidence=kind_confidence,
        themes=[m.as_label() for m in matches],
        product_area=taxonomy.root_of(matches[0].theme.id).id if matches else None,
        urgency=urgency.level,
        language=language_step.detect_language(full, language_hint),
        model=model_for(taxonomy, models),
        explanation=Explanation(kind=kind_evidence, kind_reason=kind_reason, kind_sentence=kind_sentence,
                                themes={m.theme.id: list(m.keywords) for m in matches},
                                urgency=list(urgency.reasons)),
        needs_review=bool(reasons),
        review_reasons=reasons,
    )


#: A document's sentences are read one by one only when the whole text's kind is less sure than this (or it has a
#: title, which may decide alone): a confident whole-text reading costs no extra embeddings.
PARTS_BELOW = 0.85


def whole_kind_proba(head: LinearHead, row: npt.NDArray[np.float32], full: str,
                     sentiment: sentiment_step.SentimentResult | None = None) -> dict[str, float]:
    """The kind head's probabilities for the whole text (``row`` is its embedding)."""
    sentiment = sentiment or sentiment_step.score_sentiment(full)
    features = kind_features(row.reshape(1, -1).astype(np.float32), [full], [sentiment])
    return dict(zip(head.classes, head.proba(features)[0].tolist(), strict=True))


def parts_needed(document: Document, whole: Mapping[str, float] | None) -> bool:
    """Whether the kind of ``document`` needs its parts' embeddings: several parts, no structure cue that decides
    alone (title tag, template headings, trace), a kind head (``whole`` is its reading), and a title or an unsure
    whole-text reading (:data:`PARTS_BELOW`)."""
    if len(document.parts) <= 1 or whole is None:
        return False
    if document.title_tag is not None or document.headings or document.has_trace:
        return False
    return document.has_title or max(whole.values()) < PARTS_BELOW


def _learned_kind(head: LinearHead, row: npt.NDArray[np.float32], full: str,
                  sentiment: sentiment_step.SentimentResult, document: Document,
                  part_vectors: npt.NDArray[np.float32] | None,
                  memory: ExampleMemory | None = None) -> kind_step.KindDecision:
    """The kind head on the whole text and, for a document of several parts, on each part (each blended with the
    team's corrections); then :func:`~classification.domain.kind.decide_kind`."""
    whole = whole_kind_proba(head, row, full, sentiment)
    if memory is not None:
        whole = memory.blend(whole, row, "kind")
    parts: list[dict[str, float]] = []
    if part_vectors is not None and len(document.parts) > 1 and len(part_vectors) == len(document.parts):
        texts = list(document.parts)
        proba = head.proba(kind_features(part_vectors.astype(np.float32), texts,
                                         [sentiment_step.score_sentiment(t) for t in texts]))
        parts = [dict(zip(head.classes, p.tolist(), strict=True)) for p in proba]
        if memory is not None:
            parts = [memory.blend(p, v, "kind") for p, v in zip(parts, part_vectors, strict=True)]
    return kind_step.decide_kind(whole, parts, document)


def reading(text: str, subject: str | None = None) -> str:
    """What the classifier reads of an item: the subject and the first :data:`MAX_TEXT_CHARS` of the text."""
    body = text[:MAX_TEXT_CHARS]
    return f"{subject.strip()}.\n{body}" if subject and subject.strip() else body


def _learned_sentiment(head: LinearHead, row: npt.NDArray[np.float32], vader: sentiment_step.SentimentResult,
                       memory: ExampleMemory | None = None) -> Sentiment:
    """The head's label (blended with the team's corrections); VADER's ``mixed`` (strong praise and strong blame
    in one text) stands."""
    proba = dict(zip(head.classes, head.proba(sentiment_features(row, [vader]))[0].tolist(), strict=True))
    if memory is not None:
        proba = memory.blend(proba, row, "sentiment")
    score = round(max(-1.0, min(1.0, float(proba.get("positive", 0.0) - proba.get("negative", 0.0)))), 4)
    label = max(proba, key=lambda k: proba[k])
    confidence = round(float(proba[label]), 3)
    if vader.label == "mixed":
        return Sentiment(label="mixed", score=score, confidence=confidence)
    return Sentiment(label=label, score=score, confidence=confidence)


#: Kinds that report a problem: product teams read them as negative even when the wording is flat.
PROBLEM_KINDS = frozenset({"bug", "complaint"})
PROBLEM_SCORE = -0.3


def problem_sentiment(sentiment: Sentiment, kind: str) -> Sentiment:
    """A bug or complaint worded flatly ("Checkout crashes when I pay") is ``negative``, not ``neutral``: the
    kind's problem signal decides a neutral call (score at most :data:`PROBLEM_SCORE`). Other labels stand
    (``positive`` on a bug report is usually praise around the problem; ``mixed`` says so)."""
    if kind in PROBLEM_KINDS and sentiment.label == "neutral":
        return Sentiment(label="negative", score=min(sentiment.score, PROBLEM_SCORE))
    return sentiment


def score_for(label: str, score: float) -> float:
    """A score that agrees with ``label``: the old one when its sign fits, else a moderate one."""
    if label == "positive":
        return score if score > 0 else 0.5
    if label == "negative":
        return score if score < 0 else -0.5
    return score if abs(score) < 0.3 else 0.0


def _unreadable(taxonomy: Taxonomy, language_hint: str | None, models: Models | None = None) -> Labels:
    return Labels(sentiment=Sentiment(label="neutral", score=0.0), kind="other", kind_confidence=0.1, themes=[],
                  product_area=None, urgency="low", language=language_step.normalize_hint(language_hint)
                  or language_step.UNDETERMINED, model=model_for(taxonomy, models), explanation=Explanation())
