"""Run one service's app under uvicorn: ``python -m <service>`` calls :func:`serve`.

uvicorn turns SIGTERM and SIGINT into a graceful shutdown: the app's lifespan then stops the
consumers (the batch in hand finishes and commits), the relay and the store, in that order.

A slow or oversized client cannot hold a connection (:mod:`feedbackloop.http.slow_clients`): request line and
headers must arrive within ``FEEDBACKLOOP_HEADER_TIMEOUT_SECONDS`` and stay under
``FEEDBACKLOOP_MAX_HEADER_BYTES`` (on either HTTP parser), an idle kept-alive connection closes after
``FEEDBACKLOOP_KEEP_ALIVE_SECONDS``, and ``X-Forwarded-*`` headers are believed only from
``FEEDBACKLOOP_FORWARDED_ALLOW_IPS``.
"""

from __future__ import annotations

import gc
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from typing import Any

import uvicorn
from fastapi import FastAPI

from feedbackloop.http.slow_clients import GuardedHttpTools
from feedbackloop.logs import configure_logging
from feedbackloop.settings import ServiceSettings

__all__ = ["ServiceServer", "container_defaults", "freeze_startup_heap", "serve", "server_config"]


def serve(service: str, create_app: Callable[[ServiceSettings], FastAPI], settings: ServiceSettings) -> None:
    configure_logging(service, level=settings.common.log_level, fmt=settings.common.log_format)
    app = create_app(settings)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler that was
    # there before it; with this one the process then exits 0, as a finished graceful stop should.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    server = ServiceServer(server_config(app, settings))
    server.run()
    if not server.started:
        sys.exit(3)  # as uvicorn.run: the app did not start (a port taken, a lifespan that failed)


class ServiceServer(uvicorn.Server):
    """uvicorn's server, freezing the start-up heap (:func:`freeze_startup_heap`) once the app is up."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            freeze_startup_heap()


def freeze_startup_heap() -> None:
    """Take what start-up made (modules, settings, the app, a loaded model) out of the cycle collector's sight.

    It lives as long as the process, yet every full collection walked all of it again: about a tenth of
    aggregation's CPU under load and a few per cent of the others' (``make bench``'s e2e phase, measured with
    ``gc.callbacks``). Frozen objects are never collected, so this runs once, after a collection, when the
    service is up — in the service's own process only (tests build many apps in one process).
    """
    gc.collect()
    gc.freeze()


def container_defaults(settings: ServiceSettings, environ: Mapping[str, str]) -> dict[str, Any]:
    """What an image changes in a service's defaults: it listens on every interface, and leaves schema upgrades
    to ``feedbackloop migrate`` (production); each only where the service's own variable does not say."""
    prefix = str(settings.model_config.get("env_prefix", "")).upper()
    wanted: dict[str, Any] = {"host": "0.0.0.0", "auto_migrate": False}
    return {name: value for name, value in wanted.items() if f"{prefix}{name.upper()}" not in environ}


def server_config(app: FastAPI, settings: ServiceSettings, *, port: int | None = None) -> uvicorn.Config:
    """How every service is served: its host and port (``port`` overrides), and the slow-client limits."""
    common = settings.common
    guarded = type("GuardedHttpTools", (GuardedHttpTools,), {"header_timeout": common.header_timeout_seconds,
                                                             "max_header_bytes": common.max_header_bytes})
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port if port is None else port,
        http=guarded,
        h11_max_incomplete_event_size=common.max_header_bytes,  # the same cap, should the h11 parser be chosen
        timeout_keep_alive=common.keep_alive_seconds,
        forwarded_allow_ips=common.forwarded_allow_ips,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
        server_header=False,
    )
