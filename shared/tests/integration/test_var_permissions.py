"""``feedbackloop run`` keeps ``var/`` to its owner: the stores hold raw feedback and channel secrets, and logs
an earlier run wrote may show the admin key. The launcher is stopped at its port check (a port held here), so no
broker or service starts; what it did to ``var/`` by then is what every run does first."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from feedbackloop_testing import free_port

SERVICES = ("ingest", "classification", "aggregation", "notification")


def test_the_launcher_makes_var_owner_only_and_creates_files_owner_only(tmp_path: Path) -> None:
    var = tmp_path / "var"
    (var / "bench").mkdir(parents=True)
    var.chmod(0o755)
    (var / "bench").chmod(0o755)
    left = {var / "aggregation.db": b"SQLite format 3\x00", var / "run.log": b"created an admin API key: flk_a_b\n",
            var / "bench" / "run.log": b"..."}
    for path, content in left.items():
        path.write_bytes(content)
        path.chmod(0o644)
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    ports = {name: free_port() for name in SERVICES} | {"ingest": held.getsockname()[1]}
    env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(f"{s.upper()}_" for s in SERVICES))
           and not k.startswith(("FEEDBACKLOOP_", "KAFKA_"))}
    env.update({f"{name.upper()}_PORT": str(port) for name, port in ports.items()})
    try:
        result = subprocess.run([sys.executable, "-m", "feedbackloop.cli.main", "run", "--var-dir", str(var),
                                 "--broker-port", str(free_port())], env=env, capture_output=True, text=True,
                                timeout=60)
    finally:
        held.close()
    assert result.returncode == 1 and "already in use" in result.stderr, result.stderr + result.stdout

    assert var.stat().st_mode & 0o777 == 0o700
    assert (var / "bench").stat().st_mode & 0o777 == 0o700
    for path in left:
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert (var / "run.lock").stat().st_mode & 0o777 == 0o600, "created by the launcher under umask 077"
