"""The one name of a tracker issue, from the URLs people paste and the keys they type."""

from __future__ import annotations

import pytest

from feedbackloop.trackers import InvalidIssueRef, github_key, parse_issue_ref


@pytest.mark.parametrize(("text", "tracker", "key"), [
    ("https://github.com/Acme/Web/issues/42", "github", "github:acme/web#42"),
    ("https://github.com/acme/web.js/issues/7/", "github", "github:acme/web.js#7"),
    ("github:Acme/Web#42", "github", "github:acme/web#42"),
    ("https://acme.atlassian.net/browse/auth-7", "jira", "jira:AUTH-7"),
    ("https://acme.atlassian.net/jira/software/projects/AUTH/issues/AUTH-7", "jira", "jira:AUTH-7"),
    ("https://acme.atlassian.net/jira/software/projects/AUTH/boards/1?selectedIssue=AUTH-9", "jira", "jira:AUTH-9"),
    ("jira:AUTH-7", "jira", "jira:AUTH-7"),
    ("https://linear.app/acme/issue/ENG-12/login-fails-on-safari", "linear", "linear:ENG-12"),
    ("linear:eng-12", "linear", "linear:ENG-12"),
])
def test_a_pasted_url_or_typed_key_gives_the_issue_key(text: str, tracker: str, key: str) -> None:
    ref = parse_issue_ref(text)
    assert (ref.tracker, ref.key) == (tracker, key)


@pytest.mark.parametrize("text", [
    "https://github.com/acme/web/pulls", "https://gitlab.com/acme/web/issues/1", "github:acme#1", "jira:42",
    "linear:", "AUTH-7", "https://linear.app/acme/project/x", "ftp://github.com/a/b/issues/1", "",
])
def test_anything_else_is_refused_with_what_is_accepted(text: str) -> None:
    with pytest.raises(InvalidIssueRef, match="github"):
        parse_issue_ref(text)


def test_the_key_is_what_a_github_webhook_gives() -> None:
    assert github_key("Acme/Web", "42") == parse_issue_ref("https://github.com/acme/web/issues/42").key
    assert parse_issue_ref("github:acme/web#42").local_id == "acme/web#42"
