"""``BENCH_PROFILE=1``: record each service with py-spy while an end-to-end phase runs.

One ``py-spy record --nonblocking -f raw`` per service process (``--nonblocking`` reads the process without
pausing it, so the figures around it move little), written as ``<run>-<service>-<pid>.raw`` in the run's folder;
:func:`top_frames` reads the innermost frames of each for the table, ``bench/profile_summary.py FILE`` gives the
whole picture. py-spy needs ptrace rights over the services (root, or ``kernel.yama.ptrace_scope=0``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from profile_summary import summarize  # bench/ is on sys.path when these scripts run


def enabled() -> bool:
    return os.environ.get("BENCH_PROFILE", "").strip().lower() in {"1", "true", "yes"}


@asynccontextmanager
async def profiled(pids: dict[str, list[int]], folder: Path, run: str) -> AsyncIterator[dict[str, list[Path]]]:
    """Record every pid in ``pids`` (service → pids) until the block ends; yields service → raw files, which
    hold the samples once the block has ended. Without py-spy on the PATH, nothing is recorded."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    files: dict[str, list[Path]] = {service: [] for service in pids}
    recorders: list[subprocess.Popen[bytes]] = []
    if Path(py_spy).exists():
        for service, service_pids in pids.items():
            for pid in service_pids:
                raw = folder / f"{run}-{service}-{pid}.raw"
                recorders.append(subprocess.Popen(  # noqa: ASYNC220 - started here, stopped below
                    [py_spy, "record", "--nonblocking", "-r", "50", "-f", "raw", "-o", str(raw), "--pid", str(pid)],
                    stdout=subprocess.DEVNULL, stderr=open(folder / f"{raw.name}.log", "ab")))  # noqa: SIM115
                files[service].append(raw)
    try:
        yield files
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for recorder in recorders:
            try:
                recorder.wait(30)
            except subprocess.TimeoutExpired:
                recorder.kill()


def top_frames(files: dict[str, list[Path]], count: int = 5) -> dict[str, list[tuple[str, float]]]:
    """Service → its ``count`` innermost frames with the largest share of active samples (all its copies)."""
    out: dict[str, list[tuple[str, float]]] = {}
    for service, raws in files.items():
        total, own = 0, None
        for raw in raws:
            if not raw.exists():
                continue
            samples, frames, _ = summarize(raw)
            total += samples
            own = frames if own is None else own + frames
        if total and own is not None:
            out[service] = [(frame, round(100 * n / total, 1)) for frame, n in own.most_common(count)]
    return out
