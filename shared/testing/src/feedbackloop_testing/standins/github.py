"""GitHub REST: ``/repos/{owner}/{repo}/issues`` create, list, read and update (close/reopen fires ``issues``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from feedbackloop_testing.standins import webhooks
from feedbackloop_testing.standins._common import VendorError, json_body, lost_answer, state_of
from feedbackloop_testing.standins.state import State, iso_now

__all__ = ["close_issue", "router"]

DOCS = "https://docs.github.com/rest"
router = APIRouter()


def _error(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> VendorError:
    body: dict[str, Any] = {"message": message, "documentation_url": DOCS, "status": str(status)}
    if errors:
        body["errors"] = errors
    return VendorError(JSONResponse(body, status_code=status))


def _invalid(field: str, code: str = "invalid") -> VendorError:
    return _error(422, "Validation Failed", [{"resource": "Issue", "code": code, "field": field}])


def _auth(request: Request) -> State:
    state = state_of(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "token") or token != state.config.github_token:
        raise _error(401, "Bad credentials")
    return state


def _issues(state: State, owner: str, repo: str) -> tuple[str, list[dict[str, Any]]]:
    full = f"{owner}/{repo}"
    if state.is_missing("github", full):
        raise _error(404, "Not Found")
    with state.lock:
        state.github_repos.setdefault(full.lower(), full)
        return state.github_repos[full.lower()], state.github[full.lower()]


def _find(state: State, owner: str, repo: str, number: int) -> tuple[str, dict[str, Any]]:
    full, issues = _issues(state, owner, repo)
    for issue in issues:
        if issue["number"] == number:
            return full, issue
    raise _error(404, "Not Found")


def _labels(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, str | dict) for v in value):
        raise _invalid("labels")
    names = [v if isinstance(v, str) else str(v.get("name", "")) for v in value]
    return [{"id": abs(hash(n)) % 10**9, "name": n, "color": "ededed", "default": False, "description": None}
            for n in names if n]


@router.post("/repos/{owner}/{repo}/issues", status_code=201)
async def create(owner: str, repo: str, request: Request) -> Response:
    state = _auth(request)
    full, issues = _issues(state, owner, repo)
    body = await json_body(request, JSONResponse({"message": "Problems parsing JSON", "documentation_url": DOCS,
                                                  "status": "400"}, status_code=400))
    if not isinstance(body, dict):
        raise _error(400, "Problems parsing JSON")
    title = body.get("title")
    if not isinstance(title, str | int) or not str(title).strip():
        raise _invalid("title", "missing_field")
    if body.get("body") is not None and not isinstance(body["body"], str):
        raise _invalid("body")
    now = iso_now()
    with state.lock:
        number = max((i["number"] for i in issues), default=0) + 1
        base = f"{str(request.base_url).rstrip('/')}/github/repos/{full}"
        issue = {"id": state.next_id(), "node_id": f"I_standin{number}", "url": f"{base}/issues/{number}",
                 "repository_url": base, "html_url": f"{state.config.github_html_url}/{full}/issues/{number}",
                 "number": number, "state": "open", "state_reason": None, "title": str(title),
                 "body": body.get("body"), "user": {"login": "standin-bot", "id": 1, "type": "User"},
                 "labels": _labels(body.get("labels", [])), "assignees": [], "comments": 0, "locked": False,
                 "created_at": now, "updated_at": now, "closed_at": None, "author_association": "MEMBER"}
        issues.append(issue)
    return lost_answer(request, "github") or JSONResponse(issue, status_code=201)


@router.get("/repos/{owner}/{repo}/issues")
async def list_issues(owner: str, repo: str, request: Request, state: str = "open", sort: str = "created",
                      direction: str = "desc", per_page: int = 30, page: int = 1) -> Response:
    held = _auth(request)
    _, issues = _issues(held, owner, repo)
    if state not in ("open", "closed", "all") or sort not in ("created", "updated", "comments") or \
            direction not in ("asc", "desc") or page < 1:
        raise _error(422, "Validation Failed")
    per_page = max(1, min(per_page, 100))
    with held.lock:
        chosen = [dict(i) for i in issues if state == "all" or i["state"] == state]
    key = "created_at" if sort == "created" else "updated_at" if sort == "updated" else "comments"
    chosen.sort(key=lambda i: (i[key], i["number"]), reverse=direction == "desc")
    window = chosen[(page - 1) * per_page: page * per_page]
    headers = {}
    if page * per_page < len(chosen):
        nxt = request.url.include_query_params(page=page + 1, per_page=per_page)
        headers["Link"] = f'<{nxt}>; rel="next"'
    return JSONResponse(window, headers=headers)


@router.get("/repos/{owner}/{repo}/issues/{number}")
async def get_issue(owner: str, repo: str, number: int, request: Request) -> Response:
    state = _auth(request)
    _, issue = _find(state, owner, repo, number)
    return JSONResponse(issue)


@router.patch("/repos/{owner}/{repo}/issues/{number}")
async def update(owner: str, repo: str, number: int, request: Request) -> Response:
    state = _auth(request)
    full, issue = _find(state, owner, repo, number)
    body = await json_body(request, JSONResponse({"message": "Problems parsing JSON"}, status_code=400))
    if not isinstance(body, dict):
        raise _error(400, "Problems parsing JSON")
    if "state" in body and body["state"] not in ("open", "closed"):
        raise _invalid("state")
    if body.get("state_reason") not in (None, "completed", "not_planned", "reopened"):
        raise _invalid("state_reason")
    with state.lock:
        for name in ("title", "body"):
            if name in body:
                issue[name] = body[name]
        if "labels" in body:
            issue["labels"] = _labels(body["labels"])
        issue["updated_at"] = iso_now()
    if "state" in body:
        await change_state(state, full, issue, body["state"], body.get("state_reason"))
    return lost_answer(request, "github") or JSONResponse(issue)


async def change_state(state: State, full: str, issue: dict[str, Any], new: str,
                       reason: str | None) -> dict[str, Any] | None:
    """Close or reopen ``issue``; a change of state fires the ``issues`` webhook (its delivery returned)."""
    with state.lock:
        if new == "closed":
            changed = issue["state"] != "closed" or issue["state_reason"] != (reason or "completed")
            issue.update(state="closed", state_reason=reason or "completed", closed_at=issue["closed_at"] or iso_now())
        else:
            changed = issue["state"] != "open"
            issue.update(state="open", state_reason="reopened" if changed else issue["state_reason"], closed_at=None)
        issue["updated_at"] = iso_now()
        snapshot = dict(issue)
    if not changed:
        return None
    action = "closed" if new == "closed" else "reopened"
    payload, headers = webhooks.github_event(state, full, snapshot, action)
    return await webhooks.deliver(state, "github", f"issues.{action}", f"github:{full.lower()}#{issue['number']}",
                                  payload, headers)


async def close_issue(state: State, owner: str, repo: str, number: int, state_reason: str | None,
                      reopen: bool = False) -> dict[str, Any]:
    """The operator's close (or reopen): the issue and the webhook delivery it fired."""
    full, issue = _find(state, owner, repo, number)
    delivery = await change_state(state, full, issue, "open" if reopen else "closed", state_reason)
    return {"issue": issue, "webhook": delivery}
