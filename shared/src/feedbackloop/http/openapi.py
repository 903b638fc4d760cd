"""What each service's OpenAPI document says about problems, and the media types a route accepts.

Every operation documents its 4xx/5xx answers as ``application/problem+json`` with the shared ``Problem``
component (RFC 9457), for the statuses it can return; a route given a body in a media type it does not
declare answers 415 (:func:`require_declared_media_type`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute

from feedbackloop.http.problems import PROBLEM_BASE, PROBLEM_JSON, ProblemError

__all__ = ["PROBLEM_SCHEMA", "document_problems", "require_declared_media_type"]


#: The ``Problem`` component of every service's OpenAPI document: RFC 9457 members plus our extensions.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details (application/problem+json). `type` names the error family "
    f"({PROBLEM_BASE}<family>); extension members such as `errors`, `check` or `checks` add detail.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference", "description": "The error family",
                 "examples": [PROBLEM_BASE + "validation"]},
        "title": {"type": "string", "description": "Short summary of the problem"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599, "description": "The HTTP status code"},
        "detail": {"type": "string", "description": "What went wrong in this occurrence, and what to do"},
        "instance": {"type": "string", "format": "uri-reference", "description": "The request path"},
        "errors": {
            "type": "array",
            "description": "One entry per invalid field, parameter or item",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string", "description": "Dotted path: `items.3.text`, `cursor`, `body`"},
                    "message": {"type": "string"},
                    "type": {"type": "string", "description": "Machine-readable kind of the error"},
                },
                "additionalProperties": True,
            },
        },
    },
    "additionalProperties": True,
}

_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
_BODY_METHODS = frozenset({"post", "put", "patch"})
_UNREFUSED = frozenset({"/healthz", "/metrics"})  # never refused, never a problem (readyz documents its 503)
_DESCRIPTIONS = {
    400: "Malformed request: the body is not valid JSON (`malformed-json`), or a cursor or parameter is malformed",
    401: "No API key, or an invalid one (`WWW-Authenticate` says which)",
    403: "The API key lacks the scope this operation needs",
    404: "No such resource",
    408: "The request body did not arrive in time",
    413: "The request body is over the size limit",
    415: "The body's Content-Type is not one this operation takes",
    422: "A field or parameter is missing or invalid; `errors` names each",
    429: "Too many requests; see Retry-After",
    503: "Busy, or the store is away; nothing was done: retry after Retry-After",
}


def _statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses ``operation`` can answer, from what the shared app does to every request of its kind."""
    if path in _UNREFUSED:
        return set()
    parameters = operation.get("parameters", [])
    body = "requestBody" in operation
    # A route that reads its body itself (no requestBody in the document) declares its own 400.
    reads_body = body or (method in _BODY_METHODS and "400" in operation["responses"])
    statuses = {503}  # overload and a locked or away store, on every operation
    if body or method in _BODY_METHODS:
        statuses.add(413)  # the size limit refuses any body, read or not
    if reads_body:
        statuses |= {400, 408}  # undecodable JSON; a body trickling in too slowly
    if body:
        statuses |= {415, 422}
    if parameters:
        statuses.add(422)
    if operation.get("security"):
        statuses |= {401, 403}
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    return statuses


def _document(document: dict[str, Any]) -> dict[str, Any]:
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status in _statuses(path, method, operation):
                responses.setdefault(str(status), {"description": _DESCRIPTIONS[status]})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400 and "$ref" not in response:
                    if response.get("description") == "Validation Error":  # FastAPI's default 422
                        response["description"] = _DESCRIPTIONS[422]
                    response["content"] = dict(_PROBLEM_CONTENT)
            operation["responses"] = dict(sorted(responses.items()))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for default in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 body, which we never send
        if f'"#/components/schemas/{default}"' not in json.dumps(document):
            schemas.pop(default, None)
    return document


def document_problems(app: FastAPI, *extensions: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Make ``app.openapi()`` tell the truth about errors: a ``Problem`` schema, and on every operation the
    ``application/problem+json`` responses it can give (the service's own descriptions kept); then each of
    ``extensions`` edits the document (e.g. :func:`feedbackloop.contracts.webhooks.add_webhooks`). Generated
    once, on first use, after every route is registered."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = _document(generate())
            for extend in extensions:
                document = extend(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def require_declared_media_type(request: Request) -> None:
    """415 for a body whose Content-Type the route does not declare: a typed (pydantic) body takes JSON; a route
    that declares ``requestBody`` content in ``openapi_extra`` takes those media types. A body without a
    Content-Type is read as JSON, as FastAPI does. A route that declares neither reads its body itself."""
    content_type = request.headers.get("content-type")
    route = request.scope.get("route")
    if not content_type or not isinstance(route, APIRoute):
        return
    declared = (route.openapi_extra or {}).get("requestBody", {}).get("content")
    if declared:
        accepted = [m.lower() for m in declared]
    elif route.body_field is not None:  # JSON for Body(), the form media types for Form() and File()
        accepted = [str(getattr(route.body_field.field_info, "media_type", "application/json")).lower()]
    else:
        return
    essence = content_type.split(";", 1)[0].strip().lower()
    if essence in accepted or (any(_is_json(m) for m in accepted) and _is_json(essence)):
        return
    raise ProblemError(f"The body's Content-Type is {essence!r}; this operation takes {', '.join(accepted)}.",
                       status=415, title="Unsupported media type",
                       errors=[{"field": "content-type", "message": f"expected {' or '.join(accepted)}"}])


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")
