"""A stand-in mailbox: an SMTP server (aiosmtpd) that accepts every message and prints who it is for.

For the README walkthrough, where the owner of a customer is told by email that their issue shipped: notification
sends to it (``NOTIFICATION_SMTP_PORT``) and the stand-ins' terminal shows the message arrive.
"""

from __future__ import annotations

import email
import email.policy
import sys
from typing import Any

from aiosmtpd.controller import Controller

__all__ = ["PrintingMailbox", "start_mailbox"]


class PrintingMailbox:
    """An aiosmtpd handler: one line per message (recipients and subject), the parsed messages kept."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)
        print(f"mail to {', '.join(envelope.rcpt_tos)}: {message['subject']}", file=sys.stdout, flush=True)
        return "250 OK"


def start_mailbox(host: str, port: int) -> tuple[Controller, PrintingMailbox]:
    """Start the mailbox on ``host:port`` (its own thread); stop it with ``controller.stop()``."""
    mailbox = PrintingMailbox()
    controller = Controller(mailbox, hostname=host, port=port)
    controller.start()
    return controller, mailbox
