"""Linear over its GraphQL API (``Authorization: <personal API key>``, no Bearer).

GraphQL answers errors in ``errors`` (with HTTP 200 or 4xx): ``RATELIMITED`` is retryable, the rest are not."""

from __future__ import annotations

from typing import Any, Literal

import httpx

from feedbackloop.trackers._http import RETRYABLE_STATUSES, body_json, error_for, retry_after, scrub, send
from feedbackloop.trackers.base import (
    IssueDraft,
    TrackerError,
    TrackerIssue,
    linear_status,
    marker_comment,
    parse_timestamp,
)
from feedbackloop.trackers.keys import IssueRef, linear_key

__all__ = ["LinearClient"]

_ISSUE_FIELDS = "id identifier url title createdAt state { name type }"
TEAMS = "query Teams($key: String!) { teams(filter: {key: {eq: $key}}) { nodes { id key name } } }"
FIND = (f"query IssuesByMarker($marker: String!) {{ issues(filter: {{description: {{contains: $marker}}}}, first: 1) "
        f"{{ nodes {{ {_ISSUE_FIELDS} }} }} }}")
CREATE = (f"mutation IssueCreate($input: IssueCreateInput!) {{ issueCreate(input: $input) {{ success issue "
          f"{{ {_ISSUE_FIELDS} }} }} }}")
GET = f"query Issue($id: String!) {{ issue(id: $id) {{ {_ISSUE_FIELDS} }} }}"
_RETRYABLE_CODES = frozenset({"RATELIMITED", "INTERNAL_SERVER_ERROR"})


class LinearClient:
    tracker: Literal["linear"] = "linear"

    def __init__(self, http: httpx.AsyncClient, *, api_key: str, api_url: str = "https://api.linear.app/graphql",
                 timeout: float = 10) -> None:
        self._http = http
        self._key = api_key
        self._url = api_url
        self._timeout = timeout
        self._teams: dict[str, str] = {}

    async def create_issue(self, draft: IssueDraft) -> TrackerIssue:
        team_id = await self._team_id(draft.target)
        if found := await self.find_issue(draft.marker):
            return found
        body = f"{draft.body.rstrip()}\n\n{marker_comment(draft.marker)}\n"
        data = await self._query(CREATE, {"input": {"teamId": team_id, "title": draft.title, "description": body}},
                                 "creating an issue")
        created = data.get("issueCreate") or {}
        if not created.get("success") or not isinstance(created.get("issue"), dict):
            raise TrackerError("linear: issueCreate did not succeed")
        return _issue(created["issue"])

    async def get_issue(self, ref: IssueRef) -> TrackerIssue:
        data = await self._query(GET, {"id": ref.local_id}, f"reading {ref.key}")
        if not isinstance(data.get("issue"), dict):
            raise TrackerError(f"linear: {ref.key} not found", status=404)
        return _issue(data["issue"])

    async def find_issue(self, marker: str) -> TrackerIssue | None:
        data = await self._query(FIND, {"marker": marker_comment(marker)}, "searching issues")
        nodes = (data.get("issues") or {}).get("nodes") or []
        return _issue(nodes[0]) if nodes else None

    async def _team_id(self, key: str) -> str:
        key = key.strip().upper()
        if key not in self._teams:
            data = await self._query(TEAMS, {"key": key}, "looking up the team")
            nodes = (data.get("teams") or {}).get("nodes") or []
            if not nodes:
                raise TrackerError(f"linear: no team with key {key[:60]!r}", status=404)
            self._teams[key] = str(nodes[0]["id"])
        return self._teams[key]

    async def _query(self, query: str, variables: dict[str, Any], what: str) -> dict[str, Any]:
        answer = await send(self._http, "linear", "POST", self._url, secrets=[self._key], timeout=self._timeout,
                            headers={"Authorization": self._key, "Content-Type": "application/json"},
                            json={"query": query, "variables": variables})
        body = body_json(answer)
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            raise self._graphql_error(answer, errors, what)
        if not answer.is_success:
            raise error_for("linear", answer, what, secrets=[self._key], message_of=lambda _: None)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise TrackerError(f"linear: {what} answered no data", status=answer.status_code)
        return data

    def _graphql_error(self, answer: httpx.Response, errors: Any, what: str) -> TrackerError:
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        extensions = first.get("extensions") or {}
        code = str(extensions.get("code") or "")
        message = extensions.get("userPresentableMessage") or first.get("message") or "error"
        retryable = code in _RETRYABLE_CODES or answer.status_code in RETRYABLE_STATUSES
        status = answer.status_code
        if code == "RATELIMITED" and status == 200:
            status = 429
        return TrackerError(scrub(f"linear: {what} answered {code or status}: {message}", [self._key]),
                            status=status, retryable=retryable, retry_after=retry_after(answer) if retryable else None)


def _issue(data: dict[str, Any]) -> TrackerIssue:
    identifier = data.get("identifier")
    if not isinstance(identifier, str):
        raise TrackerError("linear: the answer holds no issue")
    return TrackerIssue(ref=IssueRef("linear", linear_key(identifier), data.get("url")), title=data.get("title") or "",
                        status=linear_status((data.get("state") or {}).get("type")),
                        created_at=parse_timestamp(data.get("createdAt")))
