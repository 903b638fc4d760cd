"""Run an import: read and map the whole file, then post batches to a running ingest, checkpointing each.

Order: decode the whole file (a broken encoding stops here: nothing posted) → read rows → map them
(bad rows are kept aside with their line, the rest go on) → skip the items a checkpoint says ingest
already acknowledged → ``POST /v1/feedback`` batches of at most 1,000, each acknowledged 202 only once
durably stored → checkpoint after every batch → remove the checkpoint at the end.

Ids are deterministic (``feedback_id`` = UUIDv5 of source + external id), so a batch posted twice (a crash
between the 202 and the checkpoint write, or a later re-run) stores nothing new. Connection failures,
5xx and 429 are retried with jittered exponential backoff (tenacity; ``Retry-After`` honoured, at most 60 s) up
to ``retries`` times before the run stops as interrupted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential_jitter

from feedbackloop.contracts.events import Channel
from feedbackloop.keys import NoApiKey, cli_api_key
from ingest.tools.importer.checkpoint import Checkpoint, CheckpointStore
from ingest.tools.importer.decoding import decode_export
from ingest.tools.importer.errors import FileRejected, ImportInterrupted, ImportRefused, ImportStopped
from ingest.tools.importer.mapping import ExportKind, Mapped, map_rows
from ingest.tools.importer.rows import BadRow, read_rows

__all__ = ["MAX_BATCH", "ImportReport", "ImportRequest", "load_mapped", "resolve_api_key", "run_import"]

MAX_BATCH = 1000


@dataclass(frozen=True)
class ImportRequest:
    path: Path
    kind: ExportKind
    url: str
    api_key: str
    columns: dict[str, str] = field(default_factory=dict)
    source_name: str | None = None
    channel: Channel | None = None
    encoding: str | None = None
    state_dir: Path = Path("var/imports")
    batch_size: int = MAX_BATCH
    retries: int = 5

    def fingerprint(self) -> str:
        """What decides which items the file becomes and where they go (not the batch size)."""
        parts = [self.kind, sorted(self.columns.items()), self.source_name, self.channel, self.encoding,
                 self.url.rstrip("/")]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


@dataclass
class ImportReport:
    file: str
    rows: int
    items: int
    posted: int
    resumed_from: int
    empty: int
    bad: list[BadRow]
    seconds: float


def resolve_api_key(explicit: str | None, var_dir: Path = Path("var")) -> str:
    """``--api-key``, else ``FEEDBACKLOOP_API_KEY``, else the key ``make run`` wrote to ``var/api-key``."""
    try:
        return cli_api_key(explicit, "--api-key", var_dir)
    except NoApiKey as exc:
        raise ImportRefused(str(exc)) from None


def load_mapped(request: ImportRequest) -> tuple[str, Mapped]:
    """The file's SHA-256 and its mapped rows. Raises ``FileRejected`` before anything is posted."""
    try:
        data = request.path.read_bytes()
    except OSError as exc:
        raise FileRejected(f"cannot read {request.path}: {exc.strerror or exc}") from None
    text = decode_export(data, str(request.path), request.encoding)
    header, rows = read_rows(text, str(request.path))
    mapped = map_rows(rows, request.kind, header=header, columns=request.columns,
                      source_name=request.source_name, channel=request.channel)
    return hashlib.sha256(data).hexdigest(), mapped


