"""The delivery worker: sends due deliveries as signed webhooks and records each attempt.

Contract (a :class:`feedbackloop.runtime.Worker`; ``run`` returns after ``stop``):

* **claim**: a short write transaction leases up to the free sending slots' worth of due ``pending``
  deliveries (``next_attempt_at`` moved past the send timeout; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so
  several copies share the queue). No transaction is open while a request is in flight.
* **send**: ``POST`` the stored payload to the channel's *current* URL, signed per Standard Webhooks with the
  channel's *current* secret: ``webhook-id`` (the delivery id, the same on every attempt), ``webhook-timestamp``
  (Unix seconds of this attempt) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of id.timestamp.body>``).
  Redirects are not followed. At most ``delivery_timeout`` seconds.
* **record**: a second short transaction stores the attempt and moves the delivery on: 2xx → ``succeeded``;
  a network error, 5xx, 408 or 429 → due again per the retry schedule (``Retry-After`` honoured), or
  ``failed`` once the schedule is spent; any other status → ``failed`` at once.

Delivery is at least once: a crash between send and record sends again when the lease runs out, with the same
``webhook-id``, which is how a receiver drops the duplicate. Secrets: ``whsec_<base64>`` is decoded as the
Standard Webhooks spec says; any other secret is used as its UTF-8 bytes (``standardwebhooks.Webhook`` decodes
every *str* secret as base64, so a plain one is passed as ``bytes``). Secrets and signatures are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from feedbackloop.db import UnitOfWorkFactory, is_sqlite
from feedbackloop.logs import get_logger
from notification import __version__
from notification.config import NotificationSettings
from notification.domain.backoff import is_retryable, next_delay, parse_retry_after
from notification.domain.payload import encode_body
from notification.store.models import DeliveryAttempt
from notification.store.repository import Claim, DeliveryRepository

__all__ = ["DeliveryWorker", "signature_headers", "signer_for"]

log = get_logger(__name__)

ATTEMPTS = Counter("notification_delivery_attempts_total", "Webhook attempts, by outcome", ["outcome"])
ATTEMPT_SECONDS = Histogram("notification_delivery_attempt_seconds", "Duration of one webhook attempt",
                            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))

_LEASE_MARGIN = timedelta(seconds=30)
_ERROR_CHARS = 500


def signer_for(secret: str) -> Webhook:
    """The Standard Webhooks signer of a channel secret: ``whsec_`` + base64, or else the secret's UTF-8 bytes."""
    return Webhook(secret) if secret.startswith("whsec_") else Webhook(secret.encode())


