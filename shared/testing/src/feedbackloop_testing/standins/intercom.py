"""Intercom: ``POST /conversations/{id}/reply`` (an admin's comment or note) and ``GET /conversations/{id}``.

Bearer token; ``Intercom-Version`` accepted. A conversation exists on first touch (or made through
``POST /_standin/intercom/conversations``) unless marked missing (404)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from feedbackloop_testing.standins._common import VendorError, json_body, lost_answer, state_of
from feedbackloop_testing.standins.state import State

__all__ = ["conversation", "router"]

router = APIRouter()


def _error(status: int, code: str, message: str) -> VendorError:
    return VendorError(JSONResponse({"type": "error.list", "request_id": uuid.uuid4().hex,
                                     "errors": [{"code": code, "message": message}]}, status_code=status))


def _auth(request: Request) -> State:
    state = state_of(request)
    if request.headers.get("authorization", "") != f"Bearer {state.config.intercom_token}":
        raise _error(401, "unauthorized", "Access Token Invalid")
    return state


def conversation(state: State, conversation_id: str) -> dict[str, Any]:
    """The conversation, made on first touch; 404 when marked missing."""
    if state.is_missing("intercom", conversation_id):
        raise _error(404, "not_found", "Resource Not Found")
    with state.lock:
        if conversation_id not in state.intercom:
            now = int(time.time())
            state.intercom[conversation_id] = {
                "type": "conversation", "id": conversation_id, "created_at": now, "updated_at": now,
                "state": "open", "open": True, "read": True, "priority": "not_priority",
                "source": {"type": "conversation", "id": conversation_id, "delivered_as": "customer_initiated",
                           "body": "", "author": {"type": "user", "id": "standin-user"}},
                "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [],
                                       "total_count": 0}}
        return state.intercom[conversation_id]


@router.post("/conversations/{conversation_id}/reply")
async def reply(conversation_id: str, request: Request) -> Response:
    state = _auth(request)
    held = conversation(state, conversation_id)
    body = await json_body(request, JSONResponse({"type": "error.list", "errors": [
        {"code": "parameter_invalid", "message": "Invalid JSON"}]}, status_code=400))
    if not isinstance(body, dict):
        raise _error(400, "parameter_invalid", "The body must be a JSON object")
    if body.get("message_type") not in ("comment", "note"):
        raise _error(400, "parameter_invalid", "message_type must be comment or note")
    if body.get("type") != "admin":
        raise _error(400, "parameter_invalid", "type must be admin")
    if "admin_id" not in body:
        raise _error(400, "parameter_not_found", "admin_id is required")
    if str(body["admin_id"]) != state.config.intercom_admin_id:
        raise _error(404, "admin_not_found", "Admin not found")
    if not isinstance(body.get("body"), str) or not body["body"].strip():
        raise _error(400, "parameter_not_found", "Body is required")
    now = int(time.time())
    with state.lock:
        parts = held["conversation_parts"]
        parts["conversation_parts"].append({
            "type": "conversation_part", "id": str(state.next_id()), "part_type": body["message_type"],
            "body": body["body"], "created_at": now, "updated_at": now, "notified_at": now,
            "author": {"type": "admin", "id": str(body["admin_id"]), "name": "Stand-in Admin"},
            "attachments": [], "redacted": False})
        parts["total_count"] = len(parts["conversation_parts"])
        held["updated_at"] = now
        answer = dict(held)
    return lost_answer(request, "intercom") or JSONResponse(answer)


@router.get("/conversations/{conversation_id}")
async def get_conversation(conversation_id: str, request: Request) -> Response:
    state = _auth(request)
    return JSONResponse(conversation(state, conversation_id))
