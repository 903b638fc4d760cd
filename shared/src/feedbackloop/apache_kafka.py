"""Apache Kafka on this machine: the broker's jars from Maven Central, KRaft nodes started with Java.

Beside the embedded broker (:mod:`feedbackloop.broker`) for the tests, `make run KAFKA=apache` and the
fault scenarios. Nothing is downloaded at run time: :func:`fetch_kafka` (``make kafka``, or a test fixture
on first use) resolves the classpath once with Maven from the committed ``kafka-broker.pom.xml`` into a
cache folder; :func:`kafka_libs` only finds it.

A :class:`KafkaCluster` is 1 or 3 combined broker+controller nodes on free ports with small heaps.
With a ``folder`` that outlives it, a restart keeps topics and offsets (storage is formatted only once).
It has the :class:`~feedbackloop.broker.EmbeddedBroker` interface (``bootstrap``, ``start``, ``stop``,
``kill``) plus per-node control (``kill_node``, ``start_node``, ``stop_node``) for the broker fault scenarios.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from feedbackloop.broker import free_port, port_open

__all__ = [
    "KAFKA_VERSION",
    "KafkaCluster",
    "KafkaUnavailable",
    "fetch_kafka",
    "java_binary",
    "kafka_cache",
    "kafka_libs",
]

KAFKA_VERSION = "4.1.1"
"""The Apache Kafka version the project pins; ``FEEDBACKLOOP_KAFKA_VERSION`` overrides it (see the README's table)."""


class KafkaUnavailable(RuntimeError):
    """Java, Maven or the resolved jars are missing; the message says what to install or run."""


def kafka_version() -> str:
    return os.environ.get("FEEDBACKLOOP_KAFKA_VERSION", "").strip() or KAFKA_VERSION


def kafka_cache(version: str | None = None) -> Path:
    """Where a version's jars live: ``$FEEDBACKLOOP_KAFKA_CACHE/<version>``, default ``~/.cache/feedbackloop/kafka``."""
    root = os.environ.get("FEEDBACKLOOP_KAFKA_CACHE") or str(Path.home() / ".cache" / "feedbackloop" / "kafka")
    return Path(root) / (version or kafka_version())


def java_binary() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    found = str(candidate) if candidate and candidate.exists() else shutil.which("java")
    if not found:
        raise KafkaUnavailable("Apache Kafka needs Java 17 or newer: install a JDK (apt-get install openjdk-17-jre)")
    return found


def kafka_libs(version: str | None = None) -> Path:
    """The folder of a resolved classpath; :class:`KafkaUnavailable` (saying ``make kafka``) when it is missing."""
    libs = kafka_cache(version) / "libs"
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise KafkaUnavailable(
            f"Apache Kafka {version or kafka_version()} is not resolved yet: run `make kafka` (Maven, once; "
            f"jars cached in {libs.parent})"
        )
    return libs


def fetch_kafka(version: str | None = None) -> Path:
    """Resolve a version's runtime classpath from Maven Central into the cache (once); returns the libs folder."""
    version = version or kafka_version()
    try:
        return kafka_libs(version)
    except KafkaUnavailable:
        pass
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaUnavailable("resolving Apache Kafka's jars needs Maven: install it (e.g. apt-get install maven)")
    target = kafka_cache(version)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
    pom = resources.files("feedbackloop").joinpath("kafka-broker.pom.xml")
    with resources.as_file(pom) as pom_path:
        result = subprocess.run(
            [mvn, "-q", "-B", "-f", str(pom_path), "dependency:copy-dependencies", "-DincludeScope=runtime",
             f"-Dkafka.version={version}", f"-DoutputDirectory={staging / 'libs'}"],
            capture_output=True, text=True, check=False,
        )
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        last = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["(no output)"]
        raise KafkaUnavailable(f"Maven could not resolve Apache Kafka {version}: {last[0]}")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # whole or not at all: a cache folder always holds a complete classpath
    return target / "libs"


def _cluster_id() -> str:
    """A KRaft cluster id as Kafka makes them: a random UUID in URL-safe base64, never starting with ``-``
    (the storage tool would read it as an option: one id in 64 did)."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not candidate.startswith("-"):
            return candidate


def _run_catching(work: Coroutine[object, object, None], errors: list[BaseException]) -> None:
    try:
        asyncio.run(work)
    except BaseException as exc:  # handed to the waiting thread, which raises it
        errors.append(exc)


_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.out.ref = out
"""


@dataclass
class _Node:
    node_id: int
    port: int
    controller_port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class KafkaCluster:
    """``nodes`` combined broker+controller KRaft nodes on 127.0.0.1, their data under ``folder``.

    With 3 nodes, topics default to replication 3 and ``min.insync.replicas=2`` (what the README asks of
    production); with 1, both are 1. A folder that already holds a formatted cluster is started as it is.
    """

    folder: Path
    nodes: int = 1
    heap: str = "384m"
    version: str | None = None
    log_level: str = "WARN"
    base_port: int | None = None
    _nodes: list[_Node] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.nodes not in (1, 3):
            raise ValueError("a cluster has 1 or 3 nodes")
        self.folder = Path(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        ports = self._ports()
        self._nodes = [
            _Node(i + 1, ports[2 * i], ports[2 * i + 1], self.folder / f"node-{i + 1}") for i in range(self.nodes)
        ]

    def _ports(self) -> list[int]:
        """Ports are kept in the folder, so a persistent cluster restarts where its clients expect it."""
        saved = self.folder / "ports"
        if saved.exists():
            ports = [int(p) for p in saved.read_text().split()]
            if len(ports) == 2 * self.nodes and (self.base_port is None or ports[0] == self.base_port):
                return ports
        ports = [free_port() for _ in range(2 * self.nodes)]
        if self.base_port is not None:  # clients are told this port (e.g. 9092); controllers take free ones
            ports[0::2] = [self.base_port + i for i in range(self.nodes)]
        saved.write_text(" ".join(map(str, ports)))
        return ports

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self._nodes)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self._nodes[0].port

    def node_bootstrap(self, index: int) -> str:
        return f"127.0.0.1:{self._nodes[index].port}"

    @property
    def replication_factor(self) -> int:
        return 3 if self.nodes == 3 else 1

    def _properties(self, node: _Node) -> str:
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self._nodes)
        replicas = self.replication_factor
        min_isr = 2 if replicas == 3 else 1
        lines = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": node.folder / "data",
            "default.replication.factor": replicas,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": 10,  # default 50: slow to create on 2 cores, and plenty for us
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
            "group.initial.rebalance.delay.ms": 0,
            "unclean.leader.election.enable": "false",
            "auto.create.topics.enable": "false",  # the services create their topics (replication as configured)
        }
        return "".join(f"{k}={v}\n" for k, v in lines.items())

    def _java(self, *args: str, heap: str) -> list[str]:
        libs = kafka_libs(self.version)
        return [java_binary(), f"-Xmx{heap}", "-Xms64m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.folder / 'log4j2.properties'}", "-cp", f"{libs}/*", *args]

    def _format(self) -> None:
        (self.folder / "log4j2.properties").write_text(_LOG4J2.format(level=self.log_level))
        id_file = self.folder / "cluster-id"
        if not id_file.exists():
            id_file.write_text(_cluster_id())
        cluster_id = id_file.read_text().strip()
        for node in self._nodes:
            node.folder.mkdir(parents=True, exist_ok=True)
            config = node.folder / "server.properties"
            config.write_text(self._properties(node))
            if (node.folder / "data" / "meta.properties").exists():
                continue
            result = subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config), heap="128m"),
                capture_output=True, text=True, check=False,
            )
            if result.returncode != 0:
                raise RuntimeError(f"formatting Kafka storage failed: {result.stdout}{result.stderr}".strip())

    def start(self, timeout: float = 90.0) -> None:
        """Format (first time only), start every node, and wait until each accepts connections."""
        self._format()
        for index in range(self.nodes):
            self.start_node(index, wait=False)
        self.wait_serving(timeout)

    def start_node(self, index: int, wait: bool = True, timeout: float = 60.0) -> None:
        node = self._nodes[index]
        if node.running:
            return
        log = open(node.folder / "broker.log", "ab")  # noqa: SIM115 - the child holds it
        try:
            node.process = subprocess.Popen(
                self._java("kafka.Kafka", str(node.folder / "server.properties"), heap=self.heap),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        if wait:
            self._wait_node(node, time.monotonic() + timeout)

    def wait_serving(self, timeout: float = 90.0) -> None:
        """Until each started node accepts connections and the cluster's metadata lists every running node."""
        deadline = time.monotonic() + timeout
        running = [node for node in self._nodes if node.process is not None]
        for node in running:
            self._wait_node(node, deadline)
        result: list[BaseException] = []
        # the check is asynchronous (aiokafka); its own thread keeps it out of any event loop the caller runs
        checker = threading.Thread(target=lambda: _run_catching(self._registered(len(running), deadline), result))
        checker.start()
        checker.join()
        if result:
            raise result[0]

    async def _registered(self, wanted: int, deadline: float) -> None:
        from aiokafka.client import AIOKafkaClient

        seen = 0
        while time.monotonic() < deadline:
            client = AIOKafkaClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
            try:
                await client.bootstrap()
                await client.force_metadata_update()
                seen = len(client.cluster.brokers())
                if seen >= wanted:
                    return
            except Exception:  # not serving yet: ask again until the deadline
                pass
            finally:
                await client.close()
            await asyncio.sleep(0.2)
        raise RuntimeError(f"Kafka cluster lists {seen} of {wanted} nodes after the deadline")

    def _wait_node(self, node: _Node, deadline: float) -> None:
        while not port_open("127.0.0.1", node.port):
            if node.process is not None and node.process.poll() is not None:
                tail = (node.folder / "broker.log").read_text(errors="replace").strip().splitlines()[-5:]
                raise RuntimeError(f"Kafka node {node.node_id} exited ({node.process.returncode}): " + " | ".join(tail))
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kafka node {node.node_id} did not serve on 127.0.0.1:{node.port} in time")
            time.sleep(0.1)

    def start_node_and_wait(self, index: int, timeout: float = 60.0) -> None:
        self.start_node(index)
        self.wait_serving(timeout)

    def stop_node(self, index: int, timeout: float = 30.0) -> None:
        """A clean shutdown (SIGTERM): the node hands its partitions' leadership over first."""
        process = self._nodes[index].process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill_node(self, index: int) -> None:
        """kill -9: no shutdown, no handover."""
        process = self._nodes[index].process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def node_pid(self, index: int) -> int | None:
        process = self._nodes[index].process
        return process.pid if process is not None and process.poll() is None else None

    def stop(self, timeout: float = 30.0) -> None:
        for index in range(self.nodes):
            self.stop_node(index, timeout)

    def kill(self) -> None:
        for index in range(self.nodes):
            self.kill_node(index)

    def wait(self) -> int:
        process = self._nodes[0].process
        assert process is not None, "not started"
        return process.wait()

    def rss_bytes(self) -> int:
        """Resident memory of the running nodes (Linux ``/proc``), for the benchmark."""
        total = 0
        for node in self._nodes:
            if node.running and node.process is not None:
                status = Path(f"/proc/{node.process.pid}/status").read_text()
                total += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS"))
        return total
