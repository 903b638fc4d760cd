import pytest

from classification.domain.kind import detect_kind
from classification.domain.sentiment import score_sentiment


def kind_of(text: str) -> str:
    return detect_kind(text, score_sentiment(text)).kind


@pytest.mark.parametrize("text", [
    "The app crashes every time I open the reports page.",
    "I get an error when uploading a CSV file",
    "Export doesn't work anymore since yesterday",
    "The search is broken",
    "Payment fails with a card that works everywhere else",
    "Sync stopped working after the update",
    "The screen freezes when I rotate my phone",
    "Why does the app crash when I upload a photo?",  # a question about a malfunction is a bug report
])
def test_malfunctions_are_bugs(text: str) -> None:
    assert kind_of(text) == "bug"


@pytest.mark.parametrize("text", [
    "It would be nice to have a dark mode",
    "Please add an option to export errors to CSV",  # "errors" is a subject here, not a malfunction
    "Feature request: Slack integration",
    "I wish I could schedule reports",
    "Could you add support for SAML?",
])
def test_requests_are_feature_requests(text: str) -> None:
    assert kind_of(text) == "feature_request"


@pytest.mark.parametrize("text", [
    "How do I invite a colleague to my workspace?",
    "Is there a way to change the invoice address?",
    "Where can I find my API token?",
    "Does the mobile app work offline?",
])
def test_questions(text: str) -> None:
    assert kind_of(text) == "question"


@pytest.mark.parametrize("text", [
    "Way too expensive for what it offers",
    "Support is unacceptable, still waiting for an answer after two weeks",
    "Honestly disappointed with the last release",
    "I hate the new layout",  # no complaint phrase, but clearly negative
])
def test_grievances_are_complaints(text: str) -> None:
    assert kind_of(text) == "complaint"


@pytest.mark.parametrize("text", ["Love it, thanks for the great work!", "Best tool our team has used, excellent."])
def test_positive_without_a_problem_is_praise(text: str) -> None:
    assert kind_of(text) == "praise"


def test_positive_text_with_a_bug_is_still_a_bug() -> None:
    assert kind_of("Great app, love it, but it crashes when I export") == "bug"


@pytest.mark.parametrize("text", ["", "   ", "Order 1234", "See attached file"])
def test_nothing_recognisable_is_other_with_low_confidence(text: str) -> None:
    result = detect_kind(text, score_sentiment(text))
    assert result.kind == "other" and result.confidence < 0.5


def test_confidence_grows_with_evidence() -> None:
    one = detect_kind("It crashes", score_sentiment("It crashes"))
    three = detect_kind("It crashes with an error and the page is broken", score_sentiment(""))
    assert one.kind == three.kind == "bug"
    assert three.confidence > one.confidence
    assert set(three.evidence) >= {"crashes", "error", "broken"}
