"""The vendors' webhooks for an issue that changed state, signed as each vendor signs, sent and awaited.

    GitHub  POST {base}/github  X-GitHub-Event: issues, X-GitHub-Delivery, X-Hub-Signature-256: sha256=<hex>
    Jira    POST {base}/jira    jira:issue_updated with changelog; X-Hub-Signature: sha256=<hex>
    Linear  POST {base}/linear  Issue update with updatedFrom; Linear-Signature: <hex>; webhookTimestamp in ms

Each delivery is recorded (``GET /_standin/webhooks``) with the receiver's status, so a test can assert that it
was accepted. Without ``webhook_url_base`` nothing is sent (recorded as ``skipped``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx

from feedbackloop_testing.standins.state import State, iso_now

__all__ = ["deliver", "github_event", "jira_event", "linear_event", "sign"]


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def deliver(state: State, tracker: str, event: str, key: str, payload: dict[str, Any],
                  headers: dict[str, str]) -> dict[str, Any]:
    """Send one webhook to ``{webhook_url_base}/{tracker}``; the recorded delivery (status or error)."""
    config = state.config
    body = json.dumps(payload, separators=(",", ":")).encode()
    secret: str | None = getattr(config, f"{tracker}_secret")
    if secret:
        signature = sign(secret, body)
        headers |= {"github": {"X-Hub-Signature-256": f"sha256={signature}"},
                    "jira": {"X-Hub-Signature": f"sha256={signature}"},
                    "linear": {"Linear-Signature": signature}}[tracker]
    record: dict[str, Any] = {"id": uuid.uuid4().hex, "tracker": tracker, "event": event, "issue": key,
                              "at": iso_now(), "url": None, "status": None, "error": None, "signed": bool(secret),
                              "payload": payload}
    if not config.webhook_url_base:
        record["error"] = "skipped: no webhook_url_base configured"
    else:
        record["url"] = f"{config.webhook_url_base.rstrip('/')}/{tracker}"
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                answer = await http.post(record["url"], content=body,
                                         headers={"Content-Type": "application/json", **headers})
            record["status"] = answer.status_code
            record["response"] = answer.text[:2000]
        except httpx.HTTPError as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"[:500]
    state.log_webhook(record)
    return record


def github_event(state: State, repo: str, issue: dict[str, Any], action: str) -> tuple[dict[str, Any], dict[str, str]]:
    owner, _, name = repo.partition("/")
    sender = {"login": "standin-bot", "id": 1, "type": "User"}
    payload = {"action": action, "issue": issue,
               "repository": {"id": abs(hash(repo.lower())) % 10**8, "name": name, "full_name": repo,
                              "html_url": f"{state.config.github_html_url}/{repo}", "private": False,
                              "owner": {"login": owner, "type": "Organization"}},
               "sender": sender}
    return payload, {"X-GitHub-Event": "issues", "X-GitHub-Delivery": str(uuid.uuid4()),
                     "X-GitHub-Hook-ID": "1", "User-Agent": "GitHub-Hookshot/standin"}


def jira_event(issue: dict[str, Any], items: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:
    payload = {"timestamp": int(time.time() * 1000), "webhookEvent": "jira:issue_updated",
               "issue_event_type_name": "issue_generic",
               "user": {"accountId": "standin", "displayName": "Stand-in", "active": True},
               "issue": issue, "changelog": {"id": str(uuid.uuid4().int % 10**6), "items": items}}
    return payload, {"User-Agent": "Atlassian Webhook HTTP Client", "X-Atlassian-Webhook-Identifier": uuid.uuid4().hex}


def linear_event(issue: dict[str, Any], updated_from: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    delivery = str(uuid.uuid4())
    payload = {"action": "update", "type": "Issue", "createdAt": iso_now(), "data": issue,
               "updatedFrom": updated_from, "url": issue["url"], "organizationId": "standin-org",
               "webhookTimestamp": int(time.time() * 1000), "webhookId": "standin-webhook"}
    return payload, {"Linear-Delivery": delivery, "Linear-Event": "Issue", "User-Agent": "Linear-Webhook"}
