"""``feedbackloop run``: the whole system on one machine — broker, four services, readable logs.

The broker is the embedded one (in memory, no Java) by default, or a single-node Apache Kafka whose data
lives in ``<var>/kafka`` (``--kafka apache``: topics and offsets survive a restart), or none (``external``).

Start order: owner-only var/ → lock → ports free → API key → broker → topics → services → readiness. Stop order
(Ctrl-C or SIGTERM): services get SIGTERM and finish their batch, then the broker, last. A second
``run`` in the same folder, or a port already taken, ends with one clear line, not a traceback.

``var/`` holds raw feedback and channel secrets (the SQLite stores), the key file and logs that may show the
admin key, so it is the owner's alone: the launcher and the services it starts run with umask 077 (folders
0700, files 0600), and what an earlier run or another tool left readable there is tightened at start.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from feedbackloop.apache_kafka import KafkaCluster, KafkaUnavailable, fetch_kafka
from feedbackloop.broker import Broker, EmbeddedBroker, port_open
from feedbackloop.keys import KeyStore
from feedbackloop.logs import configure_logging
from feedbackloop.plugins import service_plugins
from feedbackloop.runtime.kafka import ensure_topics
from feedbackloop.settings import KafkaSettings

__all__ = ["LaunchError", "launch", "make_private"]

_COLOURS = {
    "broker": "90",
    "ingest": "36",
    "classification": "35",
    "aggregation": "33",
    "notification": "32",
    "run": "1",
}


class LaunchError(RuntimeError):
    """A reason not to start, said in one line."""


@dataclass
class _Child:
    name: str
    port: int
    process: asyncio.subprocess.Process


def _say(name: str, line: str, out: IO[str] = sys.stdout) -> None:
    colour = _COLOURS.get(name, "0")
    prefix = f"\x1b[{colour}m{name:>14} |\x1b[0m" if out.isatty() else f"{name:>14} |"
    print(f"{prefix} {line}", file=out, flush=True)


async def launch(var_dir: Path, broker_port: int, kafka: str = "embedded") -> int:
    configure_logging("run", level="WARNING", fmt="console")
    os.umask(0o077)  # inherited by the services: every store, log and lock file they create is owner-only
    var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    make_private(var_dir)
    lock = open(var_dir / "run.lock", "a+")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        pid = lock.read().strip() or "?"
        raise LaunchError(
            f"Feedback Loop is already running from {var_dir} (pid {pid}); stop it with Ctrl-C "
            f"in its terminal or `kill {pid}`"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()

    env = dict(os.environ)
    env.setdefault("FEEDBACKLOOP_LOG_FORMAT", "console")
    env.setdefault("FEEDBACKLOOP_KEYS_FILE", str(var_dir / "keys.json"))
    for name in service_plugins():
        env.setdefault(f"{name.upper()}_DATABASE_URL", f"sqlite+aiosqlite:///{var_dir}/{name}.db")
    if kafka != "external":
        env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{broker_port}"
    if kafka == "apache":
        env.setdefault("FEEDBACKLOOP_BROKER_CHECK_SECONDS", "0")  # Apache Kafka keeps what it acknowledged
    os.environ.update(env)  # so that the settings read below see the same values as the children

    settings = {name: plugin.settings() for name, plugin in service_plugins().items()}
    wanted = [(name, s.host, s.port) for name, s in settings.items()]
    if kafka != "external":
        wanted.insert(0, ("broker", "127.0.0.1", broker_port))
    for name, host, port in wanted:
        if port_open(host, port):
            raise LaunchError(
                f"port {port} ({name}) is already in use by another program; free it, or set "
                f"{'--broker-port' if name == 'broker' else name.upper() + '_PORT'} to another port"
            )

    key_path = _shown(var_dir / "api-key")
    store = KeyStore(Path(env["FEEDBACKLOOP_KEYS_FILE"]))
    if not store.active() or not key_path.exists():
        _, plaintext = store.create("admin (created by feedbackloop run)", ["admin"])
        key_path.write_text(plaintext + "\n")
        key_path.chmod(0o600)
        _say("run", f"created an admin API key in {key_path}: {plaintext}")

    started = time.monotonic()
    broker: Broker | None = None
    children: list[_Child] = []
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    pumps: list[asyncio.Task[None]] = []
    exit_code = 0
    try:
        if kafka == "embedded":
            broker_log = open(var_dir / "broker.log", "ab")  # noqa: SIM115 - closed with the broker
            broker = EmbeddedBroker(port=broker_port, log=broker_log)
            await asyncio.to_thread(broker.start)
            _say(
                "broker",
                f"embedded Kafka-protocol broker (Tansu) on 127.0.0.1:{broker_port}; "
                f"log in {_shown(Path(broker_log.name))}",
            )
        elif kafka == "apache":
            broker = await _start_apache_kafka(var_dir / "kafka", broker_port)
        await ensure_topics(KafkaSettings())
        for name, service_settings in settings.items():
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                name,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
            child = _Child(name, service_settings.port, process)
            children.append(child)
            pumps.append(asyncio.create_task(_pump(child)))
        await _wait_ready(children, stopping)
        if not stopping.is_set():
            _banner(children, broker, key_path, time.monotonic() - started)
        keeper = asyncio.create_task(_keep_broker(broker, stopping)) if broker is not None else None
        exit_code = await _supervise(children, stopping)
        if keeper is not None:
            keeper.cancel()
    finally:
        for child in children:
            if child.process.returncode is None:
                child.process.send_signal(signal.SIGTERM)
        for child in children:
            try:
                await asyncio.wait_for(child.process.wait(), timeout=25)
            except TimeoutError:
                _say(child.name, "did not stop within 25 s; killing it")
                child.process.kill()
                await child.process.wait()
        await asyncio.gather(*pumps, return_exceptions=True)
        if broker is not None:
            broker.stop()
            _say("broker", "stopped")
        _say("run", "all stopped")
    return exit_code


def make_private(folder: Path) -> None:
    """Take group and other permissions off ``folder`` and everything under it that this user owns."""
    for path in [folder, *folder.rglob("*")]:
        try:
            if path.is_symlink():
                continue
            mode = path.stat().st_mode & 0o7777
            if mode & 0o077:
                path.chmod(mode & ~0o077)
        except OSError:
            pass  # someone else's file, or gone meanwhile: not ours to change


def _shown(path: Path) -> Path:
    """``path`` relative to the working folder when it is inside it, as the README writes it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


