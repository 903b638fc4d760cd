"""The delivery worker: sends due deliveries as signed webhooks and records each attempt.

Contract (a :class:`feedbackloop.runtime.Worker`; ``run`` returns after ``stop``):

* **claim**: a short write transaction leases up to the free sending slots' worth of due ``pending``
  deliveries (``next_attempt_at`` moved past the send timeout; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so
  several copies share the queue). No transaction is open while a request is in flight.
* **send**, by the channel's *current* settings (read from its rule at claim time):

  - ``webhook``: ``POST`` the stored payload, signed per Standard Webhooks with the channel's secret:
    ``webhook-id`` (the delivery id, the same on every attempt), ``webhook-timestamp`` (Unix seconds of this
    attempt) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of id.timestamp.body>``);
  - ``slack``: ``POST`` a Block Kit message (:mod:`notification.domain.messages`) to the incoming-webhook URL;
  - ``email``: an HTML + text email over SMTP (STARTTLS, implicit TLS and AUTH per settings), whose
    ``Message-ID`` is the delivery id, so a mail client shows a re-sent attempt once.

  Redirects are not followed; with private targets not allowed, each connection is re-checked after DNS
  resolution (:mod:`notification.egress`). At most ``delivery_timeout`` (``smtp_timeout``) seconds.
* **record**: a second short transaction stores the attempt and moves the delivery on: success → ``succeeded``;
  a network error, HTTP 5xx, 408 or 429, or an SMTP 4xx → due again per the retry schedule (``Retry-After``
  honoured), or ``failed`` once the schedule is spent; any other status, or a refused target → ``failed`` at once.
  A send that cannot even start is a failed attempt too, never a delivery left pending: a URL ``httpx`` cannot
  read or send to (``InvalidURL``, ``UnsupportedProtocol``, a bad IDNA label) → ``failed`` at once; any other
  exception while building the request (say, a stored secret that does not decode) → retried per the schedule.
  Its error names the exception's type, never its text (which might quote a secret).
* **pause**: ``pause_after_failures`` failed deliveries in a row on one (rule, channel) pause it: its pending
  deliveries become ``paused`` (and so do new ones) until ``POST /v1/rules/{id}/channels/{index}/resume``, and an
  ``insights.v1`` event says so, through the outbox, in the same transaction.

* **trace**: each attempt is a ``CLIENT`` span ``deliver <channel type>`` (``deliver webhook``, ``deliver slack``,
  ``deliver email``) in the trace of the event that queued the delivery (the context stored with it; none stored:
  a trace of its own per attempt), with the delivery id, rule id, channel index, attempt number and target host
  (never the URL: a Slack URL is a credential) as attributes, and the HTTP status or SMTP reply code, or the error,
  recorded on it. A webhook request carries that span's ``traceparent`` (and ``tracestate``), so the receiver
  continues the trace; each retry is a new span in the same trace, so it sends the same trace id and a new span
  id. Slack and email get no trace headers (neither continues a trace). The span is made whether or not export
  is on (:mod:`feedbackloop.tracing`); the attempt's log line carries its ``trace_id`` and ``span_id``.

Delivery is at least once: a crash between send and record sends again when the lease runs out, with the same
``webhook-id``, which is how a receiver drops the duplicate. Secrets: ``whsec_<base64>`` is decoded as the
Standard Webhooks spec says; any other secret is used as its UTF-8 bytes (``standardwebhooks.Webhook`` decodes
every *str* secret as base64, so a plain one is passed as ``bytes``). Secrets and signatures are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx
from opentelemetry.trace import Span, Status, StatusCode
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from feedbackloop import tracing
from feedbackloop.contracts import INSIGHTS, Insight
from feedbackloop.db import UnitOfWork, UnitOfWorkFactory, is_sqlite
from feedbackloop.logs import get_logger
from notification import __version__
from notification.config import NotificationSettings
from notification.domain.backoff import is_retryable, next_delay, parse_retry_after
from notification.domain.channels import channel_from_json, mask_shown_url
from notification.domain.messages import email_parts, slack_body, summarize
from notification.domain.payload import encode_body
from notification.domain.targets import sender_url_problem
from notification.egress import Resolver, TargetRefused, guarded_client, system_resolver
from notification.store.models import DeliveryAttempt
from notification.store.repository import Claim, DeliveryRepository, NoiseRepository

__all__ = ["CHANNELS_PAUSED", "PAUSE_NAMESPACE", "SERVICE", "DeliveryWorker", "Outcome", "signature_headers",
           "signer_for"]

log = get_logger(__name__)

ATTEMPTS = Counter("feedbackloop_notification_delivery_attempts_total", "Delivery attempts, by outcome",
                   ["service", "outcome"])
ATTEMPT_SECONDS = Histogram("feedbackloop_notification_delivery_attempt_duration_seconds",
                            "Duration of one delivery attempt", ["service"],
                            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))

CHANNELS_PAUSED = Counter("feedbackloop_notification_channels_paused_total",
                          "Channels paused after failing deliveries in a row", ["service", "type"])
#: Namespace of the ids of "channel paused" insights: one pause of one channel is always the same event.
PAUSE_NAMESPACE = uuid.UUID("7c2e9b14-6a3f-5d82-b0e4-1f5a8c3d9e27")
_LEASE_MARGIN = timedelta(seconds=30)
_ERROR_CHARS = 500
#: The tracing service name of the delivery spans (the one the runtime traces notification's consumer under).
SERVICE = "notification"


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
                 read_sessions: async_sessionmaker[AsyncSession], wake: asyncio.Event, *,
                 resolver: Resolver = system_resolver) -> None:
        self._settings = settings
        self._resolver = resolver
        self._allow_private = settings.target_policy.allow_private
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
        async with guarded_client(allow_private=self._allow_private, timeout=self._timeout, resolver=self._resolver,
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
            if claim.channel is None:
                await self._record(uow_factory, claim, Outcome(None, "the rule or channel was deleted", None, 0.0,
                                                               retryable=False), attempted=False)
                return
            outcome = await self._traced_send(client, claim, claim.channel)
            await self._record(uow_factory, claim, outcome)
        except Exception as exc:
            log.exception("recording a delivery attempt failed; it is retried when its lease ends",
                          delivery_id=claim.id, error=repr(exc))

    async def _traced_send(self, client: httpx.AsyncClient, claim: Claim, channel: dict[str, Any]) -> Outcome:
        """:meth:`_send` in a ``deliver <type>`` client span of the delivery's stored trace context."""
        kind = str(channel.get("type", "webhook"))
        attributes: dict[str, Any] = {
            "notification.delivery.id": claim.id, "notification.rule.id": claim.rule_id,
            "notification.channel.index": claim.channel_index, "notification.delivery.attempt": claim.attempt,
            "server.address": self._settings.smtp_host if kind == "email" else _host(channel.get("url")),
        }
        with tracing.client_span(SERVICE, f"deliver {kind}", claim.trace_context, attributes) as span:
            outcome = await self._send(client, claim, channel)
            _note(span, kind, outcome)
            outcome.log_ids = tracing.log_ids(span)
        return outcome

    async def _send(self, client: httpx.AsyncClient, claim: Claim, channel: dict[str, Any]) -> Outcome:
        """One attempt; never raises: a send that cannot even start is an :class:`Outcome` too (:func:`_unsendable`)."""
        started = time.perf_counter()
        kind = channel.get("type", "webhook")
        try:
            if kind == "email":
                outcome = await self._send_email(claim, channel)
            else:
                if kind == "slack":
                    body = json.dumps(slack_body(summarize(claim.payload, self._settings.dashboard_url)),
                                      ensure_ascii=False)
                    headers = {"content-type": "application/json"}
                else:
                    body = encode_body(claim.payload)
                    headers = {"content-type": "application/json",
                               **signature_headers(channel["secret"], claim.id, body, datetime.now(UTC)),
                               **tracing.inject()}  # the current span: the attempt's, so the receiver continues it
                outcome = await self._post(client, channel["url"], body, headers)
        except Exception as exc:
            outcome = _unsendable(claim, channel, exc)
        outcome.took = time.perf_counter() - started
        ATTEMPT_SECONDS.labels(SERVICE).observe(outcome.took)
        return outcome

    async def _post(self, client: httpx.AsyncClient, url: str, body: str, headers: dict[str, str]) -> Outcome:
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
        except TargetRefused as exc:
            return Outcome(None, str(exc), None, 0.0, retryable=False)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:  # the URL itself: sending again cannot help
            return Outcome(None, f"cannot send to this URL: {exc}", None, 0.0, retryable=False)
        except httpx.TimeoutException:
            error = f"timed out after {self._timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return Outcome(status, error, retry_after, 0.0, retryable=is_retryable(status))

    async def _send_email(self, claim: Claim, channel: dict[str, Any]) -> Outcome:
        settings = self._settings
        subject, text, html = email_parts(summarize(claim.payload, settings.dashboard_url))
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = settings.smtp_from
        message["To"] = ", ".join(channel["to"])
        message["Message-ID"] = f"<{claim.id}@feedbackloop>"
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        try:
            await aiosmtplib.send(message, hostname=settings.smtp_host, port=settings.smtp_port,
                                  username=settings.smtp_username if password else None, password=password,
                                  use_tls=settings.smtp_tls, start_tls=settings.smtp_starttls,
                                  timeout=settings.smtp_timeout)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            return Outcome(max(codes, default=None), f"SMTP refused every recipient: {_smtp_text(exc)}", None, 0.0,
                           retryable=any(400 <= c < 500 for c in codes))
        except aiosmtplib.SMTPResponseException as exc:
            return Outcome(exc.code, f"SMTP {exc.code}: {exc.message}"[:_ERROR_CHARS], None, 0.0,
                           retryable=400 <= exc.code < 500)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}", None, 0.0, retryable=True)
        return Outcome(250, None, None, 0.0, retryable=False)

    async def _record(self, uow_factory: UnitOfWorkFactory, claim: Claim, outcome: Outcome, *,
                      attempted: bool = True) -> None:
        now = datetime.now(UTC)
        status, error = outcome.status, outcome.error
        succeeded = error is None and status is not None
        async with uow_factory() as uow:
            repo = DeliveryRepository(uow.session)
            delivery = await repo.get(claim.id)
            if delivery is None or delivery.status != "pending" or delivery.attempts + 1 != claim.attempt:
                return  # deleted, or already recorded by another sender after our lease ran out
            if attempted:
                await repo.record_attempt(DeliveryAttempt(delivery_id=claim.id, attempt=claim.attempt, at=now,
                                                          status_code=status,
                                                          error=error[:_ERROR_CHARS] if error else None,
                                                          duration_ms=round(outcome.took * 1000, 1)))
                delivery.attempts = claim.attempt
                if claim.channel is not None:
                    delivery.url = _shown_url(claim.channel, delivery.url)
            delivery.last_status_code = status
            delivery.last_error = error[:_ERROR_CHARS] if error else None
            if succeeded:
                result = "succeeded"
                delivery.status, delivery.delivered_at, delivery.next_attempt_at = "succeeded", now, None
            else:
                wait = None if not outcome.retryable else next_delay(
                    self._schedule, delivery.attempts - delivery.schedule_start, retry_after=outcome.retry_after,
                    jitter=self._jitter)
                if wait is None:
                    result = "failed"
                    delivery.status, delivery.next_attempt_at = "failed", None
                else:
                    result = "retry"
                    delivery.next_attempt_at = now + timedelta(seconds=wait)
            if result != "retry" and claim.channel is not None:
                await self._track_health(uow, claim, succeeded, error, now)
            await uow.commit()
        ATTEMPTS.labels(SERVICE, result).inc()
        log_method = log.info if succeeded else log.warning
        log_method("delivery attempt", delivery_id=claim.id, attempt=claim.attempt, outcome=result,
                   status_code=status, error=error, **outcome.log_ids)

    async def _track_health(self, uow: UnitOfWork, claim: Claim, succeeded: bool, error: str | None,
                            now: datetime) -> None:
        """Count failed deliveries in a row per channel; pause it, and say so in an insight, at the threshold."""
        noise = NoiseRepository(uow.session)
        if succeeded:
            health = await noise.health(claim.rule_id, claim.channel_index)
            if health is not None and health.paused_at is None:
                health.consecutive_failures = 0
            return
        health = await noise.health_locked(claim.rule_id, claim.channel_index)
        health.consecutive_failures = (health.consecutive_failures or 0) + 1
        health.last_error = error[:_ERROR_CHARS] if error else None
        threshold = self._settings.pause_after_failures
        if not threshold or health.paused_at is not None or health.consecutive_failures < threshold:
            return
        health.paused_at = now
        held = await DeliveryRepository(uow.session).pause_pending(
            claim.rule_id, claim.channel_index, f"channel paused after {threshold} failed deliveries in a row")
        channel_type = str((claim.channel or {}).get("type", "webhook"))
        shown = _shown_url(claim.channel or {}, "")
        shown = mask_shown_url(shown) if shown else "?"  # an insight is read by any key: the URL masked
        rule = claim.payload.get("rule") or {}
        uow.publish(INSIGHTS, channel_paused_insight(
            rule_id=claim.rule_id, rule_name=str(rule.get("name", "?")), team=str(rule.get("team", "?")),
            channel_index=claim.channel_index, channel_type=channel_type, shown_url=shown,
            failures=health.consecutive_failures, last_error=error, paused_at=now, held=held),
            event_id=str(uuid.uuid5(PAUSE_NAMESPACE, f"{claim.rule_id}\x1f{claim.channel_index}\x1f"
                                                     f"{now.isoformat()}")))
        CHANNELS_PAUSED.labels(SERVICE, channel_type).inc()
        log.warning("channel paused", rule_id=claim.rule_id, channel_index=claim.channel_index,
                    failures=health.consecutive_failures, held=held)


