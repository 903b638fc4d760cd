"""The composed classifier: labels on typical items, odd inputs, and a sanity check on real app reviews (those
read the handed URR golden set: the ``handed_data`` tier)."""

import json
import statistics
import time
from dataclasses import dataclass

import pytest

from classification.config import DEFAULT_TAXONOMY_FILE
from classification.domain.pipeline import MODEL, Labels, classify
from classification.domain.taxonomy import Taxonomy
from classification.model.classifier import load_taxonomy
from feedbackloop.contracts import Customer
from feedbackloop_testing import handed_data


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy(DEFAULT_TAXONOMY_FILE)


def test_a_typical_bug_report(taxonomy: Taxonomy) -> None:
    labels = classify("Since Monday the checkout fails with an error and customers can't pay. Please fix ASAP!",
                      subject="Checkout broken", customer=Customer(plan="enterprise", mrr=4000), taxonomy=taxonomy)
    assert labels.kind == "bug"
    assert labels.themes[0].id == "checkout" and labels.product_area == "checkout"
    assert labels.urgency == "critical"  # "can't pay" / "asap" → high, enterprise raises one level
    assert labels.language == "en"
    assert labels.model.name == MODEL.name and labels.model.version == MODEL.version
    assert labels.model.model_dump()["taxonomy"] == taxonomy.version


def test_product_area_is_the_top_level_ancestor(taxonomy: Taxonomy) -> None:
    labels = classify("I keep getting logged out and the 2FA verification code never arrives", taxonomy=taxonomy)
    assert labels.themes[0].id == "account.login"
    assert labels.product_area == "account"


def test_subject_is_read_with_the_text(taxonomy: Taxonomy) -> None:
    assert classify("see title", subject="Please add a dark mode", taxonomy=taxonomy).kind == "feature_request"


@pytest.mark.parametrize("text", ["", "   \n\t ", "😀😀😀", "🔥💯👍", "...", "\x00\x01"])
def test_nothing_readable_is_other_neutral_with_low_confidence(text: str, taxonomy: Taxonomy) -> None:
    labels = classify(text, taxonomy=taxonomy, language_hint="de")
    assert (labels.kind, labels.sentiment.label, labels.sentiment.score) == ("other", "neutral", 0.0)
    assert labels.kind_confidence <= 0.2 and labels.themes == [] and labels.urgency == "low"
    assert labels.language == "de"


def test_huge_text_is_labelled_quickly(taxonomy: Taxonomy) -> None:
    text = ("The dashboard is slow and the export fails with an error. " * 2000)[:100_000]
    started = time.perf_counter()
    labels = classify(text, taxonomy=taxonomy)
    assert time.perf_counter() - started < 5
    assert labels.kind == "bug" and labels.product_area is not None


@pytest.mark.parametrize("text", ["a" * 100_000, "ä" * 50_000, "\u202e" * 1000 + "abc", "?" * 10_000,
                                  "<script>alert(1)</script>", "[EMAIL] [PHONE] [CARD]", "\n".join(["x"] * 20_000)])
def test_odd_input_never_raises(text: str, taxonomy: Taxonomy) -> None:
    assert isinstance(classify(text, subject=text[:50], taxonomy=taxonomy), Labels)


@dataclass(frozen=True)
class Review:
    id: str
    stars: int
    topics: list[str]
    labels: Labels


@pytest.fixture(scope="module")
def reviews(taxonomy: Taxonomy) -> list[Review]:
    """Every review of the URR golden set (human topic labels, star ratings), labelled by the classifier."""
    reviews = handed_data("datasets/app-reviews-urr/reviews.jsonl")
    rows = [json.loads(line) for line in reviews.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Review(row["id"], row["stars"], row["topics"], classify(row["text"], taxonomy=taxonomy)) for row in rows]


@pytest.mark.handed_data
def test_real_reviews_sentiment_follows_the_stars(reviews: list[Review]) -> None:
    mean = {stars: statistics.mean(r.labels.sentiment.score for r in reviews if r.stars == stars)
            for stars in (1, 3, 5)}
    assert mean[5] > 0.4 and mean[1] < 0 and mean[1] < mean[3] < mean[5], mean


@pytest.mark.handed_data
def test_real_reviews_about_errors_are_mostly_bugs(reviews: list[Review]) -> None:
    on_errors = statistics.mean(r.labels.kind == "bug" for r in reviews if "ERROR" in r.topics)
    elsewhere = statistics.mean(r.labels.kind == "bug" for r in reviews if "ERROR" not in r.topics)
    assert on_errors > 0.5 and elsewhere < 0.1, (on_errors, elsewhere)


@pytest.mark.handed_data
def test_real_reviews_about_performance_get_the_theme(reviews: list[Review]) -> None:
    def has_theme(review: Review) -> bool:
        return any(t.id == "performance" for t in review.labels.themes)

    tagged = statistics.mean(has_theme(r) for r in reviews if "PERFORMANCE" in r.topics)
    untagged = statistics.mean(has_theme(r) for r in reviews if "PERFORMANCE" not in r.topics)
    assert tagged > 0.4 and untagged < 0.15, (tagged, untagged)


@pytest.mark.handed_data
@pytest.mark.parametrize(("review_id", "kind", "theme"), [
    ("578945a6819cb706b00a7328", "bug", None),  # "Fundamental flaw … I suspect the error is in the source code"
    ("578945a5819cb706b00a7326", "complaint", "performance"),  # "Slow Since latest update, it's moving very slow"
    ("57893bc9819cb7066ab3ffa3", "praise", None),  # "Perfect This is amazing. Much love"
    ("5789414b819cb7066ab40566", "bug", None),  # "Glitches when scrolling on marshmallow"
])
def test_a_few_real_reviews(reviews: list[Review], review_id: str, kind: str, theme: str | None) -> None:
    [review] = [r for r in reviews if r.id == review_id]
    assert review.labels.kind == kind
    assert (review.labels.themes[0].id if review.labels.themes else None) == theme
