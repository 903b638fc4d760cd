"""Start the whole system the way `make run` does (the `feedbackloop run` launcher), on free ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from feedbackloop_testing import broker_kind_under_test, free_port, lasting_store_url

SERVICES = ("ingest", "classification", "aggregation", "notification")


@dataclass
class System:
    var_dir: Path
    broker_port: int
    ports: dict[str, int]
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    database_urls: dict[str, str] = field(default_factory=dict)

    @classmethod
    def on_free_ports(cls, var_dir: Path) -> System:
        return cls(var_dir=var_dir, broker_port=free_port(), ports={s: free_port() for s in SERVICES},
                   database_urls={s: lasting_store_url(var_dir, s) for s in SERVICES})

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_", "CLASSIFICATION_", "AGGREGATION_",
                                                                         "NOTIFICATION_", "FEEDBACKLOOP_", "KAFKA_"))
               or k.startswith("FEEDBACKLOOP_KAFKA_")}  # where Apache Kafka's jars are cached
        env.update({f"{s.upper()}_PORT": str(p) for s, p in self.ports.items()})
        env.update({f"{s.upper()}_DATABASE_URL": url for s, url in self.database_urls.items()})
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap
        env["NOTIFICATION_RETRY_SCHEDULE"] = "0,0.5,1"
        env.update(self.extra_env)
        return env

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def api_key(self) -> str:
        return (self.var_dir / "api-key").read_text().strip()

    def command(self) -> list[str]:
        return [sys.executable, "-m", "feedbackloop.cli.main", "run", "--var-dir", str(self.var_dir),
                "--broker-port", str(self.broker_port), "--kafka", broker_kind_under_test()]

    def start(self, timeout: float = 120) -> float:
        """Start and wait for every service's /readyz; returns the seconds it took."""
        started = time.monotonic()
        self.process = subprocess.Popen(self.command(), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True)
        self._drain()
        deadline = started + timeout
        pending = set(SERVICES)
        while pending:
            if self.process.poll() is not None:
                log = "".join(self.output[-80:])
                raise AssertionError(f"launcher exited early ({self.process.returncode}):\n{log}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not ready: {pending}\n" + "".join(self.output[-80:]))
            for service in list(pending):
                try:
                    if httpx.get(f"{self.url(service)}/readyz", timeout=2).status_code == 200:
                        pending.discard(service)
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        return time.monotonic() - started

    def _drain(self) -> None:
        import threading

        def pump() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)

        threading.Thread(target=pump, daemon=True).start()

    def stop(self, timeout: float = 60) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            log = "".join(self.output[-60:])
            raise AssertionError(f"the launcher did not stop within 60 s after SIGTERM:\n{log}") from exc