def signature_headers(secret: str, msg_id: str, body: str, at: datetime) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` for ``body`` sent at ``at``."""
    at = at.astimezone(UTC).replace(microsecond=0)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signer_for(secret).sign(msg_id, at, body),
    }


class DeliveryWorker:
    """Sends due deliveries until :meth:`stop`; ``wake`` is set when the consumer queued new ones."""

    def __init__(self, settings: NotificationSettings, uow: UnitOfWorkFactory,
                 read_sessions: async_sessionmaker[AsyncSession], wake: asyncio.Event) -> None:
        self._schedule = settings.schedule
        self._jitter = settings.retry_jitter
        self._timeout = settings.delivery_timeout
        self._concurrency = settings.delivery_concurrency
        self._poll_interval = settings.delivery_poll_interval
        self._skip_locked = not is_sqlite(settings.database_url)
        self._uow = uow
        self._read = read_sessions
        self._wake = wake
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self.last_error: str | None = None

    def wake(self) -> None:
        """Look for due deliveries now rather than at the next poll (called when deliveries were queued)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Claim and send until :meth:`stop`; requests in flight then finish and are recorded before returning."""
        uow = self._uow
        delay = 0.5
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False,
                                     headers={"user-agent": f"feedbackloop-notification/{__version__}"}) as client:
            try:
                while not self._stopping.is_set():
                    self._wake.clear()
                    free = self._concurrency - len(self._inflight)
                    claimed: list[Claim] = []
                    if free > 0:
                        try:
                            claimed = await self._claim(uow, free)
                            delay = 0.5
                        except Exception as exc:  # store locked or away: keep the queue, look again later
                            self.last_error = repr(exc)
                            log.warning("claiming deliveries failed, retrying", error=repr(exc), retry_in=delay)
                            await self._pause(delay)
                            delay = min(delay * 2, 30.0)
                            continue
                    for claim in claimed:
                        task = asyncio.create_task(self._attempt(uow, client, claim), name=f"delivery:{claim.id}")
                        self._inflight.add(task)
                        task.add_done_callback(self._finished)
                    if claimed and len(claimed) == free:
                        continue  # maybe more are due; the loop waits once every slot is taken
                    await self._pause(self._poll_interval)
            finally:
                if self._inflight:
                    await asyncio.gather(*self._inflight, return_exceptions=True)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()  # a slot is free

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _claim(self, uow_factory: UnitOfWorkFactory, limit: int) -> list[Claim]:
        now = datetime.now(UTC)
        async with self._read() as session, session.begin():  # a cheap look first: no write lock when idle
            if not await DeliveryRepository(session).any_due(now):
                return []
        lease = now + timedelta(seconds=self._timeout) + _LEASE_MARGIN
        async with uow_factory() as uow:
            claims = await DeliveryRepository(uow.session).claim_due(now, lease, limit, skip_locked=self._skip_locked)
            if claims:
                await uow.commit()
        return claims

    async def _attempt(self, uow_factory: UnitOfWorkFactory, client: httpx.AsyncClient, claim: Claim) -> None:
        """Send one claimed delivery and record the outcome; never raises (an unrecorded send is re-sent later)."""
        try:
            if claim.url is None or claim.secret is None:
                await self._record(uow_factory, claim, None, "the rule or channel was deleted", 0.0, None,
                                   give_up=True)
                return
            status, error, retry_after, took = await self._send(client, claim, claim.url, claim.secret)
            await self._record(uow_factory, claim, status, error, took, retry_after)
        except Exception as exc:
            log.exception("recording a delivery attempt failed; it is retried when its lease ends",
                          delivery_id=claim.id, error=repr(exc))

    async def _send(self, client: httpx.AsyncClient, claim: Claim, url: str,
                    secret: str) -> tuple[int | None, str | None, float | None, float]:
        body = encode_body(claim.payload)
        headers = {"content-type": "application/json", **signature_headers(secret, claim.id, body, datetime.now(UTC))}
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        retry_after: float | None = None
        try:
            async with client.stream("POST", url, content=body.encode(), headers=headers) as response:
                status = response.status_code
                if not 200 <= status < 300:
                    text = await _read_some(response, 300)
                    error = f"HTTP {status}" + (f": {text}" if text else "")
                    retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
        except httpx.TimeoutException:
            error = f"timed out after {self._timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        took = time.perf_counter() - started
        ATTEMPT_SECONDS.observe(took)
        return status, error, retry_after, took

    async def _record(self, uow_factory: UnitOfWorkFactory, claim: Claim, status: int | None, error: str | None,
                      took: float, retry_after: float | None, *, give_up: bool = False) -> None:
        now = datetime.now(UTC)
        succeeded = error is None and status is not None and 200 <= status < 300
        async with uow_factory() as uow:
            repo = DeliveryRepository(uow.session)
            delivery = await repo.get(claim.id)
            if delivery is None or delivery.status != "pending" or delivery.attempts + 1 != claim.attempt:
                return  # deleted, or already recorded by another sender after our lease ran out
            if not give_up:
                await repo.record_attempt(DeliveryAttempt(delivery_id=claim.id, attempt=claim.attempt, at=now,
                                                          status_code=status,
                                                          error=error[:_ERROR_CHARS] if error else None,
                                                          duration_ms=round(took * 1000, 1)))
                delivery.attempts = claim.attempt
                delivery.url = claim.url or delivery.url
            delivery.last_status_code = status
            delivery.last_error = error[:_ERROR_CHARS] if error else None
            if succeeded:
                outcome = "succeeded"
                delivery.status, delivery.delivered_at, delivery.next_attempt_at = "succeeded", now, None
            else:
                wait = None if give_up or not is_retryable(status) else next_delay(
                    self._schedule, delivery.attempts - delivery.schedule_start, retry_after=retry_after,
                    jitter=self._jitter)
                if wait is None:
                    outcome = "failed"
                    delivery.status, delivery.next_attempt_at = "failed", None
                else:
                    outcome = "retry"
                    delivery.next_attempt_at = now + timedelta(seconds=wait)
            await uow.commit()
        ATTEMPTS.labels(outcome).inc()
        log_method = log.info if succeeded else log.warning
        log_method("delivery attempt", delivery_id=claim.id, attempt=claim.attempt, outcome=outcome,
                   status_code=status, error=error)


async def _read_some(response: httpx.Response, limit: int) -> str:
    """At most ``limit`` characters of the body, for the error message; never the whole of a large body."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit].decode("utf-8", "replace").strip()
