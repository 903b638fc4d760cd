"""RFC 9457 problem details: every HTTP error of every service is one of these.

    ProblemError            any error a route raises on purpose; carries its status
    ├── NotFound            404
    ├── Conflict            409
    └── BadRequest          400 (with ``errors`` naming fields)
        └── MalformedJson   400 "Malformed JSON", ``errors: [{"field": "body", "message": <why>}]``

Request validation errors become 422 (400 for a body that is not JSON) with one entry per field in
``errors``: ``{"field": "items.3.text", "message": "Field required"}``. A body too deep or with too long a
number for the JSON decoder is a 400 ``MalformedJson`` too, wherever it was decoded: by FastAPI for a typed
body, by :mod:`feedbackloop.http.json_input`, or by a route's own ``json.loads`` / ``yaml.safe_load`` (a
``RecursionError`` raised inside the json or yaml package). Any other exception is a logged 500.

Each body's ``type`` names its error family, a URI under ``PROBLEM_BASE`` (:data:`PROBLEM_TYPES`, the README's
table): by status, except ``malformed-json`` for a 400 whose body could not be decoded and ``unsupported-media-type``
for a body of a media type the operation does not take (415, :func:`require_declared_media_type`).
:func:`document_problems` makes each service's OpenAPI document say so: a ``Problem`` component and the
``application/problem+json`` responses each operation can give, in place of FastAPI's ``HTTPValidationError``.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from feedbackloop.logs import get_logger

__all__ = [
    "PROBLEM_BASE",
    "PROBLEM_JSON",
    "PROBLEM_TYPES",
    "BadRequest",
    "Conflict",
    "MalformedJson",
    "NotFound",
    "ProblemError",
    "decoding_failure",
    "install_problem_handlers",
    "problem_response",
    "problem_type",
]

PROBLEM_JSON = "application/problem+json"
#: Where the problem type URIs live; each is ``PROBLEM_BASE + <family>``.
PROBLEM_BASE = "https://feedbackloop.dev/problems/"
#: Family → (status, what it means). The README's table of problem types is this one.
PROBLEM_TYPES: dict[str, tuple[int, str]] = {
    "malformed-json": (400, "The request body is not decodable JSON: syntax, nesting depth, number size"),
    "bad-request": (400, "Another malformed request, e.g. a cursor not passed back as it was returned"),
    "unauthorized": (401, "No API key, an invalid one, or a webhook whose signature or secret check failed"),
    "forbidden": (403, "The API key lacks the scope the operation needs"),
    "not-found": (404, "No such resource (or route)"),
    "method-not-allowed": (405, "The path exists; the method does not"),
    "request-timeout": (408, "The request body did not arrive in time"),
    "conflict": (409, "The resource's state does not allow it, or another change came first"),
    "content-too-large": (413, "The body, or the number of items in it, is over the limit"),
    "unsupported-media-type": (415, "The body's Content-Type is not one the operation takes"),
    "validation": (422, "A field, parameter or item is missing or invalid; `errors` names each"),
    "rate-limited": (429, "Too many requests; see Retry-After"),
    "internal-error": (500, "The server failed; it is logged"),
    "bad-gateway": (502, "A service we call on your behalf (a tracker) refused or failed; nothing was done"),
    "unavailable": (503, "Busy, not ready, or the store is away; nothing was done: retry after Retry-After"),
}
#: The family a status gets unless the problem names another: the first of the status in ``PROBLEM_TYPES`` that is
#: not a refinement (``malformed-json`` is named by the decoders; a malformed cursor is a ``bad-request``).
_REFINEMENTS = frozenset({"malformed-json"})
_FAMILY_OF_STATUS = {status: family for family, (status, _) in reversed(PROBLEM_TYPES.items())
                     if family not in _REFINEMENTS}
#: What ``instance`` (a decoded request path) keeps unencoded: RFC 3986 ``pchar`` and ``/``; all else, ``%``
#: included, is percent-encoded, so that it is a URI reference whatever the path held.
_URI_SAFE = "/:@!$&'()*+,;=-._~"
log = get_logger(__name__)


def problem_type(status: int, family: str | None = None) -> str:
    """The ``type`` URI of a problem: ``family``'s, else the family of ``status``; ``about:blank`` for a status
    with no family (RFC 9457: then the title is the status phrase's)."""
    family = family or _FAMILY_OF_STATUS.get(status)
    return PROBLEM_BASE + family if family else "about:blank"


class ProblemError(Exception):
    status: int = 400
    title: str = "Bad request"
    #: The error family (a key of ``PROBLEM_TYPES``); None: the family of ``status``.
    family: str | None = None

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        self.errors = errors
        self.headers = headers
        self.extra = extra


class NotFound(ProblemError):
    status, title = 404, "Not found"


class Conflict(ProblemError):
    status, title = 409, "Conflict"


class BadRequest(ProblemError):
    status, title = 400, "Bad request"


class MalformedJson(BadRequest):
    """The request body cannot be decoded; ``reason`` says why."""

    title = "Malformed JSON"
    family = "malformed-json"

    def __init__(self, reason: str) -> None:
        super().__init__("The request body is not valid JSON.", errors=[{"field": "body", "message": reason}])


def decoding_failure(exc: BaseException) -> str | None:
    """Why decoding a document failed, in words for the client, when ``exc`` is how a decoder fails on
    hostile input rather than on a syntax error; else None."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return f"a number has more than {sys.get_int_max_str_digits()} digits"
    return None


def _raised_by_decoder(exc: BaseException) -> bool:
    """True when the innermost frames of ``exc`` are the json or yaml package's: it failed decoding a document."""
    modules = [frame.f_globals.get("__name__", "") for frame, _ in traceback.walk_tb(exc.__traceback__)]
    return any(module.partition(".")[0] in ("json", "yaml") for module in modules[-3:])


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    family: str | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": problem_type(status, family), "title": title, "status": status, "detail": detail}
    if instance:  # a URI reference (RFC 9457 §3.1.5): the path as it was on the wire, percent-encoded
        body["instance"] = quote(instance, safe=_URI_SAFE, errors="backslashreplace")
    if errors:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return _response_of(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem_response(
                400,
                "Malformed JSON",
                "The request body is not valid JSON.",
                instance=request.url.path,
                family="malformed-json",
                errors=[
                    {"field": "body", "message": str(e.get("ctx", {}).get("error", e["msg"]))}
                    for e in errors
                    if e.get("type") == "json_invalid"
                ],
            )
        fields = [{"field": _field(tuple(e["loc"])), "message": e["msg"], "type": e["type"]} for e in errors[:50]]
        named = ", ".join(sorted({f["field"] for f in fields})[:5])
        return problem_response(
            422, "Invalid request", f"Invalid value for: {named}.", instance=request.url.path, errors=fields
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        reason = decoding_failure(exc.__cause__) if exc.status_code == 400 and exc.__cause__ else None
        if reason is not None:  # FastAPI's own decoding of a typed body, which it reports without a reason
            return _response_of(request, MalformedJson(reason))
        titles = {
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not found",
            405: "Method not allowed",
            413: "Content too large",
            415: "Unsupported media type",
            429: "Too many requests",
        }
        return problem_response(
            exc.status_code,
            titles.get(exc.status_code, "Error"),
            str(exc.detail),
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OperationalError)
    async def _store_away(request: Request, exc: OperationalError) -> JSONResponse:
        # Locked or unreachable store: nothing was stored; the client should try again shortly.
        log.warning("store unavailable", path=request.url.path, error=str(exc.orig)[:200])
        return problem_response(503, "Store unavailable", "The service's store is busy or away; nothing was stored. "
                                "Retry shortly.", instance=request.url.path, headers={"Retry-After": "5"})

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        # A route that decodes JSON or YAML itself meets a document nested deeper than the stack: the client's doing.
        if _raised_by_decoder(exc):
            return _response_of(request, MalformedJson("nested too deeply"))
        return _internal_error(request, exc)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        return _internal_error(request, exc)


def _response_of(request: Request, exc: ProblemError) -> JSONResponse:
    return problem_response(
        exc.status,
        exc.title,
        exc.detail,
        instance=request.url.path,
        errors=exc.errors,
        headers=exc.headers,
        family=exc.family,
        **exc.extra,
    )


def _internal_error(request: Request, exc: BaseException) -> JSONResponse:
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    return problem_response(
        500, "Internal error", "The server failed to handle this request; it is logged.", instance=request.url.path
    )