async def _pump(child: _Child) -> None:
    assert child.process.stdout is not None
    async for raw in child.process.stdout:
        _say(child.name, raw.decode(errors="replace").rstrip())


async def _wait_ready(children: list[_Child], stopping: asyncio.Event, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    pending = {c.name: c for c in children}
    async with httpx.AsyncClient(timeout=2) as client:
        while pending and not stopping.is_set() and time.monotonic() < deadline:
            for name, child in list(pending.items()):
                if child.process.returncode is not None:
                    raise LaunchError(
                        f"{name} exited during start-up with code {child.process.returncode}; see its log lines above"
                    )
                try:
                    if (await client.get(f"http://127.0.0.1:{child.port}/readyz")).status_code == 200:
                        del pending[name]
                except httpx.HTTPError:
                    pass
            await asyncio.sleep(0.2)
    if pending and not stopping.is_set():
        _say("run", f"still not ready after {timeout:.0f}s: {', '.join(pending)} (see GET /readyz); carrying on")


async def _start_apache_kafka(folder: Path, port: int) -> KafkaCluster:
    try:
        await asyncio.to_thread(fetch_kafka)  # a no-op once `make kafka` has resolved the jars
        cluster = KafkaCluster(folder, nodes=1, base_port=port)
        await asyncio.to_thread(cluster.start)
    except (KafkaUnavailable, RuntimeError) as exc:
        raise LaunchError(str(exc)) from None
    _say("broker", f"Apache Kafka (single node, KRaft) on {cluster.bootstrap}; data and log in {_shown(folder)}")
    return cluster


def _banner(children: list[_Child], broker: Broker | None, key_path: Path, seconds: float) -> None:
    lines = [f"Feedback Loop is up in {seconds:.1f}s"]
    if isinstance(broker, KafkaCluster):
        lines.append(f"  broker          {broker.bootstrap}  (Apache Kafka: a restart keeps topics and offsets)")
    elif broker is not None:
        lines.append(
            f"  broker          {broker.bootstrap}  (embedded, in memory: a restart loses topics; "
            f"`feedbackloop replay` restores them)"
        )
    notes = {
        "ingest": "POST /v1/feedback",
        "aggregation": "GET /v1/feedback, /v1/themes",
        "notification": "POST /v1/rules, GET /v1/deliveries",
        "classification": "POST /v1/classify",
    }
    for child in children:
        lines.append(f"  {child.name:<15} http://127.0.0.1:{child.port}  {notes.get(child.name, '')}  (docs: /docs)")
    lines.append(f'  API key         {key_path}   e.g. -H "authorization: Bearer $(cat {key_path})"')
    lines.append("  Ctrl-C stops everything.")
    for line in lines:
        _say("run", line)


async def _keep_broker(broker: Broker, stopping: asyncio.Event) -> None:
    """Restart the broker if it dies. The embedded one comes back empty; every service notices and re-publishes
    its retained outbox (see feedbackloop.runtime.relay), so the loop converges with nothing lost. Apache Kafka
    comes back with its data."""
    while not stopping.is_set():
        code = await asyncio.to_thread(broker.wait)
        if stopping.is_set():
            return
        kept = "it keeps its data" if isinstance(broker, KafkaCluster) else "it lost its data: the services re-publish"
        _say("broker", f"exited with code {code}; restarting it ({kept})")
        await asyncio.to_thread(broker.start)
        await ensure_topics(KafkaSettings())
        _say("broker", "back; topics re-created")


async def _supervise(children: list[_Child], stopping: asyncio.Event) -> int:
    waits = {asyncio.create_task(c.process.wait()): c for c in children}
    stop = asyncio.create_task(stopping.wait())
    done, _ = await asyncio.wait([stop, *waits], return_when=asyncio.FIRST_COMPLETED)
    for task in [stop, *waits]:
        if task not in done:
            task.cancel()
    if stop in done:
        _say("run", "stopping: services first, the broker last")
        return 0
    for task in done:
        child = waits[task]
        _say("run", f"{child.name} exited with code {child.process.returncode}; stopping the others")
    return 1
