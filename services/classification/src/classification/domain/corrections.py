"""A person's labels merged over the model's: the two decisions behind a correction and a re-classification.

* :func:`corrected` — a person corrects an item (``POST /v1/feedback/{id}/labels``): the fields they set replace
  the item's, themes bring their product area and clear the emerging-theme cluster, the item leaves the review
  queue, and it becomes the next revision with ``corrected_by``. A theme id the taxonomy does not have is
  :class:`UnknownThemes`.
* :func:`relabelled` — the model labels a stored item again (``feedbackloop reclassify``): every field takes the
  new label except those a person set (:func:`kept_fields`), which keep theirs.
* :func:`example_of` / :func:`teaches` — what the classifier learns from a correction.

Pure: items, labels and a taxonomy in, a new item out; no store, no clock (the caller passes ``now``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from classification.domain.memory import LearnedExample
from classification.domain.pipeline import Labels, score_for
from classification.domain.taxonomy import Taxonomy
from feedbackloop.contracts import ClassifiedFeedback

__all__ = ["FIELDS", "LEARNED_FIELDS", "UnknownThemes", "changed_fields", "corrected", "example_of", "kept_fields",
           "label_texts", "relabelled", "teaches"]

#: The labels a re-classification compares (and may change), in the summary's order.
FIELDS = ("kind", "sentiment", "themes", "product_area", "urgency", "language")
#: The corrected labels the classifier learns from (the others are only stored).
LEARNED_FIELDS = ("kind", "sentiment", "themes")


class UnknownThemes(ValueError):
    """A correction names theme ids the taxonomy in force does not have (``ids``)."""

    def __init__(self, ids: list[str], taxonomy: Taxonomy) -> None:
        super().__init__(f"unknown theme id(s) {', '.join(map(repr, ids))} in taxonomy {taxonomy.version!r}")
        self.ids = ids


def corrected(current: ClassifiedFeedback, labels: Mapping[str, Any], taxonomy: Taxonomy, *, who: str,
              now: datetime) -> ClassifiedFeedback:
    """``current`` with a person's ``labels`` (any of ``kind``, ``sentiment`` (a label), ``themes`` (ids),
    ``urgency``, ``product_area``), as revision + 1 ``corrected_by`` ``who``.

    A sentiment label keeps the old score when its sign agrees, else takes a moderate one. Themes (deduplicated,
    in order, confidence 1) set the product area to the first one's top-level ancestor unless ``product_area`` is
    given too; any theme clears the ``cluster``. Whatever was changed, the item leaves the review queue.
    :class:`UnknownThemes` when a theme id is not in ``taxonomy``.
    """
    changes: dict[str, Any] = {}
    if "kind" in labels:
        changes["kind"] = labels["kind"]
    if "sentiment" in labels:
        label = labels["sentiment"]
        changes["sentiment"] = {"label": label, "score": score_for(label, current.sentiment.score)}
    if "urgency" in labels:
        changes["urgency"] = labels["urgency"]
    if "themes" in labels:
        ids = list(dict.fromkeys(labels["themes"]))
        unknown = [t for t in ids if taxonomy.get(t) is None]
        if unknown:
            raise UnknownThemes(unknown, taxonomy)
        changes["themes"] = [{"id": t, "name": taxonomy.get(t).name, "confidence": 1.0}  # type: ignore[union-attr]
                             for t in ids]
        changes["product_area"] = taxonomy.root_of(ids[0]).id if ids else None
        if ids:
            changes["cluster"] = None
    if "product_area" in labels:
        changes["product_area"] = labels["product_area"]
    changes.update(needs_review=False, review_reasons=[])  # a person has looked at it
    return ClassifiedFeedback.model_validate({**current.model_dump(), **changes, "revision": current.revision + 1,
                                              "corrected_by": who, "classified_at": now})


def example_of(text: str, labels: Mapping[str, Any]) -> LearnedExample:
    """A correction as an example: its text with the kind, sentiment and themes the person set."""
    themes = labels.get("themes")
    return LearnedExample(text=text, kind=labels.get("kind"), sentiment=labels.get("sentiment"),
                          themes=tuple(themes) if isinstance(themes, list) else ())


def teaches(text: str, labels: Mapping[str, Any]) -> bool:
    """Whether a correction is something to learn: it sets a learned label on a text with something to read."""
    return any(k in labels for k in LEARNED_FIELDS) and any(ch.isalnum() for ch in text)


def kept_fields(item: ClassifiedFeedback, corrected_fields: Collection[str], *, include_corrected: bool) -> set[str]:
    """The fields a re-classification leaves as they are: those a person set (``corrected_fields``, from the
    stored corrections), or all of them for an item ``corrected_by`` someone whose fields are not known; none
    with ``include_corrected``."""
    if include_corrected:
        return set()
    keep = set(corrected_fields)
    return keep or (set(FIELDS) if item.corrected_by else set())


def relabelled(item: ClassifiedFeedback, labels: Labels, keep: Collection[str], now: datetime) -> ClassifiedFeedback:
    """``item`` with the model's new ``labels`` as revision + 1, except the fields in ``keep`` (a person set them;
    kept themes keep their product area too). An item with themes leaves its emerging-theme cluster."""
    new: dict[str, Any] = {"kind": labels.kind, "sentiment": labels.sentiment.model_dump(),
                           "themes": [t.model_dump() for t in labels.themes], "product_area": labels.product_area,
                           "urgency": labels.urgency, "language": labels.language}
    kept = set(keep) | ({"product_area"} if "themes" in keep else set())
    data = item.model_dump()
    for name in FIELDS:
        if name not in kept:
            data[name] = new[name]
    if data["themes"]:
        data["cluster"] = None
    data.update(revision=item.revision + 1, model=labels.model.model_dump(), classified_at=now)
    return ClassifiedFeedback.model_validate(data)


def label_texts(item: ClassifiedFeedback) -> dict[str, str]:
    """Each of :data:`FIELDS` as a short text (``(none)`` for nothing): what a diff shows and compares."""
    return {"kind": item.kind, "sentiment": item.sentiment.label,
            "themes": ",".join(sorted(t.id for t in item.themes)) or "(none)",
            "product_area": item.product_area or "(none)", "urgency": item.urgency,
            "language": item.language or "(none)"}


def changed_fields(before: ClassifiedFeedback, after: ClassifiedFeedback) -> dict[str, str]:
    """The fields whose label differs, each with its transition ``"old → new"``; empty when nothing changed."""
    old, new = label_texts(before), label_texts(after)
    return {f: f"{old[f]} → {new[f]}" for f in FIELDS if old[f] != new[f]}
