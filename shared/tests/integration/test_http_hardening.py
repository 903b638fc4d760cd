"""The shared app and server under pressure: a cap on requests in flight, a busy store, security headers, slow
and oversized requests. Each app runs under a real uvicorn server configured as ``feedbackloop.serve`` does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from feedbackloop.db import create_engine
from feedbackloop.db.engine import POOL_TIMEOUT_SECONDS
from feedbackloop.http import build_app
from feedbackloop.http.security_headers import DOCS_POLICY, PAGE_POLICY
from feedbackloop.serve import server_config
from feedbackloop.settings import CommonSettings, ServiceSettings
from feedbackloop_testing import free_port

PROBLEM = "application/problem+json"


class Note(BaseModel):
    text: str


def _app(tmp_path: Path, release: asyncio.Event, **common: object) -> FastAPI:
    router = APIRouter()
    busy_engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/busy.db", pool_size=1, max_overflow=0,
                                      pool_timeout=0.2)

    @router.get("/slow")
    async def slow() -> dict[str, str]:
        await release.wait()
        return {"status": "done"}

    @router.get("/store")
    async def store() -> dict[str, int]:
        async with busy_engine.connect() as held, busy_engine.connect() as second:  # the second waits: pool of 1
            return {"n": (await held.execute(text("SELECT 1"))).scalar_one() + (
                await second.execute(text("SELECT 1"))).scalar_one()}

    @router.post("/typed")
    async def typed(note: Note) -> dict[str, str]:
        return {"text": note.text}

    @router.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @router.get("/crash")
    async def crash() -> None:
        raise RuntimeError("a bug")

    @router.get("/page")
    async def page() -> object:
        from fastapi.responses import HTMLResponse

        return HTMLResponse("<!doctype html><style>p{color:red}</style><p>hi</p>")

    settings = ServiceSettings(common=CommonSettings(keys_file=tmp_path / "keys.json", **common))  # type: ignore[arg-type]
    return build_app(service="hardening", title="t", description="t", version="0", settings=settings, lifespan=None,
                     routers=[router])


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[tuple[str, int]]:
    """``app`` under uvicorn as every service is served (``server_config``); yields its URL and port."""
    port = free_port()
    server = uvicorn.Server(server_config(app, app.state.settings, port=port))
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:
        assert not task.done() and time.monotonic() < deadline, "server did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        await task


async def _raw(port: int, data: bytes, *, wait: float) -> tuple[bytes, float]:
    """Send ``data`` on a fresh connection and read until the server closes it (or ``wait`` seconds pass)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(data)
    await writer.drain()
    answer = b""
    try:
        async with asyncio.timeout(wait):
            while chunk := await reader.read(65536):
                answer += chunk
    except TimeoutError:
        pass
    finally:
        writer.close()
    return answer, time.monotonic() - started


async def test_requests_beyond_the_cap_answer_503_with_retry_after_at_once(tmp_path: Path) -> None:
    release = asyncio.Event()
    async with served(_app(tmp_path, release, max_concurrent_requests=2)) as (url, _), \
            httpx.AsyncClient(base_url=url, timeout=10) as client:
        held = [asyncio.create_task(client.get("/slow")) for _ in range(2)]
        await asyncio.sleep(0.3)
        started = time.monotonic()
        refused = await client.get("/slow")
        assert time.monotonic() - started < 0.5
        assert refused.status_code == 503 and refused.headers["content-type"] == PROBLEM, refused.text
        assert int(refused.headers["retry-after"]) >= 1 and refused.json()["title"] == "Service busy"
        assert refused.headers["x-content-type-options"] == "nosniff", "a refusal carries the security headers"
        for probe in ("/healthz", "/metrics"):  # never refused
            assert (await client.get(probe)).status_code == 200, probe
        assert (await client.get("/readyz")).status_code == 503  # no runtime here: not ready, but answered
        release.set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
        assert (await client.get("/slow")).status_code == 200  # the cap frees as requests finish


async def test_a_store_with_no_free_connection_answers_503_not_500(tmp_path: Path) -> None:
    async with served(_app(tmp_path, asyncio.Event())) as (url, _), httpx.AsyncClient(base_url=url) as client:
        busy = await client.get("/store")
    assert busy.status_code == 503 and busy.headers["content-type"] == PROBLEM, busy.text
    assert busy.headers["retry-after"] and busy.json()["title"] == "Store busy"


