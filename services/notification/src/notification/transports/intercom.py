"""Intercom channels: a ``loop_closed`` delivery's reply (``comment``) or note on its customer's newest conversation.

``POST {NOTIFICATION_INTERCOM_API_URL}/conversations/{id}/reply`` with ``{"message_type": "comment" | "note",
"type": "admin", "admin_id": NOTIFICATION_INTERCOM_ADMIN_ID, "body": <HTML>}``, ``Authorization: Bearer
NOTIFICATION_INTERCOM_TOKEN`` and ``Intercom-Version: 2.11``.

**Never two replies.** The body ends with the delivery's marker (``ref feedbackloop:<delivery id>``, visible
text). Before posting, every attempt reads the conversation (``GET /conversations/{id}``: its parts) and treats a
found marker as sent, so a retry after a lost answer — or the re-send after a crash between send and record —
posts nothing more. A failed read is the attempt's outcome (retried when it may be): never a blind post.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from notification.config import NotificationSettings
from notification.domain.loop import customer_of, has_marker, newest_conversation, reply_html, reply_text
from notification.transports._vendor import call, json_of
from notification.transports.base import Message, SendOutcome

__all__ = ["INTERCOM_VERSION", "IntercomSender"]

INTERCOM_VERSION = "2.11"


class IntercomSender:
    def __init__(self, client: httpx.AsyncClient, settings: NotificationSettings) -> None:
        self._client = client
        self._settings = settings

    async def send(self, message: Message) -> SendOutcome:
        settings = self._settings
        missing = settings.integrations.unset("intercom")
        if missing or settings.intercom_token is None or not settings.intercom_admin_id:
            return SendOutcome(None, f"intercom is not configured: set {', '.join(missing)}")
        data = message.payload.get("data") or {}
        customer = customer_of(data)
        conversation = newest_conversation(customer, "intercom") if customer is not None else None
        if conversation is None:
            return SendOutcome(None, "no Intercom conversation to reply on: the delivery's customer has none")
        url = f"{settings.intercom_api_url.rstrip('/')}/conversations/{quote(conversation, safe='')}"
        headers = {"authorization": f"Bearer {settings.intercom_token.get_secret_value()}",
                   "intercom-version": INTERCOM_VERSION, "accept": "application/json"}
        public = bool(message.channel.get("public"))
        done = f"intercom conversation {conversation}: {'reply' if public else 'note'}"
        read = await call(self._client, "GET", url, what=f"intercom conversation {conversation}", headers=headers)
        if isinstance(read, SendOutcome):
            return read
        if has_marker(_bodies(json_of(read)), message.delivery_id):
            return SendOutcome(read.status_code, detail=f"{done} (posted before: its marker was found)")
        body = {"message_type": "comment" if public else "note", "type": "admin",
                "admin_id": settings.intercom_admin_id,
                "body": reply_html(reply_text(message.channel, data), message.delivery_id)}
        answer = await call(self._client, "POST", f"{url}/reply", what=f"intercom conversation {conversation}",
                            json=body, headers=headers)
        if isinstance(answer, SendOutcome):
            return answer
        return SendOutcome(answer.status_code, detail=done)


def _bodies(conversation: Any) -> list[Any]:
    """The bodies of a conversation's first message and of its parts (replies, notes)."""
    if not isinstance(conversation, dict):
        return []
    source = conversation.get("source")
    bodies = [source.get("body")] if isinstance(source, dict) else []
    parts = conversation.get("conversation_parts")
    listed = parts.get("conversation_parts") if isinstance(parts, dict) else None
    bodies += [p.get("body") for p in listed or [] if isinstance(p, dict)]
    return bodies
