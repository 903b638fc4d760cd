import pytest

from classification.domain.sentiment import score_sentiment
from classification.domain.urgency import assess_urgency
from feedbackloop.contracts import Customer


def urgency(text: str, kind: str = "other", customer: Customer | None = None) -> str:
    return assess_urgency(text, kind=kind, sentiment=score_sentiment(text), customer=customer).level


@pytest.mark.parametrize("text", [
    "After the update we lost all our data from last month",
    "I think our account was hacked, there are logins from another country",
    "The site is down for everyone in our company",
    "Our lawyer will be in touch about this GDPR violation",
    "Nobody can log in since this morning",
])
def test_data_loss_security_outage_and_legal_are_critical(text: str) -> None:
    assert urgency(text, "bug") == "critical"


@pytest.mark.parametrize("text", [
    "Fix this or we cancel our subscription",
    "We are switching to a competitor next month",
    "Urgent: invoices are wrong",
    "I can't log in to my account",
    "I was charged twice this month",
])
def test_churn_threats_and_blockers_are_high(text: str) -> None:
    assert urgency(text) == "high"


def test_bugs_and_complaints_are_normal_and_the_rest_low() -> None:
    assert urgency("The chart legend overlaps the title", "bug") == "normal"
    assert urgency("Too expensive", "complaint") == "normal"
    assert urgency("It would be nice to have a dark mode", "feature_request") == "low"
    assert urgency("Love it!", "praise") == "low"


def test_enterprise_plan_or_high_mrr_raises_one_level() -> None:
    text = "The chart legend overlaps the title"
    assert urgency(text, "bug", Customer(plan="Enterprise")) == "high"
    assert urgency(text, "bug", Customer(plan="starter", mrr=5000)) == "high"
    assert urgency(text, "bug", Customer(plan="starter", mrr=20)) == "normal"
    assert urgency("How do I export?", "question", Customer(plan="enterprise")) == "normal"


def test_never_above_critical() -> None:
    result = assess_urgency("We lost all our data", kind="bug", sentiment=score_sentiment(""),
                            customer=Customer(plan="enterprise", mrr=10_000))
    assert result.level == "critical"
    assert "data_loss" in result.reasons and "plan:enterprise" in result.reasons


def test_thresholds_are_parameters() -> None:
    result = assess_urgency("Typo on the pricing page", kind="bug", sentiment=score_sentiment(""),
                            customer=Customer(plan="business", mrr=300), high_value_mrr=200,
                            priority_plans=("business",))
    assert result.level == "high"
