"""HTTP plumbing shared by the services."""

from feedbackloop.http.app import BodyLimit, build_app
from feedbackloop.http.auth import AdminKey, ReadKey, WriteKey, require
from feedbackloop.http.json_input import InvalidJson, load_json, parse_json_body
from feedbackloop.http.pagination import decode_cursor, encode_cursor
from feedbackloop.http.problems import BadRequest, Conflict, MalformedJson, NotFound, ProblemError, problem_response

__all__ = [
    "AdminKey",
    "BadRequest",
    "BodyLimit",
    "Conflict",
    "InvalidJson",
    "MalformedJson",
    "NotFound",
    "ProblemError",
    "ReadKey",
    "WriteKey",
    "build_app",
    "decode_cursor",
    "encode_cursor",
    "load_json",
    "parse_json_body",
    "problem_response",
    "require",
]
