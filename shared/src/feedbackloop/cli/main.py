"""``feedbackloop``: one entry point for operators.

Errors are one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from feedbackloop.cli.common import fail, parse_since
from feedbackloop.plugins import service_names, service_plugin, service_plugins

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Operate Feedback Loop: run it, watch its topics, manage API keys, replay events.",
)
keys_app = typer.Typer(no_args_is_help=True, help="API keys (hashed in the key file every service reads).")
dlq_app = typer.Typer(no_args_is_help=True, help="Dead-letter topics: look at and replay failed events.")
app.add_typer(keys_app, name="keys")
app.add_typer(dlq_app, name="dlq")


def _print_version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        print(f"feedbackloop {version('feedbackloop-shared')}")
    except PackageNotFoundError:
        fail("no version: the feedbackloop-shared distribution is not installed")
    raise typer.Exit()


@app.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True,
                     help="Print the version (of the installed feedbackloop-shared) and exit."),
    ] = False,
) -> None:
    pass


class BrokerKind(StrEnum):
    embedded = "embedded"
    apache = "apache"
    external = "external"


@app.command()
def run(
    var_dir: Annotated[Path, typer.Option(help="Folder for the SQLite stores, key file and logs")] = Path("var"),
    broker_port: Annotated[int, typer.Option(help="Port the broker started here listens on")] = 9092,
    kafka: Annotated[
        BrokerKind,
        typer.Option(
            help="embedded: the in-memory Kafka-protocol broker (default, no Java); apache: a single-node Apache"
            " Kafka kept under VAR_DIR/kafka (needs Java and `make kafka` once; a restart keeps topics and offsets);"
            " external: start none, use KAFKA_BOOTSTRAP_SERVERS",
            case_sensitive=False,
        ),
    ] = BrokerKind.embedded,
) -> None:
    """Start a broker and the four services; Ctrl-C stops them (broker last)."""
    from feedbackloop.cli.launcher import LaunchError, launch

    try:
        code = asyncio.run(launch(var_dir.resolve(), broker_port, kafka.value))
    except LaunchError as exc:
        fail(str(exc))
    raise typer.Exit(code)


@app.command()
def serve(
    service: Annotated[str, typer.Argument(
        envvar="FEEDBACKLOOP_SERVICE", help="A service: ingest, classification, aggregation or notification")],
    host: Annotated[str | None, typer.Option(help="Listen address (default: its <SERVICE>_HOST)")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port (default: its <SERVICE>_PORT)")] = None,
    container: Annotated[bool, typer.Option(
        "--container", help="Defaults for an image: listen on 0.0.0.0 and leave schema upgrades to `migrate`,"
        " unless <SERVICE>_HOST / <SERVICE>_AUTO_MIGRATE are set")] = False,
) -> None:
    """Serve one service in this process (what each container runs; `run` starts all four)."""
    import os

    from feedbackloop.serve import container_defaults
    from feedbackloop.serve import serve as serve_service

    try:
        plugin = service_plugin(service)
    except ValueError as exc:
        print(f"feedbackloop: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    settings = plugin.settings()
    overrides = container_defaults(settings, os.environ) if container else {}
    overrides |= {key: value for key, value in (("host", host), ("port", port)) if value is not None}
    serve_service(plugin.name, plugin.create_app, settings.model_copy(update=overrides))


@app.command()
def kafka(
    version: Annotated[str | None, typer.Option(help="Apache Kafka version (default: the pinned one)")] = None,
) -> None:
    """Resolve Apache Kafka's jars from Maven Central into the cache (once), for `run --kafka apache` and the tests."""
    from feedbackloop.apache_kafka import KafkaUnavailable, fetch_kafka, java_binary

    try:
        java_binary()
        print(fetch_kafka(version))
    except KafkaUnavailable as exc:
        fail(str(exc))


@app.command()
def tail(
    topic: Annotated[str, typer.Argument(help="e.g. feedback.classified.v1 (or a .dlq topic)")],
    bootstrap: Annotated[
        str | None, typer.Option(help="Broker; default KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:9092")
    ] = None,
    from_beginning: Annotated[
        bool, typer.Option(help="Start at the oldest retained event (off: only new ones)")
    ] = True,
    count: Annotated[int | None, typer.Option(help="Stop after this many events")] = None,
    headers: Annotated[bool, typer.Option(help="Print each record's headers to stderr")] = False,
) -> None:
    """Print one CloudEvents JSON document per line, as the topic carries it."""
    from feedbackloop.settings import KafkaSettings

    servers = bootstrap or KafkaSettings().bootstrap_servers
    try:
        asyncio.run(_tail(topic, servers, from_beginning, count, headers))
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # a broker that is not there, a topic that does not exist
        fail(f"cannot tail {topic} on {servers}: {exc or type(exc).__name__}")


