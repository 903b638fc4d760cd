"""HTTP plumbing shared by the services."""

from feedbackloop.http.app import build_app
from feedbackloop.http.auth import AdminKey, ReadKey, WriteKey, require
from feedbackloop.http.json_input import InvalidJson, load_json, parse_json_body
from feedbackloop.http.pagination import cursor_key, decode_cursor, encode_cursor, keyset_page, malformed_cursor
from feedbackloop.http.problems import BadRequest, Conflict, MalformedJson, NotFound, ProblemError, problem_response

__all__ = [
    "AdminKey",
    "BadRequest",
    "Conflict",
    "InvalidJson",
    "MalformedJson",
    "NotFound",
    "ProblemError",
    "ReadKey",
    "WriteKey",
    "build_app",
    "cursor_key",
    "decode_cursor",
    "encode_cursor",
    "keyset_page",
    "load_json",
    "malformed_cursor",
    "parse_json_body",
    "problem_response",
    "require",
]
