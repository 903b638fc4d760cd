"""A throwaway PostgreSQL cluster in a temporary folder, for tests and benchmarks.

:class:`ThrowawayPostgres` runs ``initdb`` and ``pg_ctl`` from the PostgreSQL binaries on the machine
(``FEEDBACKLOOP_PG_BIN``, else ``pg_ctl`` on ``PATH``, else the newest ``/usr/lib/postgresql/*/bin``) on a
free loopback port, with durability switched off (it is thrown away), and removes everything on
:meth:`stop`. PostgreSQL refuses to run as root: when the caller is root, the server runs as the
``postgres`` system user (Debian's package creates it) through ``runuser``.

Failure semantics: :meth:`start` raises :class:`PostgresUnavailable` naming what is missing (the binaries,
the ``postgres`` user) or the server log's tail when the server does not come up. Databases are made and
dropped with ``psql`` over the loopback port, so callers may be inside a running event loop.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

__all__ = ["PostgresUnavailable", "ThrowawayPostgres", "find_postgres_bin"]

_RUN_AS = "postgres"


class PostgresUnavailable(RuntimeError):
    """The throwaway server could not be started; the message says what to install or fix."""


def find_postgres_bin() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``psql``; raises :class:`PostgresUnavailable`."""
    explicit = os.environ.get("FEEDBACKLOOP_PG_BIN")
    candidates: list[Path] = [Path(explicit)] if explicit else []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name or 0))
    candidates.extend(Path(p) for p in reversed(versions))
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists() and (folder / "psql").exists():
            return folder
    raise PostgresUnavailable(
        "PostgreSQL binaries not found (initdb, pg_ctl, psql): install Debian's `postgresql` package "
        "or set FEEDBACKLOOP_PG_BIN to their folder"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayPostgres:
    """One PostgreSQL cluster for the lifetime of a test session; ``admin_url`` is its superuser URL."""

    def __init__(self, *, max_connections: int = 400) -> None:
        self._bin = find_postgres_bin()
        self._max_connections = max_connections
        self._root: Path | None = None
        self.port = 0

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def url(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@{self.host}:{self.port}/{database}"

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        if shutil.which("runuser") is None:
            raise PostgresUnavailable("running as root needs `runuser` (util-linux) to start PostgreSQL as `postgres`")
        return ["runuser", "-u", _RUN_AS, "--", *argv]

    def start(self) -> None:
        """initdb + start on a free port; waits until the server accepts connections."""
        root = Path(tempfile.mkdtemp(prefix="feedbackloop-pg-"))
        self._root = root
        if os.geteuid() == 0:
            try:
                shutil.chown(root, user=_RUN_AS)
            except LookupError as exc:
                raise PostgresUnavailable(
                    "PostgreSQL refuses to run as root and there is no `postgres` user: "
                    "install Debian's `postgresql` package (it creates one) or run the tests as a non-root user"
                ) from exc
        data = root / "data"
        self._run(
            self._as_server_user(
                [str(self._bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                 "--locale=C", "--no-sync"]
            ),
            "initdb",
        )
        options = " ".join(
            [
                f"-c listen_addresses={self.host}",
                f"-k {root}",
                f"-c max_connections={self._max_connections}",
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                "-c shared_buffers=64MB",
            ]
        )
        for _attempt in range(5):  # a port taken between picking and binding: pick again
            self.port = _free_port()
            argv = [str(self._bin / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60",
                    "-o", f"-p {self.port} {options}", "start"]
            done = subprocess.run(self._as_server_user(argv), capture_output=True, text=True, check=False)
            if done.returncode == 0:
                return
        raise PostgresUnavailable(f"PostgreSQL did not start: {self._log_tail()}")

    def stop(self) -> None:
        """Stop the server (immediately: nothing in it matters) and remove its folder."""
        if self._root is None:
            return
        data = self._root / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run(
                self._as_server_user([str(self._bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                capture_output=True, check=False,
            )
        shutil.rmtree(self._root, ignore_errors=True)
        self._root = None

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}".lower()
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting whoever still uses it."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one statement as the superuser; returns its unaligned output."""
        argv = [str(self._bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.host,
                "-p", str(self.port), "-U", "postgres", "-d", database, "-c", sql]
        return self._run(argv, "psql").strip()

    def _run(self, argv: list[str], what: str) -> str:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, env={**os.environ, "PGTZ": "UTC"})
        if done.returncode != 0:
            reason = done.stderr.strip() or done.stdout.strip()
            raise PostgresUnavailable(f"{what} failed ({done.returncode}): {reason}")
        return done.stdout

    def _log_tail(self) -> str:
        if self._root is None:
            return "no log"
        with contextlib.suppress(OSError):
            return (self._root / "server.log").read_text(errors="replace")[-2000:]
        return "no log"

    def __enter__(self) -> ThrowawayPostgres:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