async def _tail(topic: str, servers: str, from_beginning: bool, count: int | None, show_headers: bool) -> None:
    import logging

    from aiokafka import AIOKafkaConsumer

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # connection retries are not the reader's business
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        request_timeout_ms=10_000,
    )
    seen = 0
    try:
        await consumer.start()
        known = await consumer.topics()
        if topic not in known:  # asked before subscribing: the embedded broker creates topics on first mention
            raise ValueError(f"no such topic; the broker has: {', '.join(sorted(known)) or 'none'}")
        consumer.subscribe([topic])
        async for record in consumer:
            if show_headers:
                print(json.dumps({k: v.decode(errors="replace") for k, v in record.headers}), file=sys.stderr)
            sys.stdout.write((record.value or b"").decode(errors="replace") + "\n")
            sys.stdout.flush()
            seen += 1
            if count is not None and seen >= count:
                break
    finally:
        await consumer.stop()


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what the key is for")],
    scope: Annotated[list[str], typer.Option(help="read, write or admin; repeat for several")] = ["read"],  # noqa: B006
    keys_file: Annotated[Path | None, typer.Option(help="Default FEEDBACKLOOP_KEYS_FILE or var/keys.json")] = None,
) -> None:
    """Create a key and print it once; only its hash is stored."""
    from feedbackloop.keys import KeyStore
    from feedbackloop.settings import CommonSettings

    try:
        key, plaintext = KeyStore(keys_file or CommonSettings().keys_file).create(name, scope)
    except ValueError as exc:
        fail(str(exc))
    print(plaintext)
    print(f"created key {key.id} ({', '.join(key.scopes)}) for {name!r}; it is shown only now", file=sys.stderr)


@keys_app.command("list")
def keys_list(keys_file: Annotated[Path | None, typer.Option()] = None) -> None:
    """List active keys (ids, names, scopes — never the keys)."""
    from feedbackloop.keys import KeyStore
    from feedbackloop.settings import CommonSettings

    for key in KeyStore(keys_file or CommonSettings().keys_file).active():
        print(f"{key.id}\t{','.join(key.scopes)}\t{key.created_at}\t{key.name}")


@keys_app.command("revoke")
def keys_revoke(key_id: str, keys_file: Annotated[Path | None, typer.Option()] = None) -> None:
    """Revoke a key by id; every service stops accepting it at its next request."""
    from feedbackloop.keys import KeyStore
    from feedbackloop.settings import CommonSettings

    if not KeyStore(keys_file or CommonSettings().keys_file).revoke(key_id):
        fail(f"no active key with id {key_id}")
    print(f"revoked {key_id}", file=sys.stderr)


@app.command()
def replay(
    service: Annotated[str, typer.Argument(help="A service (ingest, classification, …), or all")],
    since: Annotated[str, typer.Option(help="2h, 7d, or an ISO time")] = "30d",
    topic: Annotated[list[str] | None, typer.Option(help="Only these topics")] = None,
) -> None:
    """Re-publish the events a service published since a time (from its retained outbox).

    Safe at any time: consumers skip events they have processed. Use it after the embedded broker
    restarted (it keeps data in memory) or to re-feed a downstream store. The running service's
    relay publishes the queued events within a second; a stopped one does at its next start.
    """
    try:
        start = parse_since(since)
        names = service_names() if service == "all" else [service]
        for name in names:
            count = asyncio.run(_replay(name, start, topic))
            print(f"{name}: {count} events queued for re-publishing since {start.isoformat()}", file=sys.stderr)
    except ValueError as exc:
        fail(str(exc))


async def _replay(name: str, since: datetime, topics: list[str] | None) -> int:
    from sqlalchemy import MetaData

    from feedbackloop.db import add_runtime_tables, create_engine
    from feedbackloop.runtime.relay import replay_outbox

    engine = create_engine(service_plugin(name).settings().database_url)
    try:
        return await replay_outbox(engine, add_runtime_tables(MetaData()), since, topics)
    finally:
        await engine.dispose()


