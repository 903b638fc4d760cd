"""Structured logging: JSON lines in production, readable lines under ``make run``.

Everything goes through the standard ``logging`` module, so uvicorn's and aiokafka's records come
out in the same format as ours. Fields bound with :func:`bind_event` (event id, trace id) appear on
every line logged while an event is handled.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

__all__ = ["bind_event", "configure_logging", "get_logger"]


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
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


def bind_event(event_id: str, traceparent: str | None) -> Any:
    """Bind the event and trace ids to the log context; returns the tokens to reset them with."""
    trace_id = traceparent.split("-")[1] if traceparent and traceparent.count("-") == 3 else None
    return structlog.contextvars.bind_contextvars(event_id=event_id, trace_id=trace_id)
