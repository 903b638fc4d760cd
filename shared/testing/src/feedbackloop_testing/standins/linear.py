"""Linear GraphQL (``POST /graphql``), parsed pragmatically: the operation is recognised by the fields it names.

Understood: ``teams(filter: {key: {eq: …}})``, ``workflowStates`` (optionally for a team key),
``issues(filter: {description: {contains: …}})``, ``issue(id: …)`` (id or identifier), ``issueCreate(input:
{teamId, title, description})`` and ``issueUpdate(id, input: {stateId})`` (a state change fires the ``Issue``
webhook). Arguments come from ``variables`` or from inline string literals. Anything else is a GraphQL error."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from feedbackloop_testing.standins import webhooks
from feedbackloop_testing.standins._common import VendorError, json_body, lost_answer, state_of
from feedbackloop_testing.standins.state import State, iso_now

__all__ = ["router", "set_state"]

router = APIRouter()
WORKFLOW = [("Backlog", "backlog"), ("Todo", "unstarted"), ("In Progress", "started"), ("Done", "completed"),
            ("Canceled", "canceled")]
_TEAM_KEY = re.compile(r"^[A-Z][A-Z0-9]{0,6}$")


def _gql_error(message: str, code: str, status: int = 200) -> VendorError:
    return VendorError(JSONResponse({"data": None, "errors": [{"message": message, "extensions": {
        "code": code, "type": code.lower().replace("_", " "), "userPresentableMessage": message}}]},
        status_code=status))


def _auth(request: Request) -> State:
    state = state_of(request)
    if request.headers.get("authorization", "") != state.config.linear_api_key:
        raise _gql_error("Authentication required, not authenticated", "AUTHENTICATION_ERROR", 401)
    return state


def team(state: State, key: str) -> dict[str, Any] | None:
    """The team of ``key``: every well-formed key names a team (made on first use) unless marked missing."""
    key = key.upper()
    if not _TEAM_KEY.match(key) or state.is_missing("linear", key):
        return None
    with state.lock:
        if key not in state.linear_teams:
            team_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"standin-linear-team:{key}"))
            states = [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{team_id}:{name}")), "name": name, "type": kind,
                       "position": n} for n, (name, kind) in enumerate(WORKFLOW)]
            state.linear_teams[key] = {"id": team_id, "key": key, "name": key.title(), "states": states}
        return state.linear_teams[key]


def _team_by_id(state: State, team_id: str) -> dict[str, Any] | None:
    with state.lock:
        return next((t for t in state.linear_teams.values() if t["id"] == team_id), None)


def _public(issue: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in issue.items() if not k.startswith("_")}


def _arg(query: str, variables: dict[str, Any], pattern: str) -> Any:
    """The value of an argument: ``$name`` from variables, or an inline string literal."""
    m = re.search(pattern + r"""\s*(?:\$(\w+)|"((?:[^"\\]|\\.)*)")""", query)
    if not m:
        return None
    return variables.get(m[1]) if m[1] else m[2].encode().decode("unicode_escape")


@router.post("/graphql")
async def graphql(request: Request) -> Response:
    state = _auth(request)
    body = await json_body(request, JSONResponse({"errors": [{"message": "Invalid JSON body", "extensions": {
        "code": "BAD_USER_INPUT"}}]}, status_code=400))
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise _gql_error("Must provide query string.", "BAD_USER_INPUT", 400)
    query: str = body["query"]
    variables = body.get("variables") or {}
    if not isinstance(variables, dict):
        raise _gql_error("Variables must be an object", "BAD_USER_INPUT", 400)
    if re.search(r"\bissueCreate\s*\(", query):
        data = await _create(state, request, variables.get("input"))
        return lost_answer(request, "linear") or JSONResponse({"data": data})
    if re.search(r"\bissueUpdate\s*\(", query):
        data = await _update(state, _arg(query, variables, r"\bissueUpdate\s*\(\s*id:"), variables.get("input"))
        return lost_answer(request, "linear") or JSONResponse({"data": data})
    if re.search(r"\bworkflowStates\b", query):
        key = _arg(query, variables, r"team:\s*\{\s*key:\s*\{\s*eq:")
        teams = [team(state, key)] if key else list(state.linear_teams.values())
        nodes = [{**s, "team": {"id": t["id"], "key": t["key"]}} for t in teams if t for s in t["states"]]
        return JSONResponse({"data": {"workflowStates": {"nodes": nodes}}})
    if re.search(r"\bteams\b", query):
        key = _arg(query, variables, r"key:\s*\{\s*eq:")
        found = [team(state, key)] if key else list(state.linear_teams.values())
        nodes = [{k: v for k, v in t.items() if k != "states"} for t in found if t]
        return JSONResponse({"data": {"teams": {"nodes": nodes}}})
    if re.search(r"\bissues\b", query):
        needle = _arg(query, variables, r"description:\s*\{\s*contains:")
        key = _arg(query, variables, r"team:\s*\{\s*key:\s*\{\s*eq:")
        with state.lock:
            found = [_public(i) for i in state.linear.values()
                     if (needle is None or needle in (i["description"] or ""))
                     and (key is None or i["team"]["key"] == str(key).upper())]
        found.sort(key=lambda i: i["createdAt"], reverse=True)
        return JSONResponse({"data": {"issues": {"nodes": found}}})
    if re.search(r"\bissue\s*\(", query):
        wanted = str(_arg(query, variables, r"\bissue\s*\(\s*id:") or "")
        return JSONResponse({"data": {"issue": _public(_find(state, wanted))}})
    raise _gql_error("The stand-in does not know this operation (issueCreate, issueUpdate, issue, issues, teams, "
                     "workflowStates)", "GRAPHQL_VALIDATION_FAILED", 400)


