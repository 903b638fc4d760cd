"""HTTP plumbing shared by the services."""

from feedbackloop.http.app import BodyLimit, build_app
from feedbackloop.http.auth import AdminKey, ReadKey, WriteKey, require
from feedbackloop.http.pagination import decode_cursor, encode_cursor
from feedbackloop.http.problems import BadRequest, Conflict, NotFound, ProblemError, problem_response

__all__ = [
    "AdminKey",
    "BadRequest",
    "BodyLimit",
    "Conflict",
    "NotFound",
    "ProblemError",
    "ReadKey",
    "WriteKey",
    "build_app",
    "decode_cursor",
    "encode_cursor",
    "problem_response",
    "require",
]
