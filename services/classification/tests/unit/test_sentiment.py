import pytest

from classification.domain.sentiment import NEUTRAL_BAND, score_sentiment, split_clauses


@pytest.mark.parametrize("text", [
    "I love this product, the new dashboard is fantastic and support was wonderful.",
    "Great app, works perfectly. Thank you!",
])
def test_clear_praise_is_positive(text: str) -> None:
    result = score_sentiment(text)
    assert result.label == "positive" and result.score >= 0.5


@pytest.mark.parametrize("text", [
    "This is terrible. I hate the new update, it is awful and useless.",
    "Worst support ever, I am very angry and disappointed.",
])
def test_clear_anger_is_negative(text: str) -> None:
    result = score_sentiment(text)
    assert result.label == "negative" and result.score <= -0.5


@pytest.mark.parametrize("text", ["The export button is in the settings menu.", "I opened the report on Tuesday."])
def test_plain_statements_are_neutral(text: str) -> None:
    result = score_sentiment(text)
    assert result.label == "neutral" and abs(result.score) < NEUTRAL_BAND


def test_strong_praise_and_strong_blame_make_mixed() -> None:
    result = score_sentiment("I absolutely love the new design. But the sync is horrible and I hate losing my notes.")
    assert result.label == "mixed"
    assert result.strongest_positive >= 0.4 and result.strongest_negative <= -0.4


def test_clauses_split_at_sentences_and_but() -> None:
    assert split_clauses("Nice UI but slow. Second one!\nThird") == ["Nice UI", "slow.", "Second one!", "Third"]


@pytest.mark.parametrize("text", ["", "   \n\t", "😀😡" * 40, "\x00\x01\x02", "?!?!", "a" * 100_000,
                                  "great. terrible. " * 6_000])
def test_odd_input_never_raises_and_stays_in_range(text: str) -> None:
    result = score_sentiment(text)
    assert -1 <= result.score <= 1
    assert result.label in ("positive", "neutral", "negative", "mixed")


def test_a_flatly_worded_problem_report_is_negative() -> None:
    from classification.domain.pipeline import problem_sentiment
    from feedbackloop.contracts import Sentiment

    flat = Sentiment(label="neutral", score=-0.07)
    assert problem_sentiment(flat, "bug") == Sentiment(label="negative", score=-0.3)
    assert problem_sentiment(flat, "complaint").label == "negative"
    assert problem_sentiment(flat, "question") == flat, "a neutral question stays neutral"
    assert problem_sentiment(Sentiment(label="mixed", score=0.1), "bug").label == "mixed"
