"""The delivery worker: sends due deliveries through their channel's transport and records each attempt.

A :class:`~feedbackloop.runtime.worker.PeriodicWorker`: each tick claims up to the free sending slots' worth of due
deliveries (:func:`notification.service.attempts.claim_due`) and starts one task per claim; the consumer calls
:meth:`~DeliveryWorker.wake` when it queued deliveries, and a finished send wakes it too (a slot is free).

Each task makes one attempt and records it (:func:`notification.service.attempts.record_attempts`: the attempts
that finish while one transaction records wait for the next, so a busy worker commits many at once; a task keeps
its sending slot until its attempt is recorded), which moves the delivery on (succeeded, due again per the retry
schedule, or failed) and may pause its channel. The send goes
through the channel type's :class:`~notification.transports.base.Sender`, by the channel's *current* settings
(read from its rule at claim time). A send that cannot even start is a failed attempt too, never a delivery left
pending: a URL ``httpx`` cannot read or send to (``InvalidURL``, ``UnsupportedProtocol``, a bad IDNA label) fails
at once; any other exception while building the request (say, a stored secret that does not decode) is retried
per the schedule. Its error names the exception's type, never its text (which might quote a secret).

**Trace**: each attempt is a ``CLIENT`` span ``deliver <channel type>`` in the trace of the event that queued the
delivery (the context stored with it; none stored: a trace of its own per attempt), with the delivery id, rule id,
channel index, attempt number and target host (never the URL: a Slack URL is a credential) as attributes, and the
HTTP status or SMTP reply code, or the error, recorded on it. The webhook transport sends that span's
``traceparent``; each retry is a new span in the same trace. The attempt's log line carries ``trace_id`` and
``span_id``.

Delivery is at least once: a crash between send and record sends again when the lease runs out, with the same
``webhook-id``, which is how a receiver drops the duplicate. Secrets and signatures are never logged.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from typing import Any

import httpx
from opentelemetry.trace import Span, Status, StatusCode
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedbackloop import tracing
from feedbackloop.db import UnitOfWorkFactory, is_sqlite
from feedbackloop.logs import get_logger
from feedbackloop.retry import Stopped, retry_until_stopped
from feedbackloop.runtime.worker import PeriodicWorker
from notification import __version__
from notification.config import NotificationSettings
from notification.domain.lifecycle import AttemptResult
from notification.domain.targets import sender_url_problem
from notification.service.attempts import GONE_ERROR, claim_due, record_attempts
from notification.store.repository import Claim
from notification.transports import Message, Sender, SendOutcome, host_of, senders
from notification.transports.egress import Resolver, guarded_client, system_resolver

__all__ = ["SERVICE", "DeliveryWorker"]

log = get_logger(__name__)

ATTEMPTS = Counter("feedbackloop_notification_delivery_attempts_total", "Delivery attempts, by outcome",
                   ["service", "outcome"])
ATTEMPT_SECONDS = Histogram("feedbackloop_notification_delivery_attempt_duration_seconds",
                            "Duration of one delivery attempt", ["service"],
                            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
#: The tracing service name of the delivery spans (the one the runtime traces notification's consumer under).
SERVICE = "notification"


class DeliveryWorker(PeriodicWorker):
    """Sends due deliveries until :meth:`stop`; requests in flight then finish and are recorded before ``run``
    returns. ``wake`` (an :class:`asyncio.Event`), when given, is the event the consumer sets after queuing
    deliveries; otherwise the consumer calls :meth:`wake`."""

    def __init__(self, settings: NotificationSettings, uow: UnitOfWorkFactory,
                 read_sessions: async_sessionmaker[AsyncSession], wake: asyncio.Event | None = None, *,
                 resolver: Resolver = system_resolver) -> None:
        super().__init__(settings.delivery_poll_interval)
        if wake is not None:
            self._wake = wake
        self._settings = settings
        self._resolver = resolver
        self._skip_locked = not is_sqlite(settings.database_url)
        self._uow = uow
        self._read = read_sessions
        self._inflight: set[asyncio.Task[None]] = set()
        self._senders: dict[str, Sender] = {}
        # sends waiting to be recorded, and the task recording them (one transaction for what finished together)
        self._unrecorded: list[tuple[Claim, SendOutcome | None, asyncio.Future[AttemptResult | None]]] = []
        self._recorder: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Claim and send until :meth:`stop`; requests in flight then finish and are recorded before returning."""
        user_agent = {"user-agent": f"feedbackloop-notification/{__version__}"}
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(guarded_client(
                allow_private=self._settings.target_policy.allow_private, timeout=self._settings.delivery_timeout,
                resolver=self._resolver, headers=user_agent))
            # Support tools and trackers: URLs from the operator's environment (NOTIFICATION_ZENDESK_URL,
            # TRACKER_*), never from a rule, so not through the SSRF guard of rule-given URLs (which would refuse
            # a 127.0.0.1 stand-in); redirects not followed either.
            vendor = await stack.enter_async_context(httpx.AsyncClient(
                timeout=self._settings.delivery_timeout, follow_redirects=False, headers=user_agent))
            self._senders = senders(self._settings, client, vendor)
            try:
                await super().run()
            finally:
                if self._inflight:
                    await asyncio.gather(*self._inflight, return_exceptions=True)

    async def tick(self) -> float | None:
        """Claim what the free slots can take and start sending it; at once again when every slot was filled
        (maybe more are due), else after the poll interval. A store locked or away is retried with backoff."""
        free = self._settings.delivery_concurrency - len(self._inflight)
        if free <= 0:
            return None
        try:
            claimed = await retry_until_stopped(lambda: self._claim(free), stopping=self._stopping,
                                                retry_if=lambda exc: isinstance(exc, Exception),
                                                on_retry=self._claim_failed)
        except Stopped:
            return None
        for claim in claimed:
            task = asyncio.create_task(self._attempt(claim), name=f"delivery:{claim.id}")
            self._inflight.add(task)
            task.add_done_callback(self._finished)
        return 0.0 if claimed and len(claimed) == free else None

    async def _claim(self, limit: int) -> list[Claim]:
        return await claim_due(self._read, self._uow, limit, send_timeout=self._settings.delivery_timeout,
                               skip_locked=self._skip_locked)

    def _claim_failed(self, exc: BaseException, delay: float) -> None:
        self.last_error = repr(exc)
        log.warning("claiming deliveries failed, retrying", error=repr(exc), retry_in=round(delay, 2))

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self.wake()  # a slot is free

    async def _attempt(self, claim: Claim) -> None:
        """Send one claimed delivery and record the outcome; never raises (an unrecorded send is re-sent later)."""
        try:
            sent = await self._traced_send(claim, claim.channel) if claim.channel is not None else None
            result = await self._record(claim, sent)
        except Exception as exc:
            log.exception("recording a delivery attempt failed; it is retried when its lease ends",
                          delivery_id=claim.id, error=repr(exc))
            return
        if result is None:
            return
        ATTEMPTS.labels(SERVICE, result).inc()
        status, error = (sent.status, sent.error) if sent is not None else (None, GONE_ERROR)
        log_method = log.info if result is AttemptResult.SUCCEEDED else log.warning
        log_method("delivery attempt", delivery_id=claim.id, attempt=claim.attempt, outcome=str(result),
                   status_code=status, error=error, **(sent.log_ids if sent is not None else {}))

    async def _record(self, claim: Claim, sent: SendOutcome | None) -> AttemptResult | None:
        """Record the attempt together with the others that finished meanwhile (a group commit: while one
        transaction records, the next batch gathers); returns how it counts, raises what recording raised."""
        done: asyncio.Future[AttemptResult | None] = asyncio.get_running_loop().create_future()
        self._unrecorded.append((claim, sent, done))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_pending(), name="delivery-recorder")
        return await done

    async def _record_pending(self) -> None:
        """Record what waits, batch after batch; a batch that fails is recorded one by one, so that one bad
        attempt does not keep the others unrecorded."""
        while self._unrecorded:
            batch, self._unrecorded = self._unrecorded, []
            try:
                results = await self._record_many([(claim, sent) for claim, sent, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    batch[0][2].set_exception(exc)
                    continue
                for claim, sent, done in batch:
                    try:
                        (result,) = await self._record_many([(claim, sent)])
                    except Exception as one:
                        done.set_exception(one)
                    else:
                        done.set_result(result)
                continue
            for (_, _, done), result in zip(batch, results, strict=True):
                done.set_result(result)

    async def _record_many(self, attempts: list[tuple[Claim, SendOutcome | None]]) -> list[AttemptResult | None]:
        settings = self._settings
        return await record_attempts(self._uow, attempts, schedule=settings.schedule, jitter=settings.retry_jitter,
                                     pause_after=settings.pause_after_failures)

    async def _traced_send(self, claim: Claim, channel: dict[str, Any]) -> SendOutcome:
        """:meth:`_send` in a ``deliver <type>`` client span of the delivery's stored trace context."""
        kind = str(channel.get("type", "webhook"))
        attributes: dict[str, Any] = {
            "notification.delivery.id": claim.id, "notification.rule.id": claim.rule_id,
            "notification.channel.index": claim.channel_index, "notification.delivery.attempt": claim.attempt,
            "server.address": self._server_address(kind, channel),
        }
        with tracing.client_span(SERVICE, f"deliver {kind}", claim.trace_context, attributes) as span:
            outcome = await self._send(claim, kind, channel)
            _note(span, kind, outcome)
            outcome.log_ids = tracing.log_ids(span)
        return outcome

    def _server_address(self, kind: str, channel: dict[str, Any]) -> str:
        """The host an attempt talks to (never a URL: a Slack URL is a credential)."""
        settings = self._settings
        if kind == "email":
            return settings.smtp_host
        if kind == "zendesk":
            return host_of(settings.zendesk_url or "")
        if kind == "intercom":
            return host_of(settings.intercom_api_url)
        if kind == "tracker":
            trackers = settings.trackers
            return host_of({"github": trackers.github_api_url, "jira": trackers.jira_url or "",
                            "linear": trackers.linear_api_url}.get(str(channel.get("tracker")), ""))
        return host_of(channel.get("url"))

    async def _send(self, claim: Claim, kind: str, channel: dict[str, Any]) -> SendOutcome:
        """One attempt through the channel type's sender; never raises (see :func:`_unsendable`)."""
        started = time.perf_counter()
        try:
            outcome = await self._senders.get(kind, self._senders["webhook"]).send(
                Message(delivery_id=claim.id, payload=claim.payload, channel=channel, attempt=claim.attempt))
        except Exception as exc:
            outcome = _unsendable(claim, channel, exc)
        outcome.took = time.perf_counter() - started
        ATTEMPT_SECONDS.labels(SERVICE).observe(outcome.took)
        return outcome


def _unsendable(claim: Claim, channel: dict[str, Any], exc: Exception) -> SendOutcome:
    """The outcome of an attempt whose request could not be built or started (a bad stored URL or secret, a bug).

    A URL ``httpx`` cannot read (``InvalidURL``, or an IDNA error it raises as it builds the request) fails at
    once — sending again cannot help; anything else retries on the schedule and then fails. The error names the
    exception's type and, for a URL problem, what ``httpx`` said about the URL; never the exception's text
    otherwise, which might quote a secret.
    """
    url = channel.get("url")
    url_problem = sender_url_problem(url) if isinstance(url, str) and channel.get("type") in (
        None, "webhook", "slack") else None
    if url_problem is not None:
        error, retryable = f"cannot send to this URL: {url_problem}", False
    else:
        error, retryable = f"cannot build the request: {type(exc).__name__}", True
    log.warning("delivery could not be sent", delivery_id=claim.id, rule_id=claim.rule_id,
                channel_index=claim.channel_index, error_type=type(exc).__name__, retryable=retryable)
    return SendOutcome(None, error, retryable=retryable)


def _note(span: Span, kind: str, outcome: SendOutcome) -> None:
    """Record an attempt's reply code and error on its span (status ERROR for any failed attempt)."""
    if outcome.status is not None:
        span.set_attribute("notification.smtp.reply_code" if kind == "email" else "http.response.status_code",
                           outcome.status)
    if outcome.error is not None:
        span.set_attribute("error.type", str(outcome.status) if outcome.status is not None else "_OTHER")
        span.set_attribute("notification.delivery.retryable", outcome.retryable)
        span.set_status(Status(StatusCode.ERROR, outcome.error[:300]))