def _find(state: State, wanted: str) -> dict[str, Any]:
    with state.lock:
        for issue in state.linear.values():
            if wanted in (issue["id"], issue["identifier"]) or wanted.upper() == issue["identifier"]:
                return issue
    raise _gql_error("Entity not found: Issue - Could not find referenced Issue.", "INVALID_INPUT")


async def _create(state: State, request: Request, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _gql_error("Variable \"$input\" of required type \"IssueCreateInput!\" was not provided.",
                         "BAD_USER_INPUT", 400)
    owner = _team_by_id(state, str(data.get("teamId"))) if data.get("teamId") else None
    if owner is None:
        raise _gql_error("Argument Validation Error: teamId must be the id of a team", "INVALID_INPUT")
    if not isinstance(data.get("title"), str) or not data["title"].strip():
        raise _gql_error("Argument Validation Error: title should not be empty", "INVALID_INPUT")
    if data.get("description") is not None and not isinstance(data["description"], str):
        raise _gql_error("Argument Validation Error: description must be a string", "INVALID_INPUT")
    with state.lock:
        state.linear_counters[owner["key"]] += 1
        identifier = f"{owner['key']}-{state.linear_counters[owner['key']]}"
        slug = re.sub(r"[^a-z0-9]+", "-", data["title"].lower()).strip("-")[:60]
        todo = owner["states"][1]
        now = iso_now()
        issue = {"id": str(uuid.uuid4()), "identifier": identifier, "number": state.linear_counters[owner["key"]],
                 "title": data["title"], "description": data.get("description"),
                 "url": f"https://linear.app/{state.config.linear_workspace}/issue/{identifier}/{slug}",
                 "createdAt": now, "updatedAt": now, "completedAt": None, "canceledAt": None,
                 "state": {k: todo[k] for k in ("id", "name", "type")},
                 "team": {"id": owner["id"], "key": owner["key"], "name": owner["name"]}}
        state.linear[issue["id"]] = issue
    return {"issueCreate": {"success": True, "lastSyncId": state.next_id(), "issue": _public(issue)}}


async def _update(state: State, wanted: Any, data: Any) -> dict[str, Any]:
    if not isinstance(wanted, str) or not isinstance(data, dict):
        raise _gql_error("issueUpdate needs id and input", "BAD_USER_INPUT", 400)
    issue = _find(state, wanted)
    if "title" in data:
        issue["title"] = str(data["title"])
    if "stateId" in data:
        await set_state(state, issue, str(data["stateId"]))
    return {"issueUpdate": {"success": True, "lastSyncId": state.next_id(), "issue": _public(issue)}}


async def set_state(state: State, issue: dict[str, Any], state_id_or_name: str) -> dict[str, Any]:
    """Move ``issue`` to a workflow state of its team (by id, name or type); a change fires the ``Issue`` update
    webhook with ``updatedFrom.stateId``. Returns ``{"issue", "webhook"}``."""
    owner = team(state, issue["team"]["key"])
    assert owner is not None
    chosen = next((s for s in owner["states"] if state_id_or_name in (s["id"], s["name"], s["type"])), None)
    if chosen is None:
        raise _gql_error(f"Entity not found: WorkflowState {state_id_or_name!r}", "INVALID_INPUT")
    with state.lock:
        before = dict(issue)
        if before["state"]["id"] == chosen["id"]:
            return {"issue": issue, "webhook": None}
        now = iso_now()
        issue.update(state={k: chosen[k] for k in ("id", "name", "type")}, updatedAt=now,
                     completedAt=now if chosen["type"] == "completed" else None,
                     canceledAt=now if chosen["type"] == "canceled" else None)
        data = {**_public(issue), "stateId": chosen["id"], "teamId": owner["id"]}
    updated_from = {"stateId": before["state"]["id"], "updatedAt": before["updatedAt"],
                    "completedAt": before["completedAt"], "canceledAt": before["canceledAt"]}
    payload, headers = webhooks.linear_event(data, updated_from)
    delivery = await webhooks.deliver(state, "linear", "Issue.update", f"linear:{issue['identifier']}", payload,
                                      headers)
    return {"issue": issue, "webhook": delivery}