async def test_engines_wait_briefly_for_a_connection(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/store.db")
    try:
        assert engine.pool.timeout() == POOL_TIMEOUT_SECONDS <= 5  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


def test_a_new_sqlite_store_is_owner_only(tmp_path: Path) -> None:
    create_engine(f"sqlite+aiosqlite:///{tmp_path}/var/ingest.db")
    assert (tmp_path / "var").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "var" / "ingest.db").stat().st_mode & 0o777 == 0o600


async def test_every_response_carries_the_security_headers(tmp_path: Path) -> None:
    release = asyncio.Event()
    release.set()
    async with served(_app(tmp_path, release, max_concurrent_requests=1)) as (url, _), \
            httpx.AsyncClient(base_url=url) as client:
        answers = {
            "json": await client.get("/slow"),
            "html": await client.get("/page"),
            "404": await client.get("/nowhere"),
            "413": await client.post("/raw", content=b"x" * (2 << 20)),
            "422": await client.post("/typed", json={}),
            "healthz": await client.get("/healthz"),
            "500": await client.get("/crash"),
        }
        docs = await client.get("/docs")
    assert answers["500"].status_code == 500 and answers["413"].status_code == 413
    for what, answer in answers.items():
        assert answer.headers.get("content-security-policy") == PAGE_POLICY, what
        assert answer.headers.get("x-frame-options") == "DENY", what
        assert answer.headers.get("x-content-type-options") == "nosniff", what
        assert answer.headers.get("referrer-policy") == "no-referrer", what
    assert "script-src" not in PAGE_POLICY and "frame-ancestors 'none'" in PAGE_POLICY
    assert docs.status_code == 200 and docs.headers["content-security-policy"] == DOCS_POLICY
    assert "https://cdn.jsdelivr.net" in DOCS_POLICY and docs.headers["x-frame-options"] == "DENY"


async def test_a_body_trickling_in_slower_than_the_timeout_is_answered_408(tmp_path: Path) -> None:
    async with served(_app(tmp_path, asyncio.Event(), body_timeout_seconds=0.5)) as (url, port), \
            httpx.AsyncClient(base_url=url) as client:
        for path in ("/typed", "/raw"):
            head = (f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                    "content-length: 100\r\n\r\n").encode()
            answer, seconds = await _raw(port, head + b'{"text": "', wait=5)
            assert answer.startswith(b"HTTP/1.1 408"), (path, answer[:300])
            assert b"application/problem+json" in answer and seconds < 3, (path, seconds)
        assert (await client.post("/typed", json={"text": "on time"})).json() == {"text": "on time"}


async def test_headers_trickling_in_are_cut_off_and_an_idle_connection_closed(tmp_path: Path) -> None:
    async with served(_app(tmp_path, asyncio.Event(), header_timeout_seconds=0.5)) as (url, port), \
            httpx.AsyncClient(base_url=url) as client:
        partial, seconds = await _raw(port, b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: 1", wait=5)
        assert partial.startswith(b"HTTP/1.1 408") and seconds < 3, (partial, seconds)
        idle, seconds = await _raw(port, b"", wait=5)
        assert idle == b"" and seconds < 3, (idle, seconds)  # closed, not held
        assert (await client.get("/healthz")).status_code == 200  # a prompt client is not affected


async def test_oversized_headers_are_refused(tmp_path: Path) -> None:
    async with served(_app(tmp_path, asyncio.Event(), max_header_bytes=8192)) as (url, port), \
            httpx.AsyncClient(base_url=url) as client:
        answer, _ = await _raw(port, b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 20_000 + b"\r\n\r\n",
                               wait=5)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        assert (await client.get("/healthz", headers={"x-fair": "a" * 4000})).status_code == 200


def test_the_server_config_carries_the_limits(tmp_path: Path) -> None:
    settings = ServiceSettings(common=CommonSettings(keys_file=tmp_path / "k.json", keep_alive_seconds=7,
                                                     max_header_bytes=4096, header_timeout_seconds=3,
                                                     forwarded_allow_ips="10.0.0.1"))
    config = server_config(FastAPI(), settings, port=1)
    assert config.timeout_keep_alive == 7 and config.h11_max_incomplete_event_size == 4096
    assert config.forwarded_allow_ips == ["10.0.0.1"] or config.forwarded_allow_ips == "10.0.0.1"
    protocol = config.http
    assert not isinstance(protocol, str)
    assert protocol.header_timeout == 3 and protocol.max_header_bytes == 4096  # type: ignore[attr-defined]