async def run_import(
    request: ImportRequest, on_batch: Callable[[int, int], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import ``request.path``. ``on_start(done, total)`` is called once the file is mapped (``done`` > 0 when
    resuming), ``on_batch(done, total)`` after each acknowledged batch.

    Raises ``FileRejected`` (nothing posted), ``ImportRefused`` (key or request refused; batches acknowledged
    before it are kept) or ``ImportInterrupted`` (ingest unreachable after retries; resumable).
    """
    if not 1 <= request.batch_size <= MAX_BATCH:
        raise ImportRefused(f"--batch-size must be 1 to {MAX_BATCH}")
    started = time.perf_counter()
    sha, mapped = load_mapped(request)
    store = CheckpointStore(request.state_dir)
    fingerprint = request.fingerprint()
    total = len(mapped.items)
    checkpoint = store.load(sha, fingerprint) or Checkpoint(
        file=str(request.path), sha256=sha, fingerprint=fingerprint, items_total=total
    )
    resumed_from = min(checkpoint.items_done, total)
    done = resumed_from
    if on_start:
        on_start(done, total)
    headers = {"authorization": f"Bearer {request.api_key}", "user-agent": "feedbackloop-import"}
    async with httpx.AsyncClient(base_url=request.url, headers=headers, timeout=60) as client:
        try:
            while done < total:
                batch = mapped.items[done : done + request.batch_size]
                await _post(client, [m.item.model_dump(mode="json", exclude_none=True) for m in batch],
                            request.retries)
                done += len(batch)
                checkpoint.items_done = done
                store.save(checkpoint)
                if on_batch:
                    on_batch(done, total)
        except ImportInterrupted as exc:
            raise ImportInterrupted(f"{exc}; {done} of {total} items imported, re-run the same command to "
                                    "continue") from None
        except ImportStopped:
            raise
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise ImportInterrupted(f"interrupted: {done} of {total} items imported, re-run the same command "
                                    "to continue") from None
    store.remove(sha)
    return ImportReport(file=str(request.path), rows=mapped.rows, items=total, posted=total - resumed_from,
                        resumed_from=resumed_from, empty=mapped.empty, bad=mapped.bad,
                        seconds=time.perf_counter() - started)


class _Retryable(Exception):
    """A failure worth another try (ingest unreachable, 5xx, 429); ``retry_after`` is the server's wish, if any."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.retry_after = retry_after


class _WaitRetryAfter(wait_base):
    """The server's ``Retry-After`` when it gave one, else ``fallback`` (jittered exponential backoff)."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return exc.retry_after
        return float(self.fallback(retry_state))


#: 0.5 s, 1 s, 2 s … at most 8 s, each with up to 0.5 s of random jitter.
BACKOFF = wait_exponential_jitter(multiplier=0.5, max=8.0, jitter=0.5)


async def _post(
    client: httpx.AsyncClient, body: list[dict[str, object]], retries: int,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """POST one batch until ingest acknowledges it. Raises ``ImportRefused`` at once for an answer a retry will
    not change, ``ImportInterrupted`` once ``retries`` retries of a transient failure failed too."""
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(_Retryable),
        stop=stop_after_attempt(retries + 1),
        wait=_WaitRetryAfter(BACKOFF),
        sleep=sleep,
        reraise=True,
    )
    try:
        await retrying(_post_once, client, body)
    except _Retryable as exc:
        raise ImportInterrupted(str(exc)) from None


async def _post_once(client: httpx.AsyncClient, body: list[dict[str, object]]) -> None:
    try:
        response = await client.post("/v1/feedback", json=body)
    except httpx.TransportError as exc:
        raise _Retryable(f"cannot reach ingest at {client.base_url}: {exc or type(exc).__name__}") from None
    if response.status_code == 202:
        ids = response.json().get("feedback_ids", [])
        if len(ids) != len(body):
            raise ImportRefused(f"ingest acknowledged {len(ids)} of {len(body)} items")
        return
    detail = _detail(response)
    if response.status_code in (401, 403):
        raise ImportRefused(f"ingest refused the API key ({response.status_code}): {detail}")
    if response.status_code != 429 and response.status_code < 500:
        raise ImportRefused(f"ingest answered {response.status_code}: {detail}")
    raise _Retryable(f"ingest answered {response.status_code}: {detail}", _retry_after(response))


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail") or response.text)[:300]
    except (ValueError, AttributeError):
        return response.text[:300] or response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(60.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None
