"""Zendesk channels: a ``loop_closed`` delivery's reply (public) or internal note on its customer's newest ticket.

``PUT {NOTIFICATION_ZENDESK_URL}/api/v2/tickets/{id}.json`` with ``{"ticket": {"comment": {"html_body": …,
"public": …}}}``, authenticated as ``{NOTIFICATION_ZENDESK_EMAIL}/token:{NOTIFICATION_ZENDESK_TOKEN}`` (Basic).

**Never two replies.** The body ends with the delivery's marker (``ref feedbackloop:<delivery id>``, visible text:
Zendesk sanitizes HTML). Before posting, every attempt reads the ticket's comments (``GET …/comments.json``,
newest first) and treats a found marker as sent: a retry after a lost answer, and the re-send after a crash
between send and record (which keeps its attempt number), find the comment already there. A failed read is the
attempt's outcome (retried when it may be): a reply is never posted blind.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from notification.config import NotificationSettings
from notification.domain.loop import customer_of, has_marker, newest_conversation, reply_html, reply_text
from notification.transports._vendor import call, json_of
from notification.transports.base import Message, SendOutcome

__all__ = ["ZendeskSender"]

#: Pages of comments read looking for the marker (100 comments each, newest first).
_PAGES = 5


class ZendeskSender:
    def __init__(self, client: httpx.AsyncClient, settings: NotificationSettings) -> None:
        self._client = client
        self._settings = settings

    async def send(self, message: Message) -> SendOutcome:
        settings = self._settings
        missing = settings.integrations.unset("zendesk")
        if missing or not settings.zendesk_url or not settings.zendesk_email or settings.zendesk_token is None:
            return SendOutcome(None, f"zendesk is not configured: set {', '.join(missing)}")
        data = message.payload.get("data") or {}
        customer = customer_of(data)
        ticket = newest_conversation(customer, "zendesk") if customer is not None else None
        if ticket is None:
            return SendOutcome(None, "no Zendesk ticket to reply on: the delivery's customer has no zendesk "
                                     "conversation")
        base = f"{settings.zendesk_url.rstrip('/')}/api/v2/tickets/{quote(ticket, safe='')}"
        auth = httpx.BasicAuth(f"{settings.zendesk_email}/token", settings.zendesk_token.get_secret_value())
        public = bool(message.channel.get("public"))
        done = f"zendesk ticket {ticket}: {'public reply' if public else 'internal note'}"
        found = await self._posted(base, auth, message.delivery_id, ticket)
        if isinstance(found, SendOutcome):
            return found
        if found:
            return SendOutcome(200, detail=f"{done} (posted before: its marker was found)")
        body = {"ticket": {"comment": {"html_body": reply_html(reply_text(message.channel, data),
                                                               message.delivery_id), "public": public}}}
        answer = await call(self._client, "PUT", f"{base}.json", what=f"zendesk ticket {ticket}", json=body,
                            auth=auth)
        if isinstance(answer, SendOutcome):
            return answer
        return SendOutcome(answer.status_code, detail=done)

    async def _posted(self, base: str, auth: httpx.Auth, delivery_id: str, ticket: str) -> bool | SendOutcome:
        """Whether the ticket already carries the delivery's marker; the failed outcome when it cannot be read."""
        url: str | None = f"{base}/comments.json"
        params: dict[str, str] | None = {"sort_order": "desc"}
        for _ in range(_PAGES):
            if url is None:
                break
            answer = await call(self._client, "GET", url, what=f"zendesk ticket {ticket} comments", params=params,
                                auth=auth)
            if isinstance(answer, SendOutcome):
                return answer
            page = json_of(answer) or {}
            comments = page.get("comments") if isinstance(page, dict) else None
            bodies = [c.get(key) for c in comments or [] if isinstance(c, dict)
                      for key in ("body", "html_body", "plain_body")]
            if has_marker(bodies, delivery_id):
                return True
            following = page.get("next_page") if isinstance(page, dict) else None
            # Only a page of the same ticket: the credentials go nowhere else.
            url = following if isinstance(following, str) and following.startswith(f"{base}/") else None
            params = None
        return False
