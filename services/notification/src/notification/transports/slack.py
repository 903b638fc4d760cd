"""Slack channels: a Block Kit message (:mod:`notification.domain.messages`) ``POST``-ed to the incoming-webhook URL.

The URL is the credential; no trace headers (Slack continues no trace).
"""

from __future__ import annotations

import json

import httpx

from notification.domain.messages import slack_body, summarize
from notification.transports._http import post
from notification.transports.base import Message, SendOutcome

__all__ = ["SlackSender"]


class SlackSender:
    def __init__(self, client: httpx.AsyncClient, *, timeout: float, dashboard_url: str) -> None:
        self._client = client
        self._timeout = timeout
        self._dashboard_url = dashboard_url

    async def send(self, message: Message) -> SendOutcome:
        body = json.dumps(slack_body(summarize(message.payload, self._dashboard_url)), ensure_ascii=False)
        return await post(self._client, message.channel["url"], body, {"content-type": "application/json"},
                          timeout=self._timeout)
