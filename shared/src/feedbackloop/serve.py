"""Run one service's app under uvicorn: ``python -m <service>`` calls :func:`serve`.

uvicorn turns SIGTERM and SIGINT into a graceful shutdown: the app's lifespan then stops the
consumers (the batch in hand finishes and commits), the relay and the store, in that order.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from feedbackloop.logs import configure_logging
from feedbackloop.settings import ServiceSettings

__all__ = ["serve"]


def serve(service: str, create_app: Callable[[ServiceSettings], FastAPI], settings: ServiceSettings) -> None:
    configure_logging(service, level=settings.common.log_level, fmt=settings.common.log_format)
    app = create_app(settings)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler that was
    # there before it; with this one the process then exits 0, as a finished graceful stop should.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
        server_header=False,
    )
