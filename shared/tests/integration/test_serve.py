"""How ``python -m <service>`` serves its app (:mod:`feedbackloop.serve`), on a real uvicorn server."""

from __future__ import annotations

import gc

import httpx
import uvicorn
from fastapi import FastAPI

from feedbackloop.serve import ServiceServer
from feedbackloop_testing import free_port


async def test_once_the_app_is_up_what_start_up_made_is_frozen_out_of_the_collectors_sight() -> None:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"ok": "yes"}

    port = free_port()
    server = ServiceServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    server.config.load()
    server.lifespan = server.config.lifespan_class(server.config)
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        await server.startup()
        assert server.started and gc.get_freeze_count() > 0
        async with httpx.AsyncClient() as client:  # and the server serves as before
            assert (await client.get(f"http://127.0.0.1:{port}/ping")).json() == {"ok": "yes"}
    finally:
        await server.shutdown()
        gc.unfreeze()  # this test process is not a service: give the collector its objects back
