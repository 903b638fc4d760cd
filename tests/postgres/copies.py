"""Copies of one service as real processes (``python -m <service>``) for the two-copies tests: each on a
port of its own, its log in a file, its readiness and consumed-event counters read over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from feedbackloop_testing import free_port

__all__ = ["ServiceCopy", "child_env", "read_topic", "two_copies"]


def child_env(**settings: str) -> dict[str, str]:
    """This process's environment without any Feedback Loop or Kafka setting, plus ``settings``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("INGEST_", "CLASSIFICATION_", "AGGREGATION_", "NOTIFICATION_", "KAFKA_",
                                "FEEDBACKLOOP_", "OTEL_"))}
    env.update(settings)
    return env


class ServiceCopy:
    """One ``python -m <service>`` process listening on a free port of its own (``<SERVICE>_PORT``)."""

    def __init__(self, service: str, env: dict[str, str], log: Path, port: int) -> None:
        self.service = service
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", service],
                                            env={**env, f"{service.upper()}_PORT": str(port)},
                                            stdout=out, stderr=subprocess.STDOUT)

    async def ready(self) -> int:
        """``GET /readyz``'s status; 0 while the process does not answer yet."""
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"{self.base}/readyz")).status_code
        except httpx.TransportError:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.service} on :{self.port} exited ({self.process.returncode}); "
                                     f"see {self.log}") from None
            return 0

    async def consumed(self, topic: str, outcome: str = "handled") -> int:
        """``feedbackloop_events_consumed_total{topic, outcome}`` of this copy."""
        async with httpx.AsyncClient(timeout=5) as client:
            body = (await client.get(f"{self.base}/metrics")).text
        return sum(int(s.value) for family in text_string_to_metric_families(body) for s in family.samples
                   if s.name == "feedbackloop_events_consumed_total" and s.labels.get("outcome") == outcome
                   and s.labels.get("topic") == topic)

    def log_lines(self, needle: str) -> list[str]:
        """The lines of this copy's log that contain ``needle``."""
        return [line for line in self.log.read_text(errors="replace").splitlines() if needle in line]

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as when a node dies."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> int:
        """SIGTERM and wait for a clean exit (SIGKILL after 60 s); returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        return self.process.returncode


@contextmanager
def two_copies(service: str, env: dict[str, str], folder: Path) -> Iterator[list[ServiceCopy]]:
    """Two copies of ``service`` (logs ``<service>-<n>.log`` in ``folder``), stopped with SIGTERM afterwards."""
    started = [ServiceCopy(service, env, folder / f"{service}-{n}.log", free_port()) for n in range(2)]
    try:
        yield started
    finally:
        for copy in started:
            copy.stop()


async def read_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every event on ``topic`` from the start (the CloudEvents documents), until 1.5 s pass with nothing new."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    events: list[dict[str, Any]] = []
    try:
        while batch := await consumer.getmany(timeout_ms=1500):
            events += [json.loads(r.value) for records in batch.values() for r in records]
        return events
    finally:
        await consumer.stop()
