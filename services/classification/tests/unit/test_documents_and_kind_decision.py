"""Cutting an item into parts, and deciding a document's kind from its parts (pure; no model)."""

from __future__ import annotations

from classification.domain.documents import MAX_PARTS, split_document
from classification.domain.kind import decide_kind

BUG_TEMPLATE = """Export button does nothing

**Describe the bug**
When I click Export on the reports page nothing happens.

**To Reproduce**
1. Open reports
2. Click Export

**Expected behavior**
A CSV downloads.
"""

FEATURE_TEMPLATE = """Dark mode for the editor

**Is your feature request related to a problem? Please describe.**
I'm always frustrated when the white editor breaks at night and crashes my eyes.

**Describe the solution you'd like**
A dark theme toggle.
"""


def p(**probabilities: float) -> dict[str, float]:
    base = {"bug": 0.0, "feature_request": 0.0, "question": 0.0, "complaint": 0.0, "praise": 0.0, "other": 0.0}
    base.update(probabilities)
    return base


def test_a_short_first_line_is_the_title_and_the_body_is_cut_into_sentences() -> None:
    document = split_document("Login fails on Android\nI tap Sign in. Then the app closes! Any idea why?")
    assert document.has_title
    assert document.parts == ("Login fails on Android", "I tap Sign in.", "Then the app closes!", "Any idea why?")


def test_the_subject_is_the_title_and_code_and_logs_are_not_sentences() -> None:
    text = "It breaks when I run it:\n```\n$ tool run --all\nERROR 0x1f\n```\n    at Foo.bar(Foo.java:12)\nPlease fix."
    document = split_document(text, subject="Tool run fails")
    assert document.parts[0] == "Tool run fails"
    assert all("0x1f" not in part and "Foo.java" not in part for part in document.parts)
    assert "Please fix." in document.parts
    assert document.has_trace


def test_template_headings_are_cues_not_parts() -> None:
    bug, feature = split_document(BUG_TEMPLATE), split_document(FEATURE_TEMPLATE)
    assert bug.headings == {"bug"} and feature.headings == {"feature_request"}
    assert not any("Describe the bug" in part for part in bug.parts)


def test_a_title_tag_names_the_kind() -> None:
    assert split_document("[Feature request] Export settings\nIt would help.").title_tag == "feature_request"
    assert split_document("Question: how do I reset?\nThanks").title_tag == "question"
    assert split_document("Bug: crash on start\nsee log").title_tag == "bug"
    assert split_document("Export settings\nIt would help.").title_tag is None
    assert split_document("Support for dark mode\nIt would help.").title_tag is None
    assert split_document("Feature flags break the build\nSee below.").title_tag is None
    assert split_document("(enhancement) Faster sync\nPlease.").title_tag == "feature_request"


def test_parts_are_bounded_and_empty_text_has_none() -> None:
    assert len(split_document(". ".join(f"Sentence number {n} is here" for n in range(200))).parts) == MAX_PARTS
    assert split_document("").parts == ()
    assert split_document("   \n\n").parts == ()


def test_redos_shaped_input_is_cut_quickly() -> None:
    import time

    started = time.perf_counter()
    split_document("1." * 50_000 + "\n" + "```" * 10_000 + "a " * 50_000)
    assert time.perf_counter() - started < 1.0


def test_a_bug_sentence_outranks_a_question_in_the_same_ticket() -> None:
    document = split_document("The sync stopped working yesterday. How can I get my files back?")
    parts = [p(bug=0.8, question=0.1, other=0.1), p(question=0.7, bug=0.2, other=0.1)]
    decision = decide_kind(p(question=0.5, bug=0.4, other=0.1), parts, document)
    assert (decision.kind, decision.part, decision.reason) == ("bug", 0, "sentence")


def test_a_confident_title_decides_and_an_unsure_one_does_not() -> None:
    document = split_document("Add an option to export settings\nCurrently the export does not work with my setup.")
    confident = [p(feature_request=0.8, other=0.2), p(bug=0.7, other=0.3)]
    assert decide_kind(p(bug=0.5, feature_request=0.5), confident, document).kind == "feature_request"
    unsure = [p(feature_request=0.4, other=0.6), p(bug=0.7, other=0.3)]
    assert decide_kind(p(bug=0.5, feature_request=0.5), unsure, document).kind == "bug"


def test_templates_traces_and_tags_decide_before_the_sentences() -> None:
    bug_words_everywhere = [p(bug=0.9, other=0.1)] * 4
    assert decide_kind(p(bug=0.9), bug_words_everywhere, split_document(FEATURE_TEMPLATE)).kind == "feature_request"
    question_parts = [p(question=0.9, other=0.1)] * 3
    decision = decide_kind(p(question=0.9), question_parts, split_document(BUG_TEMPLATE))
    assert (decision.kind, decision.reason) == ("bug", "bug-report template")
    traced = split_document("Why does this happen?\nTraceback (most recent call last):\n  File \"x.py\", line 1")
    assert decide_kind(p(question=0.9), [p(question=0.9)] * 2, traced).kind == "bug"


def test_one_part_is_the_whole_text_and_no_actionable_part_falls_back_to_it() -> None:
    single = split_document("Love the new dashboard")
    assert decide_kind(p(praise=0.7, other=0.3), [], single).kind == "praise"
    document = split_document("I use Windows 10. My browser is Firefox 61.")
    parts = [p(other=0.8, bug=0.2), p(other=0.9, question=0.1)]
    decision = decide_kind(p(other=0.85, bug=0.15), parts, document)
    assert (decision.kind, decision.reason) == ("other", "whole text")
    assert decide_kind({}, [], split_document("")).kind == "other"


def test_complaint_and_praise_need_the_sentiment_that_defines_them() -> None:
    from classification.domain.kind import KindDecision, agree_with_sentiment

    complaint = KindDecision("complaint", 0.6, None, "whole text")
    assert agree_with_sentiment(complaint, "negative") == complaint
    assert agree_with_sentiment(complaint, "neutral").kind == "other"
    praise = KindDecision("praise", 0.7, None, "whole text")
    assert agree_with_sentiment(praise, "positive") == praise and agree_with_sentiment(praise, "mixed") == praise
    assert agree_with_sentiment(praise, "negative").kind == "other"
    bug = KindDecision("bug", 0.9, 0, "sentence")
    assert agree_with_sentiment(bug, "positive") == bug


def test_parts_are_embedded_only_where_they_can_change_the_kind() -> None:
    from classification.domain.pipeline import parts_needed

    sure, unsure = p(bug=0.9, other=0.1), p(bug=0.5, question=0.4, other=0.1)
    body = split_document("It stopped syncing. I tried again. Any idea?")
    assert not parts_needed(body, sure) and parts_needed(body, unsure)
    assert parts_needed(split_document("Sync stops\nIt stopped syncing. I tried again."), sure), "a title may decide"
    assert not parts_needed(split_document(BUG_TEMPLATE), unsure), "the template decides without them"
    assert not parts_needed(split_document("It crashes."), unsure), "one part is the whole text"
    assert not parts_needed(body, None), "no kind head, no parts"
