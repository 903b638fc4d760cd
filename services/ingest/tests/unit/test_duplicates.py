"""The duplicate decision (``ingest.domain.duplicates``): exact repeats, near-duplicate links, the lookup it needs.
Pure: plain candidates in, placements out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from feedbackloop.contracts import feedback_id_for
from ingest.domain.duplicates import (
    Candidate,
    ContentLookup,
    Placement,
    author_key,
    candidate,
    content_lookup,
    place,
)
from ingest.domain.feedback import FeedbackIn, RedactionPolicy, normalize
from ingest.domain.pseudonym import Pseudonymizer

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
NEW = Placement(new=True)
REPEAT = Placement(new=False)


def _c(name: str, at: timedelta = timedelta(0), key: str | None = "k") -> Candidate:
    return Candidate(feedback_id_for("api", name), T0 + at, key)


def _id(name: str) -> uuid.UUID:
    return feedback_id_for("api", name)


def test_new_items_and_exact_repeats_stored_or_earlier_in_the_call() -> None:
    stored = _c("a", key=None)
    fresh = _c("b", key=None)
    again = _c("b", key=None)
    assert place([stored, fresh, again], stored_ids={stored.feedback_id}, stored_by_key={}, window=DAY) == [
        REPEAT, NEW, REPEAT]


def test_the_same_words_link_to_the_first_unlinked_item_of_the_call() -> None:
    first, second, third = _c("1"), _c("2", timedelta(hours=1)), _c("3", timedelta(hours=2))
    assert place([first, second, third], stored_ids=set(), stored_by_key={}, window=DAY) == [
        NEW, Placement(new=True, duplicate_of=first.feedback_id), Placement(new=True, duplicate_of=first.feedback_id)]


def test_a_stored_original_in_the_window_is_linked_the_earliest_first() -> None:
    stored = {"k": [(T0 - timedelta(hours=30), _id("too-old")), (T0 - timedelta(hours=5), _id("s1")),
                    (T0 - timedelta(hours=1), _id("s2"))]}
    assert place([_c("n")], stored_ids=set(), stored_by_key=stored, window=DAY) == [
        Placement(new=True, duplicate_of=_id("s1"))]


def test_the_call_s_own_earlier_item_wins_over_a_stored_one_only_inside_the_window() -> None:
    stored = {"k": [(T0 + timedelta(hours=40), _id("s"))]}
    first, late = _c("1"), _c("2", timedelta(hours=30))
    # `late` is 30 h after `first` (outside the window) but 10 h before the stored one (inside it)
    assert place([first, late], stored_ids=set(), stored_by_key=stored, window=DAY) == [
        NEW, Placement(new=True, duplicate_of=_id("s"))]


def test_items_outside_the_window_or_with_other_words_are_not_linked() -> None:
    early, far, other = _c("1"), _c("2", timedelta(hours=48)), _c("3", key="other")
    assert place([early, far, other], stored_ids=set(), stored_by_key={}, window=DAY) == [NEW, NEW, NEW]


def test_no_author_or_no_window_links_nothing() -> None:
    assert place([_c("1", key=None), _c("2", key=None)], stored_ids=set(), stored_by_key={}, window=DAY) == [NEW, NEW]
    assert place([_c("1"), _c("2")], stored_ids=set(), stored_by_key={}, window=timedelta(0)) == [NEW, NEW]


def test_an_item_is_never_its_own_duplicate() -> None:
    item = _c("1")
    stored = {"k": [(T0, item.feedback_id)]}
    assert place([item], stored_ids=set(), stored_by_key=stored, window=DAY) == [NEW]


def test_content_lookup_spans_the_new_keyed_items_widened_by_the_window() -> None:
    stored, early, late, anonymous = _c("s"), _c("1", -timedelta(hours=2), "k1"), _c("2", timedelta(hours=3), "k2"), \
        _c("3", timedelta(hours=9), None)
    assert content_lookup([stored, early, late, anonymous], {stored.feedback_id}, DAY) == ContentLookup(
        keys=frozenset({"k1", "k2"}), since=T0 - timedelta(hours=2) - DAY, until=T0 + timedelta(hours=3) + DAY)
    assert content_lookup([stored], {stored.feedback_id}, DAY) is None
    assert content_lookup([early], set(), timedelta(0)) is None


def test_candidates_key_on_the_author_and_the_words_not_their_case_spacing_or_punctuation() -> None:
    policy = RedactionPolicy(Pseudonymizer(b"duplicates-test-key-0123456789"))

    def raw(source: str, ext: str, text: str, **author: str) -> Candidate:
        item = FeedbackIn.model_validate({"source": source, "external_id": ext, "text": text, "author": author})
        return candidate(normalize(item, T0, policy))

    by_mail = raw("zendesk", "1", "The export is BROKEN!", email="ann@example.com")
    same_words = raw("api", "2", "the export   is broken", email="Ann@example.com")
    other_author = raw("api", "3", "The export is broken!", email="bob@example.com")
    by_id = raw("api", "4", "The export is broken!", id="u-1")
    nobody = raw("api", "5", "The export is broken!")
    assert by_mail.content_key == same_words.content_key != other_author.content_key
    assert by_id.content_key is not None and by_id.content_key != by_mail.content_key
    assert nobody.content_key is None
    item = FeedbackIn.model_validate({"source": "api", "external_id": "6", "text": "x", "author": {"id": "u-1"}})
    assert author_key(normalize(item, T0, policy)) == f"api:{normalize(item, T0, policy).author.id}"
