"""Test kit shared by every service's tests (a pytest plugin: ``pytest_plugins = ["feedbackloop.testing"]``).

Real parts only: a real embedded broker per test on a free port, SQLite files in the test's own
temporary folder, real HTTP servers on loopback. Waits poll a condition against a deadline and
fail with what they last saw; nothing sleeps blindly.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from feedbackloop.broker import EmbeddedBroker
from feedbackloop.keys import KeyStore
from feedbackloop.settings import CommonSettings, KafkaSettings

__all__ = ["common_settings", "free_port", "kafka_settings", "serve_app", "wait_for"]

T = TypeVar("T")


def handed_data(relative: str) -> Path:
    """A file of the data handed to the project (``../shared/`` beside the checkout: datasets, vendor fixtures).

    ``FEEDBACKLOOP_HANDED_DIR`` points elsewhere. A missing file fails the test: data tests are never skipped.
    """
    import os

    root = Path(os.environ.get("FEEDBACKLOOP_HANDED_DIR") or Path(__file__).resolve().parents[3].parent / "shared")
    path = root / relative
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the handed data (../shared/) must sit beside the checkout")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    """A fresh, empty Kafka-protocol broker for this test."""
    embedded = EmbeddedBroker(port=free_port())
    embedded.start()
    yield embedded
    embedded.stop()


@pytest.fixture
def database_url(tmp_path: Path) -> Callable[[str], str]:
    """Makes a fresh, empty store URL for a service name: a SQLite file in this test's folder.

    Use it for every store a test opens, so that the suite can run on PostgreSQL too.
    """

    def make(name: str) -> str:
        return f"sqlite+aiosqlite:///{tmp_path}/{name}.db"

    return make


@pytest.fixture
def kafka_settings(broker: EmbeddedBroker) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=broker.bootstrap, topic_partitions=3)


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return tmp_path / "keys.json"


@pytest.fixture
def common_settings(keys_file: Path) -> CommonSettings:
    return CommonSettings(keys_file=keys_file, log_format="console", log_level="WARNING")


@pytest.fixture
def admin_key(keys_file: Path) -> str:
    return KeyStore(keys_file).create("test admin", ["admin"])[1]


@pytest.fixture
def read_key(keys_file: Path) -> str:
    return KeyStore(keys_file).create("test reader", ["read"])[1]


@asynccontextmanager
async def serve_app(app: FastAPI, port: int | None = None) -> AsyncIterator[str]:
    """Run ``app`` under a real uvicorn server on loopback (lifespan included); yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server exited during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start in 30 s")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def wait_for(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    *,
    timeout: float = 30,
    what: str = "condition",
    interval: float = 0.1,
) -> T:
    """Poll ``probe`` until ``until(result)``; on timeout fail with the last result seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await probe()
            if until(last):
                return last  # type: ignore[no-any-return]
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}"[:4000])
        await asyncio.sleep(interval)
