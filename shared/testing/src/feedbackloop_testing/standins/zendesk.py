"""Zendesk Support: ``PUT /api/v2/tickets/{id}.json`` adds a comment, ``GET …/comments.json`` lists them.

Basic auth with Zendesk's API-token scheme (``{email}/token:{token}``). A ticket exists on first touch (or made
through ``POST /_standin/zendesk/tickets``) unless marked missing (404)."""

from __future__ import annotations

import base64
import html
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from feedbackloop_testing.standins._common import VendorError, json_body, lost_answer, state_of
from feedbackloop_testing.standins.state import State, iso_now

__all__ = ["router", "ticket"]

router = APIRouter()


def _auth(request: Request) -> State:
    state = state_of(request)
    expected = base64.b64encode(f"{state.config.zendesk_email}/token:{state.config.zendesk_token}".encode()).decode()
    if request.headers.get("authorization", "") != f"Basic {expected}":
        raise VendorError(JSONResponse({"error": "Couldn't authenticate you"}, status_code=401))
    return state


def _invalid(description: str) -> VendorError:
    return VendorError(JSONResponse({"error": "RecordInvalid", "description": "Record validation errors",
                                     "details": {"base": [{"description": description, "error": "InvalidValue"}]}},
                                    status_code=422))


def ticket(state: State, ticket_id: int, request: Request | None = None, subject: str | None = None) -> dict[str, Any]:
    """The ticket's record ``{"ticket", "comments"}``, made on first touch; 404 when marked missing."""
    if state.is_missing("zendesk", ticket_id):
        raise VendorError(JSONResponse({"error": "RecordNotFound", "description": "Not found"}, status_code=404))
    with state.lock:
        if ticket_id not in state.zendesk:
            base = str(request.base_url).rstrip("/") if request else ""
            now = iso_now()
            state.zendesk[ticket_id] = {"ticket": {
                "id": ticket_id, "url": f"{base}/zendesk/api/v2/tickets/{ticket_id}.json",
                "subject": subject or f"Ticket {ticket_id}", "status": "open", "requester_id": 2002,
                "created_at": now, "updated_at": now, "tags": []}, "comments": []}
        return state.zendesk[ticket_id]


@router.put("/api/v2/tickets/{ticket_id:int}.json")
async def update_ticket(ticket_id: int, request: Request) -> Response:
    state = _auth(request)
    held = ticket(state, ticket_id, request)
    body = await json_body(request, JSONResponse({"error": "Unprocessable Entity",
                                                  "description": "The JSON body could not be parsed"}, status_code=400))
    data = body.get("ticket") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise _invalid("Ticket: a `ticket` object is required")
    comment = data.get("comment")
    if comment is not None and not isinstance(comment, dict):
        raise _invalid("Comment: must be an object")
    if comment is None and "status" not in data:
        raise _invalid("Ticket: nothing to update (comment or status)")
    if "status" in data and data["status"] not in ("new", "open", "pending", "hold", "solved", "closed"):
        raise _invalid(f"Status: {data['status']!r} is not a status")
    audit_id = state.next_id()
    events: list[dict[str, Any]] = []
    if comment is not None:
        text, markup = comment.get("body"), comment.get("html_body")
        if not any(isinstance(v, str) and v.strip() for v in (text, markup)):
            raise _invalid("Comment: body cannot be blank")
        if not isinstance(comment.get("public", True), bool):
            raise _invalid("Comment: public must be true or false")
        author = comment.get("author_id", state.config.zendesk_agent_id)
        if not isinstance(author, int):
            raise _invalid("Comment: author_id must be a number")
        if isinstance(markup, str) and markup.strip():
            plain = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<!--.*?-->", "", markup, flags=re.S)))
            plain = re.sub(r"\s+", " ", plain).strip()
        else:
            plain = str(text)
            markup = f'<div class="zd-comment" dir="auto"><p>{html.escape(plain)}</p></div>'
        events.append({"id": state.next_id(), "type": "Comment", "author_id": author, "body": plain,
                       "html_body": markup, "plain_body": plain, "public": comment.get("public", True),
                       "attachments": [], "audit_id": audit_id, "via": {"channel": "api"}, "created_at": iso_now()})
    with state.lock:
        held["comments"].extend(events)
        if "status" in data:
            held["ticket"]["status"] = data["status"]
        held["ticket"]["updated_at"] = iso_now()
        answer = {"ticket": dict(held["ticket"]), "audit": {
            "id": audit_id, "ticket_id": ticket_id, "created_at": iso_now(),
            "author_id": events[0]["author_id"] if events else state.config.zendesk_agent_id,
            "metadata": {"system": {}, "custom": {}}, "events": events}}
    return lost_answer(request, "zendesk") or JSONResponse(answer)


@router.get("/api/v2/tickets/{ticket_id:int}/comments.json")
async def comments(ticket_id: int, request: Request) -> Response:
    state = _auth(request)
    held = ticket(state, ticket_id, request)
    with state.lock:
        listed = [dict(c) for c in held["comments"]]
    return JSONResponse({"comments": listed, "next_page": None, "previous_page": None, "count": len(listed)})
