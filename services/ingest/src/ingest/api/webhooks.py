"""``POST /v1/webhooks/{source}``: a vendor's own webhook, verified the vendor's way; ``GET /v1/sources``.

Order of checks: known source (404) → rate limit (429) → secret configured (401, names the variable) →
signature / timestamp / token / nonce (401, names the check, never the secret) → JSON (400) → mapping
(202 ``ignored`` with the reason when the payload is neither feedback nor a tracker change) → durable store
(202 with the item ids and the issue keys of the tracker changes). Vendor handshakes (Slack
``url_verification``, Intercom and GitHub ``ping``, Help Scout test) answer 200.

A delivery's items, its tracker changes (``tracker.v1``) and its nonce are stored in ONE transaction (the group
commit's): all of it or none, and a failure answers 503 so the vendor redelivers.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from feedbackloop.http import NotFound, ProblemError, ReadKey, parse_json_body
from feedbackloop.logs import get_logger
from ingest.api.deps import IntakeDep, SettingsDep, StatsDep
from ingest.api.feedback import not_stored
from ingest.api.metrics import ITEMS_STORED, TRACKER_CHANGES, WEBHOOK_DELIVERIES
from ingest.api.ratelimit import RateLimits
from ingest.config import IngestSettings
from ingest.domain.connectors import (
    CONNECTORS,
    TRACKER_SOURCES,
    Connector,
    Delivery,
    Outcome,
    VerificationFailed,
    secret_variable,
)
from ingest.domain.sources import SourceStats
from ingest.service import OFF_LOOP_CHARS, NonceReplayed, NotStored, prepare_submission

router = APIRouter(prefix="/v1", tags=["webhooks"])
log = get_logger(__name__)


@router.post(
    "/webhooks/{source}",
    status_code=202,
    summary="Receive a vendor's webhook",
    description="Sources: " + ", ".join(f"`{s}`" for s in CONNECTORS) + ". Each verifies the vendor's own "
    "signature with `INGEST_<SOURCE>_SECRET` (Jira: `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`; "
    "Linear: `Linear-Signature` = hex HMAC-SHA256 of the body, and the body's `webhookTimestamp` within the replay "
    "window). Feedback becomes `feedback.raw.v1` items; GitHub `issues` opened / closed / reopened, Jira issue "
    "status changes and Linear issue state changes become `tracker.v1` events (not feedback).",
    responses={
        200: {"description": "A vendor handshake (Slack url_verification, ping) answered"},
        202: {"description": '`{"feedback_ids": [...], "tracker_changes": ["github:acme/web#42", …]}` once stored '
              "(`tracker_changes`: the issue keys of the tracker changes queued on `tracker.v1`; a redelivery is the "
              'same event), or `{"ignored": true, "reason": …}`'},
        400: {"description": "Malformed JSON"},
        401: {"description": "Not configured, or a check failed; `check` names it"},
        404: {"description": "Unknown source"},
        413: {"description": "Body too large"},
        429: {"description": "Too many deliveries for this source; see Retry-After"},
        503: {"description": "The store failed; nothing was stored: the vendor should redeliver"},
    },
)
async def receive_webhook(source: str, request: Request, intake: IntakeDep) -> JSONResponse:
    committer, settings, stats, limits, policy = (intake.committer, intake.settings, intake.stats, intake.limits,
                                                  intake.policy)
    now = datetime.now(UTC)
    connector, secret = _admit(source, settings, limits, stats, now)
    body = await request.body()
    delivery = Delivery(
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        query=dict(request.query_params),
        received_at=now,
    )
    options = settings.connector_options()
    try:
        verified = connector.verify(delivery, secret, options)
    except VerificationFailed as exc:
        _rejected(stats, source, now, exc.check)
        raise _unauthorized(exc.check, exc.detail) from None
    try:
        payload: Any = parse_json_body(body)
    except ProblemError:
        _rejected(stats, source, now, "malformed_json")
        raise
    # A large body's HTML and quoted replies are worked through off the event loop, as its redaction is.
    if len(body) > OFF_LOOP_CHARS:
        outcome = await asyncio.to_thread(connector.map, payload, delivery, options)
    else:
        outcome = connector.map(payload, delivery, options)
    ids: list[str] = []
    if outcome.items or outcome.changes or verified.nonce:
        try:
            stored = await committer.submit(
                await prepare_submission(
                    outcome.items, now, (source, verified.nonce) if verified.nonce else None, policy=policy,
                    changes=outcome.changes,
                )
            )
        except NonceReplayed:
            _rejected(stats, source, now, "nonce")
            raise _unauthorized("nonce", "This nonce was already used: the delivery is a replay.") from None
        except NotStored as exc:
            raise not_stored() from exc
        ids = [str(i) for i in stored]
    return _answer(source, outcome, ids, stats, now)


def _admit(
    source: str, settings: IngestSettings, limits: RateLimits, stats: SourceStats, now: datetime
) -> tuple[Connector, str]:
    """The source's connector and secret, once it is known (404), under its rate (429) and configured (401)."""
    connector = CONNECTORS.get(source)
    if connector is None:
        raise NotFound(f"No webhook source `{source}`; supported: {', '.join(CONNECTORS)}.")
    try:
        limits.check_source(source)
    except ProblemError:
        _rejected(stats, source, now, "rate_limited")
        raise
    secret = settings.secret_for(source)
    if secret is None:
        _rejected(stats, source, now, "not_configured")
        raise ProblemError(
            f"Webhooks from `{source}` are not accepted until `{secret_variable(source)}` is set.",
            status=401,
            title="Webhook source not configured",
            check="configured",
            variable=secret_variable(source),
        )
    return connector, secret