@dataclass
class Outcome:
    """What one attempt came to: a status (HTTP or SMTP code; ``None`` when nothing answered), an error when it
    failed, a requested ``Retry-After``, its duration, and whether a failure is worth trying again."""

    status: int | None
    error: str | None
    retry_after: float | None
    took: float
    retryable: bool
    log_ids: dict[str, str | None] = field(default_factory=dict)  # trace_id and span_id of the attempt's span


def _unsendable(claim: Claim, channel: dict[str, Any], exc: Exception) -> Outcome:
    """The outcome of an attempt whose request could not be built or started (a bad stored URL or secret, a bug).

    Recorded as a failed attempt like any other, so the delivery moves on: a URL ``httpx`` cannot read
    (``InvalidURL``, or an IDNA error it raises as it builds the request) fails at once — sending again cannot
    help; anything else retries on the schedule and then fails. The error names the exception's type and, for a
    URL problem, what ``httpx`` said about the URL; never the exception's text otherwise, which might quote a secret.
    """
    url = channel.get("url")
    url_problem = sender_url_problem(url) if isinstance(url, str) and channel.get("type") != "email" else None
    if url_problem is not None:
        error, retryable = f"cannot send to this URL: {url_problem}", False
    else:
        error, retryable = f"cannot build the request: {type(exc).__name__}", True
    log.warning("delivery could not be sent", delivery_id=claim.id, rule_id=claim.rule_id,
                channel_index=claim.channel_index, error_type=type(exc).__name__, retryable=retryable)
    return Outcome(None, error, None, 0.0, retryable=retryable)


