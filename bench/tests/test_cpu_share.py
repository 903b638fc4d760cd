"""The bench's CPU accounting: a real process's CPU seconds read from Linux's /proc (the bench runs on Linux, as the
system it measures does), and the per-item arithmetic."""

from __future__ import annotations

import subprocess
import sys
import time

from run import cpu_rows, cpu_seconds, cpu_share


def test_a_busy_child_is_seen_using_cpu_and_a_gone_one_reads_none() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                              "while time.process_time() - t < 0.3: pass\ninput()"], stdin=subprocess.PIPE)
    try:
        used = 0.0
        for _ in range(100):
            used = cpu_seconds(child.pid) or 0.0
            if used >= 0.25:
                break
            time.sleep(0.05)
        assert 0.25 <= used < 5
    finally:
        child.communicate(b"\n", timeout=10)
    assert cpu_seconds(child.pid) is None


def test_cpu_per_item_and_the_rate_that_saturates_the_cores() -> None:
    before = {"ingest": 10.0, "classification": 20.0, "broker": 1.0}
    after = {"ingest": 11.0, "classification": 26.0, "broker": 2.0, "appeared later": 5.0}
    share = cpu_share(before, after, items=1000, seconds=4.0, cores=2)
    assert share["ms_per_item"] == {"ingest": 1.0, "classification": 6.0, "broker": 1.0}
    assert share["total_ms_per_item"] == 8.0
    assert share["cores_busy"] == 2.0
    assert share["saturates_at_items_per_s"] == 250.0  # 2 cores / 8 ms per item
    rows = dict(cpu_rows(share, "1 copy"))
    assert rows["  CPU ms per item [1 copy]"] == "ingest 1.0, classification 6.0, broker 1.0"
    assert "saturates them at 250.0 items/s" in rows["  CPU ms per item, all processes [1 copy]"]
    assert cpu_share(before, after, items=0, seconds=4.0, cores=2)["total_ms_per_item"] is None
    assert cpu_rows(None, "x") == []
