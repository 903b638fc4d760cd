"""Test kit shared by every service's tests (a pytest plugin: ``pytest_plugins = ["feedbackloop_testing"]``).

Real parts only: a real embedded broker per test on a free port, SQLite files in the test's own
temporary folder (or, with ``FEEDBACKLOOP_TEST_DATABASE=postgresql``, a fresh database per test on one
throwaway PostgreSQL cluster per session), real HTTP servers on loopback. Waits poll a condition against a deadline and
fail with what they last saw; nothing sleeps blindly.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
import pytest
import structlog
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import text

from feedbackloop.apache_kafka import KafkaCluster, fetch_kafka
from feedbackloop.broker import Broker, EmbeddedBroker, free_port
from feedbackloop.contracts.envelope import Envelope, decode, encode, new_envelope
from feedbackloop.contracts.topics import Topic
from feedbackloop.db.engine import create_engine
from feedbackloop.keys import KeyStore
from feedbackloop.logs import configure_logging
from feedbackloop.runtime.kafka import headers_dict
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing.handed import (  # the handed-data tier's hooks, registered with this plugin
    handed_data,
    handed_root,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_terminal_summary,
)
from feedbackloop_testing.standins.fixture import standins as standins  # the vendor stand-ins
from feedbackloop_testing.throwaway import ThrowawayPostgres

__all__ = [
    "broker_kind_under_test",
    "captured_logs",
    "common_settings",
    "database_kind_under_test",
    "database_url",
    "free_port",
    "handed_data",
    "handed_root",
    "kafka_settings",
    "lasting_store_url",
    "make_test_broker",
    "postgres_server",
    "postgres_store_url",
    "postgres_url",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_terminal_summary",
    "query_store",
    "serve_app",
    "store_url",
    "wait_for",
    "wait_ready",
]

T = TypeVar("T")


TEST_BROKER_ENV = "FEEDBACKLOOP_TEST_BROKER"


def broker_kind_under_test() -> str:
    """``apache`` when ``FEEDBACKLOOP_TEST_BROKER=apache`` (``make test-kafka``), else ``embedded``."""
    kind = os.environ.get(TEST_BROKER_ENV, "embedded").strip().lower() or "embedded"
    if kind not in ("embedded", "apache"):
        raise pytest.UsageError(f"{TEST_BROKER_ENV} must be embedded or apache, not {kind!r}")
    return kind


def make_test_broker(folder: Path, nodes: int = 1, log: IO[bytes] | int | None = subprocess.DEVNULL) -> Broker:
    """A fresh broker of the kind under test, not started: the embedded one on a free port, or an Apache Kafka
    cluster of ``nodes`` with its data in ``folder`` (jars resolved with Maven on first use)."""
    if broker_kind_under_test() == "apache" or nodes > 1:
        fetch_kafka()
        return KafkaCluster(folder / "kafka", nodes=nodes)
    return EmbeddedBroker(port=free_port(), log=log)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh, empty Kafka-protocol broker for this test (Apache Kafka under ``FEEDBACKLOOP_TEST_BROKER=apache``)."""
    started = make_test_broker(tmp_path)
    started.start()
    yield started
    started.stop()


TEST_DATABASE_ENV = "FEEDBACKLOOP_TEST_DATABASE"


def database_kind_under_test() -> str:
    """``postgresql`` when ``FEEDBACKLOOP_TEST_DATABASE=postgresql`` (``make test-postgres``), else ``sqlite``."""
    kind = os.environ.get(TEST_DATABASE_ENV, "sqlite").strip().lower() or "sqlite"
    if kind in ("postgres", "postgresql", "pg"):
        return "postgresql"
    if kind != "sqlite":
        raise pytest.UsageError(f"{TEST_DATABASE_ENV} must be sqlite or postgresql, not {kind!r}")
    return "sqlite"


_server: ThrowawayPostgres | None = None
_made_this_test: list[str] = []
_stores: dict[tuple[str, str], str] = {}


