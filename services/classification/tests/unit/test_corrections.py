"""A person's labels merged over the model's (``domain/corrections.py``), and the learner that folds corrections
into the classifier: pure decisions on hand-made items, no store, no model."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from classification.domain.corrections import (
    FIELDS,
    UnknownThemes,
    changed_fields,
    corrected,
    example_of,
    kept_fields,
    relabelled,
    teaches,
)
from classification.domain.pipeline import Labels, classify
from classification.domain.taxonomy import Taxonomy, parse_taxonomy
from classification.model.classifier import Classifier
from classification.service.live import LiveState
from feedbackloop.contracts import ClassifiedFeedback, feedback_id_for
from feedbackloop_testing import wait_for

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)

TAXONOMY = parse_taxonomy({"version": "t1", "themes": [
    {"id": "billing", "name": "Billing"},
    {"id": "billing.invoices", "name": "Invoices", "parent": "billing"},
    {"id": "mobile", "name": "Mobile app"},
]})


def _item(**changes: object) -> ClassifiedFeedback:
    data: dict[str, object] = {
        "feedback_id": feedback_id_for("api", "1"), "source": "api", "external_id": "1", "channel": "email",
        "text": "The invoice PDF shows the wrong VAT", "created_at": NOW, "received_at": NOW, "revision": 1,
        "sentiment": {"label": "negative", "score": -0.6}, "kind": "bug", "themes": [], "product_area": None,
        "urgency": "normal", "language": "en",
        "model": {"name": "feedbackloop-rules", "version": "1", "taxonomy": "t1"},
        "cluster": {"id": "c-1", "terms": ["vat"], "size": 3}, "needs_review": True, "review_reasons": ["kind"],
    }
    return ClassifiedFeedback.model_validate({**data, **changes})


def _labels(taxonomy: Taxonomy = TAXONOMY) -> Labels:
    return classify("The mobile app crashes when I open an invoice, please fix", taxonomy=taxonomy)


def test_a_correction_sets_what_the_person_gave_and_leaves_the_review_queue() -> None:
    item = corrected(_item(), {"kind": "complaint", "urgency": "high"}, TAXONOMY, who="pat", now=NOW)
    assert (item.kind, item.urgency, item.revision, item.corrected_by) == ("complaint", "high", 2, "pat")
    assert (item.needs_review, item.review_reasons, item.classified_at) == (False, [], NOW)
    assert item.sentiment.label == "negative" and item.cluster is not None, "what was not corrected stays"


def test_themes_set_their_product_area_and_clear_the_cluster() -> None:
    item = corrected(_item(), {"themes": ["billing.invoices", "mobile", "billing.invoices"]}, TAXONOMY, who="pat",
                     now=NOW)
    assert [(t.id, t.name, t.confidence) for t in item.themes] == [("billing.invoices", "Invoices", 1.0),
                                                                   ("mobile", "Mobile app", 1.0)]
    assert item.product_area == "billing" and item.cluster is None
    given = corrected(_item(), {"themes": ["mobile"], "product_area": "apps"}, TAXONOMY, who="pat", now=NOW)
    assert given.product_area == "apps", "an explicit product area wins over the theme's"
    cleared = corrected(_item(product_area="billing"), {"themes": []}, TAXONOMY, who="pat", now=NOW)
    assert (cleared.themes, cleared.product_area) == ([], None) and cleared.cluster is not None


@pytest.mark.parametrize(("label", "old", "expected"), [("negative", -0.6, -0.6), ("positive", -0.6, 0.5),
                                                        ("neutral", -0.6, 0.0), ("neutral", 0.1, 0.1)])
def test_a_sentiment_label_keeps_a_score_that_agrees_with_it(label: str, old: float, expected: float) -> None:
    item = corrected(_item(sentiment={"label": "negative", "score": old}), {"sentiment": label}, TAXONOMY,
                     who="pat", now=NOW)
    assert (item.sentiment.label, item.sentiment.score) == (label, expected)


def test_an_unknown_theme_is_refused_naming_it() -> None:
    with pytest.raises(UnknownThemes, match="'nope'") as caught:
        corrected(_item(), {"themes": ["mobile", "nope"]}, TAXONOMY, who="pat", now=NOW)
    assert caught.value.ids == ["nope"] and "'t1'" in str(caught.value)


def test_what_a_correction_teaches() -> None:
    assert example_of("text", {"kind": "bug", "themes": ["mobile"], "urgency": "high"}).themes == ("mobile",)
    assert example_of("text", {"sentiment": "positive"}).kind is None
    assert teaches("The app crashes", {"kind": "bug"}) and teaches("ok", {"themes": []})
    assert not teaches("The app crashes", {"urgency": "high", "product_area": "x"}), "nothing learnable set"
    assert not teaches("🙂 …", {"kind": "praise"}), "nothing to read"


def test_a_reclassification_keeps_the_fields_a_person_set() -> None:
    item = _item(kind="complaint", corrected_by="pat", revision=2)
    labels = _labels()
    assert kept_fields(item, {"kind"}, include_corrected=False) == {"kind"}
    assert kept_fields(item, (), include_corrected=False) == set(FIELDS), "corrected, fields unknown: keep all"
    assert kept_fields(_item(), (), include_corrected=False) == set()
    assert kept_fields(item, {"kind"}, include_corrected=True) == set()
    new = relabelled(item, labels, {"kind"}, NOW)
    assert (new.kind, new.revision, new.classified_at, new.corrected_by) == ("complaint", 3, NOW, "pat")
    assert [t.id for t in new.themes] == [t.id for t in labels.themes] and new.urgency == labels.urgency
    assert new.model == labels.model


def test_kept_themes_keep_their_product_area() -> None:
    item = _item(themes=[{"id": "mobile", "name": "Mobile app", "confidence": 1.0}], product_area="mobile")
    new = relabelled(item, _labels(), {"themes"}, NOW)
    assert ([t.id for t in new.themes], new.product_area) == (["mobile"], "mobile") and new.cluster is None


def test_the_diff_names_each_changed_field_with_its_transition() -> None:
    before = _item()
    assert changed_fields(before, before) == {}
    after = before.model_copy(update={"kind": "complaint", "themes": [], "product_area": "billing"})
    assert changed_fields(before, after) == {"kind": "bug → complaint", "product_area": "(none) → billing"}


async def test_the_learner_folds_queued_corrections_into_a_new_classifier() -> None:
    live = LiveState(Classifier(TAXONOMY))  # rules alone: the examples are kept, not embedded
    before = live.classifier
    for text in ("one", "two", "three"):
        live.learn(example_of(text, {"kind": "bug"}))
    assert live.learner.running, "started by the first correction when no runtime runs it"

    async def learned() -> int:
        return live.learned_count

    await wait_for(learned, lambda n: n == 3, timeout=10, interval=0.01, what="three examples learned")
    assert live.classifier is not before, "swapped whole, never mutated"
    assert [e.text for e in live.classifier.learned] == ["one", "two", "three"]
    await live.close()
    assert live.learner.stopping and not live.learner.running