def _shown_url(channel: dict[str, Any], stored: str) -> str:
    """The channel's URL as deliveries show it (:meth:`Channel.shown_url`); ``stored`` when it cannot be read."""
    try:
        return channel_from_json(channel).shown_url()
    except (KeyError, TypeError, ValueError):
        return stored


def _host(url: object) -> str:
    """The host of a channel URL, for the span (the URL itself may hold a credential); ``""`` if unreadable."""
    try:
        return httpx.URL(str(url)).host
    except (httpx.InvalidURL, TypeError, ValueError):
        return ""


def _note(span: Span, kind: str, outcome: Outcome) -> None:
    """Record an attempt's reply code and error on its span (status ERROR for any failed attempt)."""
    if outcome.status is not None:
        span.set_attribute("notification.smtp.reply_code" if kind == "email" else "http.response.status_code",
                           outcome.status)
    if outcome.error is not None:
        span.set_attribute("error.type", str(outcome.status) if outcome.status is not None else "_OTHER")
        span.set_attribute("notification.delivery.retryable", outcome.retryable)
        span.set_status(Status(StatusCode.ERROR, outcome.error[:300]))


def channel_paused_insight(*, rule_id: str, rule_name: str, team: str, channel_index: int, channel_type: str,
                           shown_url: str, failures: int, last_error: str | None, paused_at: datetime,
                           held: int) -> Insight:
    """The ``insights.v1`` event that says a channel was paused.

    The contract's insight types are fixed (spike, emerging_theme, sentiment_drop, kpi_drop, urgent_item); a
    paused channel is reported as ``kpi_drop``: the KPI is the channel's delivery success rate, observed 0 over
    the last ``failures`` deliveries against an expected 1. ``metrics.kind = "channel_paused"`` and the rule and
    channel fields let a consumer tell it from a product KPI. ``theme`` stays empty: it is not about feedback.
    """
    return Insight.model_validate({
        "insight_id": str(uuid.uuid5(PAUSE_NAMESPACE, f"insight\x1f{rule_id}\x1f{channel_index}\x1f"
                                                      f"{paused_at.isoformat()}")),
        "type": "kpi_drop",
        "title": f"Notifications paused: {channel_type} channel {channel_index} of rule “{rule_name}” (team {team}) "
                 f"failed {failures} deliveries in a row",
        "window": {"from": paused_at, "to": paused_at},
        "metrics": {"kind": "channel_paused", "observed": 0.0, "expected": 1.0, "consecutive_failures": failures,
                    "held_deliveries": held, "rule_id": rule_id, "rule_name": rule_name, "team": team,
                    "channel_index": channel_index, "channel_type": channel_type, "channel": shown_url,
                    "last_error": (last_error or "")[:200]},
        "severity": "warning",
        "created_at": paused_at,
    })


def _smtp_text(exc: aiosmtplib.SMTPRecipientsRefused) -> str:
    return "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)[:_ERROR_CHARS]


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