def _answer(source: str, outcome: Outcome, ids: list[str], stats: SourceStats, now: datetime) -> JSONResponse:
    """200 with a handshake's reply, 202 ``ignored`` with the reason, or 202 with the stored ids and the issue
    keys of the stored tracker changes; counted."""
    if outcome.reply is not None:
        stats.record_ignored(source, now)
        WEBHOOK_DELIVERIES.labels("ingest", source, "handshake", "").inc()
        return JSONResponse(outcome.reply, status_code=200)
    if outcome.ignored is not None or not (ids or outcome.changes):
        reason = outcome.ignored or "nothing to store"
        stats.record_ignored(source, now)
        WEBHOOK_DELIVERIES.labels("ingest", source, "ignored", "").inc()
        log.info("webhook ignored", source=source, reason=reason)
        return JSONResponse({"ignored": True, "reason": reason, "feedback_ids": [], "tracker_changes": []},
                            status_code=202)
    stats.record_accepted(source, now, len(ids), len(outcome.changes))
    WEBHOOK_DELIVERIES.labels("ingest", source, "accepted", "").inc()
    ITEMS_STORED.labels("ingest", source).inc(len(ids))
    for change in outcome.changes:
        TRACKER_CHANGES.labels("ingest", source, change.status).inc()
    if outcome.changes:
        log.info("tracker changes accepted", source=source,
                 changes=[f"{c.issue_key} {c.status}" for c in outcome.changes])
    return JSONResponse({"feedback_ids": ids, "tracker_changes": [c.issue_key for c in outcome.changes]},
                        status_code=202)


@router.get("/sources", summary="Each webhook source: configured, last delivery, deliveries and rejections in 24 h")
async def list_sources(_key: ReadKey, settings: SettingsDep, stats: StatsDep) -> dict[str, list[dict[str, Any]]]:
    now = datetime.now(UTC)
    items = []
    for name, connector in CONNECTORS.items():
        summary = stats.summary(name, now, configured=settings.secret_for(name) is not None)
        publishes = (["feedback.raw.v1"] if connector.channel is not None else []) + (
            ["tracker.v1"] if name in TRACKER_SOURCES else [])
        items.append({"source": name, "channel": connector.channel, "publishes": publishes,
                      "secret_variable": secret_variable(name), **summary})
    return {"items": items}


def _rejected(stats: SourceStats, source: str, now: datetime, reason: str) -> None:
    stats.record_rejected(source, now, reason)
    WEBHOOK_DELIVERIES.labels("ingest", source, "rejected", reason).inc()
    log.warning("webhook rejected", source=source, check=reason)


def _unauthorized(check: str, detail: str) -> ProblemError:
    return ProblemError(
        detail,
        status=401,
        title="Webhook verification failed",
        check=check,
        errors=[{"field": check, "message": detail}],
    )