@app.command()
def migrate(
    service: Annotated[str, typer.Argument(help="A service: ingest, classification, aggregation or notification")],
) -> None:
    """Upgrade a service's store to the newest schema (its <SERVICE>_DATABASE_URL)."""
    from feedbackloop.db import create_engine, upgrade

    try:
        plugin = service_plugin(service)
        settings = plugin.settings()
    except ValueError as exc:  # a usage error: exit 2, as click's own, but one line
        print(f"feedbackloop: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None

    async def go() -> None:
        engine = create_engine(settings.database_url)
        try:
            await upgrade(engine, plugin.migrations)
        finally:
            await engine.dispose()

    asyncio.run(go())
    print(f"{service}: store at the newest schema", file=sys.stderr)


@app.command()
def schemas(
    write: Annotated[bool, typer.Option(help="Write the files (off: check they are current)")] = False,
    out: Annotated[Path | None, typer.Option(help="Folder; default shared/schemas")] = None,
) -> None:
    """Generate the JSON Schemas of every topic's data and the AsyncAPI document, or check them."""
    from feedbackloop.contracts.schemas import render_all, schema_dir

    folder = out or schema_dir()
    stale = []
    for filename, text in render_all().items():
        path = folder / filename
        if write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        elif not path.exists() or path.read_text() != text:
            stale.append(filename)
    if stale:
        fail(f"out of date: {', '.join(stale)}; run `make schemas`")
    print(f"schemas {'written to' if write else 'current in'} {folder}", file=sys.stderr)


@dlq_app.command("replay")
def dlq_replay(
    topic: Annotated[str, typer.Argument(help="The source topic, e.g. feedback.raw.v1 (its .dlq is read)")],
    bootstrap: Annotated[str | None, typer.Option()] = None,
    idle_seconds: Annotated[float, typer.Option(help="Stop when nothing new arrived for this long")] = 3.0,
) -> None:
    """Send every dead-lettered event of a topic back to it, once; run it after fixing the cause."""
    from feedbackloop.runtime.dlq import replay_dead_letters
    from feedbackloop.settings import KafkaSettings

    servers = bootstrap or KafkaSettings().bootstrap_servers
    try:
        moved = asyncio.run(replay_dead_letters(servers, topic, idle_seconds))
    except Exception as exc:
        fail(f"cannot replay {topic}.dlq on {servers}: {exc}")
    print(f"replayed {moved} events from {topic}.dlq to {topic}", file=sys.stderr)


@app.command()
def receive(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 9999,
    secret: Annotated[str | None, typer.Option(help="The rule's channel secret, to verify signatures")] = None,
) -> None:
    """A local webhook receiver that prints each delivery and checks its signature (for trying rules out)."""
    from feedbackloop.cli.receiver import run_receiver

    run_receiver(port, secret)




@app.command()
def erase(
    customer: Annotated[str | None, typer.Option(help="The account id, as sent in `customer.id`")] = None,
    author_email: Annotated[str | None, typer.Option(help="The author's address (only its keyed hash is kept)")] = None,
    reason: Annotated[str, typer.Option(help="Why, for the record (e.g. a ticket number)")] = "",
    url: Annotated[str, typer.Option(help="The running ingest")] = "http://127.0.0.1:8001",
    key: Annotated[str | None, typer.Option(help="An admin key (default FEEDBACKLOOP_API_KEY, else var/api-key)")
                   ] = None,
) -> None:
    """Erase one customer's or one author's feedback from every service (GDPR); prints the request id."""
    from feedbackloop.cli._erase import EraseFailed, erasure_body, request_erasure, resolve_key

    try:
        answer = request_erasure(url, resolve_key(key), erasure_body(customer, author_email, reason))
    except EraseFailed as exc:
        fail(str(exc))
    print(answer["request_id"])
    print(f"{answer['items']} item(s) erased in ingest; the other services follow through privacy.v1 "
          f"(GET {url.rstrip('/')}/v1/erasures/{answer['request_id']})", file=sys.stderr)


for _plugin in service_plugins().values():  # each installed service's own commands (import, reclassify, …)
    if _plugin.commands is not None:
        app.add_typer(_plugin.commands)

if __name__ == "__main__":
    app()
