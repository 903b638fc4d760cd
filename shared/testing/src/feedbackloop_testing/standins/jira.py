"""Jira Cloud REST v3: create (ADF validated), read, JQL search, transitions (to Done fires ``jira:issue_updated``)."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from feedbackloop_testing.standins import webhooks
from feedbackloop_testing.standins._common import VendorError, json_body, lost_answer, state_of
from feedbackloop_testing.standins.state import State

__all__ = ["router", "transition"]

router = APIRouter()

_CATEGORIES = {"new": {"id": 2, "key": "new", "name": "To Do", "colorName": "blue-gray"},
               "indeterminate": {"id": 4, "key": "indeterminate", "name": "In Progress", "colorName": "yellow"},
               "done": {"id": 3, "key": "done", "name": "Done", "colorName": "green"}}
STATUSES = {"To Do": ("10000", "new"), "In Progress": ("10001", "indeterminate"), "Done": ("10002", "done")}
TRANSITIONS = {"11": "To Do", "21": "In Progress", "31": "Done"}
RESOLUTIONS = {"Done": "10000", "Won't Do": "10001", "Duplicate": "10002", "Cannot Reproduce": "10003",
               "Declined": "10004"}
ISSUE_TYPES = {"Bug": "10004", "Task": "10002", "Story": "10001", "Epic": "10000", "Improvement": "10005",
               "New Feature": "10006"}
_ADF_NODES = {"doc", "paragraph", "text", "bulletList", "orderedList", "listItem", "heading", "hardBreak",
              "codeBlock", "blockquote", "rule", "mention", "emoji", "inlineCard", "panel", "table", "tableRow",
              "tableHeader", "tableCell", "mediaSingle", "mediaGroup", "media", "date", "status", "expand"}
_CLAUSE = re.compile(r"""^\s*(\w+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"']+))\s*$""")


def _errors(status: int, messages: list[str] | None = None, errors: dict[str, str] | None = None) -> VendorError:
    return VendorError(JSONResponse({"errorMessages": messages or [], "errors": errors or {}}, status_code=status))


def _auth(request: Request) -> State:
    state = state_of(request)
    expected = base64.b64encode(f"{state.config.jira_email}:{state.config.jira_token}".encode()).decode()
    if request.headers.get("authorization", "") != f"Basic {expected}":
        raise _errors(401, ["Client must be authenticated to access this resource."])
    return state


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _status(name: str) -> dict[str, Any]:
    status_id, category = STATUSES[name]
    return {"id": status_id, "name": name, "statusCategory": _CATEGORIES[category]}


def valid_adf(node: Any, top: bool = True) -> bool:
    """Whether ``node`` is an Atlassian Document: a ``doc`` of version 1 whose nodes are known and well formed."""
    if not isinstance(node, dict) or node.get("type") not in _ADF_NODES:
        return False
    if top and (node.get("type") != "doc" or node.get("version") != 1 or not isinstance(node.get("content"), list)):
        return False
    if node["type"] == "text" and (not isinstance(node.get("text"), str) or not node["text"]):
        return False
    marks = node.get("marks", [])
    if not isinstance(marks, list) or not all(isinstance(m, dict) and isinstance(m.get("type"), str) for m in marks):
        return False
    content = node.get("content", [])
    return isinstance(content, list) and all(valid_adf(child, top=False) for child in content)


def _issue(state: State, key: str) -> dict[str, Any]:
    with state.lock:
        issue = state.jira.get(key.upper())
    if issue is None:
        raise _errors(404, ["Issue does not exist or you do not have permission to see it."])
    return issue


@router.post("/rest/api/3/issue", status_code=201)
async def create(request: Request) -> Response:
    state = _auth(request)
    body = await json_body(request, JSONResponse({"errorMessages": ["Unexpected character in the JSON body"],
                                                  "errors": {}}, status_code=400))
    fields = body.get("fields") if isinstance(body, dict) else None
    if not isinstance(fields, dict):
        raise _errors(400, ["Issue must have 'fields'"])
    problems: dict[str, str] = {}
    project = (fields.get("project") or {}).get("key") if isinstance(fields.get("project"), dict) else None
    if not isinstance(project, str) or not re.match(r"^[A-Z][A-Z0-9_]{0,49}$", project) or \
            state.is_missing("jira", project):
        problems["project"] = "valid project is required"
    summary = fields.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        problems["summary"] = "You must specify a summary of the issue."
    elif len(summary) > 255:
        problems["summary"] = "Summary must be less than 255 characters."
    issue_type = fields.get("issuetype")
    type_name = issue_type.get("name") if isinstance(issue_type, dict) else None
    if type_name not in ISSUE_TYPES:
        problems["issuetype"] = "Specify a valid issue type"
    if "description" in fields and fields["description"] is not None and not valid_adf(fields["description"]):
        problems["description"] = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
    labels = fields.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        problems["labels"] = "Labels must be a list of strings"
    elif bad := [x for x in labels if re.search(r"\s", x) or not x or len(x) > 255]:
        problems["labels"] = f"The label '{bad[0]}' contains spaces which is invalid."
    if problems:
        raise _errors(400, [], problems)
    assert isinstance(project, str) and isinstance(summary, str) and isinstance(type_name, str)
    with state.lock:
        state.jira_counters[project] += 1
        key = f"{project}-{state.jira_counters[project]}"
        issue_id = str(state.next_id())
        this = f"{str(request.base_url).rstrip('/')}/jira/rest/api/3/issue/{issue_id}"
        now = _now()
        state.jira[key] = {"id": issue_id, "key": key, "self": this, "fields": {
            "summary": summary, "description": fields.get("description"), "labels": labels,
            "project": {"key": project, "id": str(abs(hash(project)) % 10**5), "name": project},
            "issuetype": {"id": ISSUE_TYPES[type_name], "name": type_name}, "status": _status("To Do"),
            "resolution": None, "resolutiondate": None, "created": now, "updated": now}}
    return lost_answer(request, "jira") or JSONResponse({"id": issue_id, "key": key, "self": this}, status_code=201)


