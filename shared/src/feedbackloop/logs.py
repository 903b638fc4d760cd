"""Structured logging: JSON lines in production, readable lines under ``make run``.

Everything goes through the standard ``logging`` module, so uvicorn's and aiokafka's records come
out in the same format as ours. Fields bound with :func:`bind_event` (event id, trace id) appear on
every line logged while an event is handled.

No secret reaches a log line, in either format:

- tracebacks are plain text, never with local variables (structlog's rich/better-exceptions console
  tracebacks print every frame's locals: request bodies, headers, API keys, signing secrets);
- :func:`redact_secrets`, the last step before rendering, masks known secret shapes (``Bearer``/``Basic``
  credentials, ``flk_…`` API keys, ``whsec_…`` secrets, ``password=…``-like pairs) in every value and in the
  rendered exception text, the whole value of any field named like a secret (``authorization``,
  ``smtp_password``…), and every secret value registered with :func:`register_secrets` (the services'
  ``SecretStr`` settings, by :func:`feedbackloop.http.build_app`).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import structlog
from opentelemetry import trace
from pydantic import BaseModel, SecretStr
from structlog.typing import EventDict, WrappedLogger

__all__ = [
    "REDACTED",
    "bind_event",
    "configure_logging",
    "get_logger",
    "redact_secrets",
    "redact_text",
    "register_secrets",
    "secret_values",
]

REDACTED = "[REDACTED]"

# Linear-time patterns (bounded repeats, literal starts): a log line can carry untrusted text.
_SECRET_NAME = r"(?:secret|password|passwd|token|authorization|api[_-]?key|signature|cookie|credential)"
_SECRET_KEY = re.compile(_SECRET_NAME, re.IGNORECASE)
_SECRET_SHAPES = re.compile(
    r"\b(?P<scheme>(?-i:Bearer|Basic)) +[^\s'\",;]+"  # an Authorization header's credentials
    r"|\bflk_[\w-]+"  # our API keys
    r"|\bwhsec_[\w+/=-]+"  # Standard Webhooks secrets
    # name=value / "name": "value" pairs in text: query strings, reprs, exception messages
    r"|(?P<pair>" + _SECRET_NAME + r"[\w-]{0,32}['\"]?\s{0,3}[:=]\s{0,3}(?:(?-i:b)?['\"])?)"
    r"(?:(?:Bearer|Basic) +)?(?!\[REDACTED\])[^\s'\",;&)}\]]+",
    re.IGNORECASE,
)
_known: list[str] = []
_known_pattern = re.compile(r"(?!)")  # matches nothing until secrets are registered


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Route every log record of the process to ``stream`` (stderr) as JSON lines or console lines."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Any
    if fmt == "console":
        # plain_traceback: the default (rich) prints each frame's local variables, secrets included
        renderer = structlog.dev.ConsoleRenderer(
            colors=(stream or sys.stderr).isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        # The exception is rendered to text here, for our records and foreign ones alike, so that it is redacted.
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "uvicorn.access", "httpx", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)


def add_trace_ids(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """``trace_id``/``span_id`` of the current OpenTelemetry span (an HTTP request's, a consumed event's)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", trace.format_trace_id(context.trace_id))
        event_dict.setdefault("span_id", trace.format_span_id(context.span_id))
    return event_dict


def bind_event(event_id: str, traceparent: str | None) -> Any:
    """Bind the event and trace ids to the log context; returns the tokens to reset them with."""
    trace_id = traceparent.split("-")[1] if traceparent and traceparent.count("-") == 3 else None
    return structlog.contextvars.bind_contextvars(event_id=event_id, trace_id=trace_id)


def register_secrets(values: Iterable[str]) -> None:
    """Mask these exact values wherever they appear in a log line from now on (values under 8 characters
    are too likely to be ordinary words to mask everywhere; the shapes and field names still apply)."""
    global _known_pattern
    _known.extend(v for v in values if len(v) >= 8 and v not in _known)
    if _known:
        # longest first, so that a secret containing another is masked whole
        _known_pattern = re.compile("|".join(re.escape(v) for v in sorted(_known, key=len, reverse=True)))


def secret_values(settings: BaseModel) -> list[str]:
    """Every ``SecretStr`` value in ``settings``, nested settings included."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            found += secret_values(value)
    return found


def redact_text(text: str) -> str:
    """``text`` with every known secret and secret shape masked."""
    text = _known_pattern.sub(REDACTED, text)
    return _SECRET_SHAPES.sub(_mask, text)


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """A structlog processor: every value of ``event_dict`` redacted (see the module docstring)."""
    return {key: _redacted(key, value) for key, value in event_dict.items()}


def _mask(match: re.Match[str]) -> str:
    if match.group("scheme"):
        return f"{match.group('scheme')} {REDACTED}"
    if match.group("pair"):
        return match.group("pair") + REDACTED
    return REDACTED


def _redacted(key: object, value: Any) -> Any:
    if isinstance(key, str) and _SECRET_KEY.search(key):
        unset = value is None or isinstance(value, bool) or (isinstance(value, str) and not value)
        return value if unset else REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {k: _redacted(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redacted(None, v) for v in value]
    # any other object is rendered by its repr in both formats: redact that
    return redact_text(repr(value))
