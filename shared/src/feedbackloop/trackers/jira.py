"""Jira Cloud over REST API v3 (Basic ``email:api-token``); bodies go as Atlassian Document Format."""

from __future__ import annotations

import base64
import re
from typing import Any, Literal

import httpx

from feedbackloop.trackers._http import error_for, send
from feedbackloop.trackers.adf import markdown_to_adf
from feedbackloop.trackers.base import (
    IssueDraft,
    TrackerError,
    TrackerIssue,
    jira_status,
    marker_label,
    parse_timestamp,
)
from feedbackloop.trackers.keys import IssueRef, jira_key

__all__ = ["JiraClient"]

_PROJECT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,49}$")
_FIELDS = ["summary", "status", "resolution", "created"]


class JiraClient:
    tracker: Literal["jira"] = "jira"

    def __init__(self, http: httpx.AsyncClient, *, url: str, email: str, token: str, timeout: float = 10) -> None:
        self._http = http
        self._site = url.rstrip("/")
        self._token = token
        self._timeout = timeout
        basic = base64.b64encode(f"{email}:{token}".encode()).decode()
        self._secrets = [token, basic]
        self._headers = {"Authorization": f"Basic {basic}", "Accept": "application/json"}

    async def create_issue(self, draft: IssueDraft) -> TrackerIssue:
        project = _project(draft.target)
        if found := await self.find_issue(project, draft.marker):
            return found
        labels = [re.sub(r"\s+", "-", label.strip()) for label in draft.labels if label.strip()]
        fields = {"project": {"key": project}, "summary": draft.title[:255], "description": markdown_to_adf(draft.body),
                  "issuetype": {"name": draft.issue_type}, "labels": [*labels, marker_label(draft.marker)]}
        answer = await self._call("POST", "/rest/api/3/issue", "creating an issue", json={"fields": fields})
        key = answer.json().get("key") if isinstance(answer.json(), dict) else None
        if not isinstance(key, str):
            raise TrackerError("jira: creating an issue answered no key", status=answer.status_code)
        try:  # the new issue as Jira holds it (its creation time); the key alone is enough when this fails
            return await self.get_issue(self._ref(key))
        except TrackerError:
            return TrackerIssue(ref=self._ref(key), title=draft.title[:255], status="open")

    async def get_issue(self, ref: IssueRef) -> TrackerIssue:
        answer = await self._call("GET", f"/rest/api/3/issue/{ref.local_id}", f"reading {ref.key}",
                                  params={"fields": ",".join(_FIELDS)})
        return self._issue(answer.json())

    async def find_issue(self, project: str, marker: str) -> TrackerIssue | None:
        """The issue of ``project`` labelled with ``marker``, if any (JQL on the marker label)."""
        jql = f'project = "{project}" AND labels = "{marker_label(marker)}"'
        answer = await self._call("POST", "/rest/api/3/search/jql", "searching issues",
                                  json={"jql": jql, "fields": _FIELDS, "maxResults": 1})
        issues = answer.json().get("issues") if isinstance(answer.json(), dict) else None
        if not isinstance(issues, list):
            raise TrackerError("jira: the search answered no issue list", status=answer.status_code)
        return self._issue(issues[0]) if issues else None

    def _ref(self, key: str) -> IssueRef:
        return IssueRef("jira", jira_key(key), f"{self._site}/browse/{key.upper()}")

    def _issue(self, data: Any) -> TrackerIssue:
        if not isinstance(data, dict) or not isinstance(data.get("key"), str):
            raise TrackerError("jira: the answer holds no issue")
        fields = data.get("fields") or {}
        status = fields.get("status") or {}
        category = (status.get("statusCategory") or {}).get("key")
        resolution = (fields.get("resolution") or {}).get("name")
        return TrackerIssue(ref=self._ref(data["key"]), title=fields.get("summary") or "",
                            status=jira_status(category, resolution), created_at=parse_timestamp(fields.get("created")))

    async def _call(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        answer = await send(self._http, "jira", method, f"{self._site}{path}", secrets=self._secrets,
                            timeout=self._timeout, headers=self._headers, **kwargs)
        if answer.is_success:
            return answer
        raise error_for("jira", answer, what, secrets=self._secrets, message_of=_message)


def _project(target: str) -> str:
    if not _PROJECT.match(target.strip()):
        raise TrackerError(f"jira: target {target[:120]!r} is not a project key")
    return target.strip().upper()


def _message(body: Any) -> str | None:
    """Jira's ``{"errorMessages": [...], "errors": {field: message}}``."""
    if not isinstance(body, dict):
        return None
    parts = [str(m) for m in body.get("errorMessages") or []]
    errors = body.get("errors")
    if isinstance(errors, dict):
        parts += [f"{field}: {message}" for field, message in errors.items()]
    return "; ".join(parts) or None