@router.get("/rest/api/3/issue/{key}")
async def get_issue(key: str, request: Request) -> Response:
    return JSONResponse(_issue(_auth(request), key))


@router.post("/rest/api/3/search/jql")
async def search(request: Request) -> Response:
    state = _auth(request)
    body = await json_body(request, JSONResponse({"errorMessages": ["Invalid request payload."], "errors": {}},
                                                 status_code=400))
    if not isinstance(body, dict) or not isinstance(body.get("jql"), str):
        raise _errors(400, ["Invalid request payload. Refer to the REST API documentation and try again."])
    jql = re.sub(r"\s+ORDER\s+BY\s+.*$", "", body["jql"], flags=re.IGNORECASE).strip()
    wanted: list[tuple[str, str]] = []
    for clause in re.split(r"\s+AND\s+", jql, flags=re.IGNORECASE) if jql else []:
        m = _CLAUSE.match(clause)
        if not m or m[1].lower() not in ("project", "labels", "key", "status", "issuetype"):
            raise _errors(400, [f"Error in the JQL Query: the stand-in does not understand {clause.strip()!r}."])
        wanted.append((m[1].lower(), next(v for v in (m[2], m[3], m[4]) if v is not None)))

    def matches(issue: dict[str, Any]) -> bool:
        f = issue["fields"]
        values = {"project": [f["project"]["key"].lower()], "labels": [x.lower() for x in f["labels"]],
                  "key": [issue["key"].lower()], "status": [f["status"]["name"].lower()],
                  "issuetype": [f["issuetype"]["name"].lower()]}
        return all(value.lower() in values[name] for name, value in wanted)

    with state.lock:
        found = [i for i in state.jira.values() if matches(i)]
    found.sort(key=lambda i: int(i["id"]), reverse=True)
    start = int(body.get("nextPageToken") or 0)
    size = max(1, min(int(body.get("maxResults") or 50), 5000))
    page = found[start:start + size]
    answer: dict[str, Any] = {"issues": page, "isLast": start + size >= len(found)}
    if not answer["isLast"]:
        answer["nextPageToken"] = str(start + size)
    return JSONResponse(answer)


@router.get("/rest/api/3/issue/{key}/transitions")
async def transitions(key: str, request: Request) -> Response:
    _issue(_auth(request), key)
    return JSONResponse({"expand": "transitions", "transitions": [
        {"id": tid, "name": name, "to": _status(name), "hasScreen": False, "isGlobal": True, "isInitial": False,
         "isAvailable": True, "isConditional": False} for tid, name in TRANSITIONS.items()]})


@router.post("/rest/api/3/issue/{key}/transitions", status_code=204)
async def do_transition(key: str, request: Request) -> Response:
    state = _auth(request)
    issue = _issue(state, key)
    body = await json_body(request, JSONResponse({"errorMessages": ["Invalid request payload."], "errors": {}},
                                                 status_code=400))
    target = ((body or {}).get("transition") or {}).get("id") if isinstance(body, dict) else None
    if str(target) not in TRANSITIONS:
        raise _errors(400, [f"Transition id '{target}' is not valid for this issue."])
    resolution = (((body.get("fields") or {}).get("resolution") or {}).get("name")) if isinstance(body, dict) else None
    if resolution is not None and resolution not in RESOLUTIONS:
        raise _errors(400, [], {"resolution": f"Resolution '{resolution}' does not exist."})
    await transition(state, issue, TRANSITIONS[str(target)], resolution)
    return lost_answer(request, "jira") or Response(status_code=204)


async def transition(state: State, issue: dict[str, Any], to: str, resolution: str | None = None) -> dict[str, Any]:
    """Move ``issue`` to status ``to`` (To Do, In Progress, Done; Done sets ``resolution``, by default Done) and
    fire ``jira:issue_updated`` with the changelog; the delivery (or None when nothing changed) is returned."""
    if to not in STATUSES:
        raise _errors(400, [f"No status {to!r}: one of {', '.join(STATUSES)}"])
    with state.lock:
        fields = issue["fields"]
        before, before_resolution = fields["status"], fields["resolution"]
        new_resolution = ({"id": RESOLUTIONS[resolution or "Done"], "name": resolution or "Done"}
                          if to == "Done" else None)
        if before["name"] == to and before_resolution == new_resolution:
            return {"issue": issue, "webhook": None}
        fields.update(status=_status(to), resolution=new_resolution, updated=_now(),
                      resolutiondate=_now() if new_resolution else None)
        items = [{"field": "status", "fieldtype": "jira", "fieldId": "status", "from": before["id"],
                  "fromString": before["name"], "to": fields["status"]["id"], "toString": to}]
        if before_resolution != new_resolution:
            items.insert(0, {"field": "resolution", "fieldtype": "jira", "fieldId": "resolution",
                             "from": (before_resolution or {}).get("id"),
                             "fromString": (before_resolution or {}).get("name"),
                             "to": (new_resolution or {}).get("id"), "toString": (new_resolution or {}).get("name")})
        snapshot = {"id": issue["id"], "key": issue["key"], "self": issue["self"], "fields": dict(fields)}
    payload, headers = webhooks.jira_event(snapshot, items)
    delivery = await webhooks.deliver(state, "jira", "jira:issue_updated", f"jira:{issue['key']}", payload, headers)
    return {"issue": issue, "webhook": delivery}
