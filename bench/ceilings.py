"""The ceilings ``make bench`` judges the loop against, measured in the same run on the same machine.

- a bare FastAPI POST (:mod:`bare_app`) under the same single-item load as ingest: requests/s;
- the classification encoder alone, cold (every text new), in batches of 64: texts/s; and the whole labelling
  pipeline (encoder, heads, themes, language, urgency) over the same texts: items/s.

Absolute figures vary by machine; the ratios of the loop's figures to these should not.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent

ENCODER_PROBE = """
import json, sys, time
from classification.config import ClassificationSettings
from classification.model.classifier import PreviewItem, build_classifier
texts = json.loads(sys.stdin.read())
classifier = build_classifier(ClassificationSettings())
encoder = classifier.encoder
encoder.encode(["warm the session up"])
def rate(run):
    encoder.clear_cache()
    started = time.perf_counter()
    for i in range(0, len(texts), 64):
        run(texts[i:i + 64])
    return len(texts) / (time.perf_counter() - started)
encode = max(rate(encoder.encode) for _ in range(2))
label = max(rate(lambda chunk: classifier.label_many([PreviewItem(t) for t in chunk])) for _ in range(2))
print(json.dumps({"encoder_texts_per_s": round(encode, 1), "pipeline_items_per_s": round(label, 1)}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def encoder_ceiling(texts: list[str]) -> dict[str, Any]:
    """The encoder and the labelling pipeline alone, in a child process (as the service runs them)."""
    done = subprocess.run([sys.executable, "-c", ENCODER_PROBE], input=json.dumps(texts), capture_output=True,
                          text=True, timeout=600, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


async def bare_post_ceiling(run_load: Callable[[str], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """``run_load(url)`` (the same single-item phase ingest gets) against the bare app under uvicorn."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(HERE),  # noqa: ASYNC220
                               "--port", str(port), "--log-level", "warning", "--no-access-log"])
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient() as client:
            while True:
                try:
                    await client.get(f"http://127.0.0.1:{port}/docs")
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)  # noqa: ASYNC251 - a start-up poll, nothing else runs yet
        return await run_load(f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        server.wait(10)