def _session_postgres() -> ThrowawayPostgres:
    global _server
    if _server is None:
        server = ThrowawayPostgres()
        server.start()
        _server = server
    return _server


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the throwaway PostgreSQL cluster, if this session started one."""
    global _server
    if _server is not None:
        _server.stop()
        _server = None


@pytest.fixture(autouse=True)
def _drop_test_databases() -> Iterator[None]:
    """Drops the PostgreSQL databases a test made (torn down last, after the test's own fixtures)."""
    yield
    if _server is not None:
        while _made_this_test:
            _server.drop_database(_made_this_test.pop())
    _stores.clear()


def postgres_store_url(tmp_path: Path, name: str) -> str:
    """A fresh PostgreSQL database for store ``name`` of the test owning ``tmp_path``, on the session's
    throwaway cluster (started on first use); the same arguments give the same database. Dropped after the test."""
    key = (str(tmp_path), name)
    if key not in _stores:
        server = _session_postgres()
        database = server.create_database(name)
        _made_this_test.append(database)
        _stores[key] = server.url(database)
    return _stores[key]


def store_url(tmp_path: Path, name: str) -> str:
    """The URL of store ``name`` for the test owning ``tmp_path``: a SQLite file in that folder, or a
    fresh database on the throwaway PostgreSQL when ``FEEDBACKLOOP_TEST_DATABASE=postgresql``.

    The same arguments give the same store (a restarted service finds its data). Prefer the
    ``database_url`` fixture; this function serves helpers that only have ``tmp_path`` at hand.
    """
    if database_kind_under_test() == "postgresql":
        return postgres_store_url(tmp_path, name)
    return f"sqlite+aiosqlite:///{tmp_path}/{name}.db"


async def query_store(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Rows of one SQL statement run against the store at ``url`` (SQLite or PostgreSQL), for assertions on
    what a service wrote. A connection of its own, closed before returning."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text(sql), params)
            return [tuple(row) for row in result.all()] if result.returns_rows else []
    finally:
        await engine.dispose()


def lasting_store_url(folder: Path, name: str) -> str:
    """Like :func:`store_url`, for a store that outlives one test (a module-scoped system): a SQLite file
    in ``folder``, or a new PostgreSQL database kept until the session ends. Each call makes a new one."""
    if database_kind_under_test() == "postgresql":
        server = _session_postgres()
        return server.url(server.create_database(name))
    return f"sqlite+aiosqlite:///{folder}/{name}.db"


@pytest.fixture(scope="session")
def postgres_server() -> ThrowawayPostgres:
    """The session's throwaway PostgreSQL cluster (started on first use, removed when the session ends)."""
    return _session_postgres()


@pytest.fixture
def postgres_url(tmp_path: Path) -> Callable[[str], str]:
    """Makes a fresh, empty PostgreSQL database for a service name, whatever the switch says; the same
    name in one test gives the same database. Dropped after the test."""

    def make(name: str) -> str:
        return postgres_store_url(tmp_path / "postgres", name)

    return make


@pytest.fixture
def database_url(tmp_path: Path) -> Callable[[str], str]:
    """Makes a fresh, empty store URL for a service name: a SQLite file in this test's folder, or a new
    database on the session's throwaway PostgreSQL when ``FEEDBACKLOOP_TEST_DATABASE=postgresql``.
    The same name in one test gives the same store (a restart finds its data).

    Use it for every store a test opens, so that the suite runs on both.
    """

    def make(name: str) -> str:
        return store_url(tmp_path, name)

    return make


@pytest.fixture
def kafka_settings(broker: Broker) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=broker.bootstrap, topic_partitions=3, replication_factor=broker.replication_factor
    )


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


@contextmanager
def captured_logs(service: str, *, fmt: str, level: str = "INFO") -> Iterator[io.StringIO]:
    """The process's logging set up as a service sets it up (``configure_logging``), written to the buffer yielded
    instead of stderr; the previous set-up is back after the block."""
    root = logging.getLogger()
    touched = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access", "aiokafka", "kafka",
                                              "httpx", "alembic")]
    saved = [(lg, lg.handlers[:], lg.propagate, lg.level) for lg in [root, *touched]]
    structlog_config = structlog.get_config()
    buffer = io.StringIO()
    configure_logging(service, level=level, fmt=fmt, stream=buffer)
    try:
        yield buffer
    finally:
        for lg, handlers, propagate, level_was in saved:
            lg.handlers[:], lg.propagate = handlers, propagate
            lg.setLevel(level_was)
        structlog.configure(**structlog_config)
        structlog.contextvars.unbind_contextvars("service")


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


async def publish_events(kafka: KafkaSettings, topic: Topic, payloads: Iterable[Any], *, key: str,
                         partition: int | None = None) -> None:
    """Publish each payload on ``topic`` as a CloudEvent (what a producing service would send), keyed by the
    payload's ``key`` attribute, and wait until the broker has each. With ``partition`` all go to that one, in
    order: when the last is handled, so is everything before it."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for payload in payloads:
            await producer.send_and_wait(topic.name, encode(new_envelope(topic, payload, source="/test")),
                                         key=str(getattr(payload, key)).encode(), partition=partition)
    finally:
        await producer.stop()


async def read_events(kafka: KafkaSettings, topic: Topic, until: Callable[[list[Envelope[Any]]], bool], *,
                      what: str, timeout: float = 60) -> list[Envelope[Any]]:
    """The decoded events of ``topic`` from its start, read until ``until(events)`` (fails after ``timeout``)."""
    consumer = AIOKafkaConsumer(topic.name, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    events: list[Envelope[Any]] = []
    try:
        async def more() -> list[Envelope[Any]]:
            batch = await consumer.getmany(timeout_ms=200)
            events.extend(decode(topic, r.value, headers_dict(r.headers), key=r.key)
                          for rs in batch.values() for r in rs)
            return events

        await wait_for(more, until, what=what, timeout=timeout)
    finally:
        await consumer.stop()
    return events


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


async def wait_ready(url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 90) -> None:
    """Poll ``url``/readyz until it answers 200; fails at once if ``process`` (the server) exits first."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{url}: the process exited with {process.returncode} during start-up")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} was not ready within {timeout:.0f} s")
