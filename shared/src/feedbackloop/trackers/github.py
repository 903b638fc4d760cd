"""GitHub Issues over the REST API (``Authorization: Bearer``, API version 2022-11-28)."""

from __future__ import annotations

import re
from typing import Any, Literal

import httpx

from feedbackloop.trackers._http import error_for, send
from feedbackloop.trackers.base import (
    IssueDraft,
    TrackerError,
    TrackerIssue,
    github_status,
    marker_comment,
    parse_timestamp,
)
from feedbackloop.trackers.keys import IssueRef, github_key

__all__ = ["GitHubClient"]

_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}/[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: Recent issues scanned for a marker: a retry follows its lost answer closely, so it is among the newest.
LOOKUP_PAGES = 3


class GitHubClient:
    tracker: Literal["github"] = "github"

    def __init__(self, http: httpx.AsyncClient, *, token: str, api_url: str = "https://api.github.com",
                 timeout: float = 10) -> None:
        self._http = http
        self._token = token
        self._api = api_url.rstrip("/")
        self._timeout = timeout
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                         "X-GitHub-Api-Version": "2022-11-28"}

    async def create_issue(self, draft: IssueDraft) -> TrackerIssue:
        repo = _repo(draft.target)
        if found := await self.find_issue(repo, draft.marker):
            return found
        body = f"{draft.body.rstrip()}\n\n{marker_comment(draft.marker)}\n"
        payload: dict[str, Any] = {"title": draft.title, "body": body}
        if draft.labels:
            payload["labels"] = list(draft.labels)
        answer = await self._call("POST", f"/repos/{repo}/issues", "creating an issue", json=payload)
        return _issue(repo, answer.json())

    async def get_issue(self, ref: IssueRef) -> TrackerIssue:
        repo, _, number = ref.local_id.rpartition("#")
        answer = await self._call("GET", f"/repos/{repo}/issues/{int(number)}", f"reading {ref.key}")
        return _issue(repo, answer.json())

    async def find_issue(self, repo: str, marker: str) -> TrackerIssue | None:
        """The newest issue of ``repo`` whose body carries ``marker`` (the list, not the lagging search index)."""
        needle = marker_comment(marker)
        params: dict[str, str | int] = {"state": "all", "sort": "created", "direction": "desc", "per_page": 100}
        for page in range(1, LOOKUP_PAGES + 1):
            answer = await self._call("GET", f"/repos/{repo}/issues", "listing issues",
                                      params={**params, "page": page})
            issues = answer.json()
            if not isinstance(issues, list):
                raise TrackerError(f"github: listing issues of {repo} gave no list", status=answer.status_code)
            for issue in issues:
                if isinstance(issue, dict) and "pull_request" not in issue and needle in (issue.get("body") or ""):
                    return _issue(repo, issue)
            if len(issues) < 100 or 'rel="next"' not in answer.headers.get("link", ""):
                return None
        return None

    async def _call(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        answer = await send(self._http, "github", method, f"{self._api}{path}", secrets=[self._token],
                            timeout=self._timeout, headers=self._headers, **kwargs)
        if answer.is_success:
            return answer
        raise error_for("github", answer, what, secrets=[self._token], message_of=_message)


def _repo(target: str) -> str:
    if not _REPO.match(target.strip()):
        raise TrackerError(f"github: target {target[:120]!r} is not owner/repo")
    return target.strip()


def _issue(repo: str, data: Any) -> TrackerIssue:
    if not isinstance(data, dict) or not isinstance(data.get("number"), int):
        raise TrackerError("github: the answer holds no issue")
    url = data.get("html_url") or f"https://github.com/{repo}/issues/{data['number']}"
    return TrackerIssue(ref=IssueRef("github", github_key(repo, data["number"]), url), title=data.get("title") or "",
                        status=github_status(str(data.get("state")), data.get("state_reason")),
                        created_at=parse_timestamp(data.get("created_at")))


def _message(body: Any) -> str | None:
    if not isinstance(body, dict) or not body.get("message"):
        return None
    message = str(body["message"])
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        details = [e.get("message") or f"{e.get('field')} {e.get('code')}" if isinstance(e, dict) else str(e)
                   for e in errors]
        message = f"{message} ({'; '.join(map(str, details))})"
    return message


