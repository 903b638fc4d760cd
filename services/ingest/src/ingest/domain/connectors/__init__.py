"""The vendor connectors, by the ``{source}`` of ``POST /v1/webhooks/{source}``.

Each is pure: ``verify(delivery, secret, options)`` proves the delivery came from the vendor (or raises
``VerificationFailed`` naming the check), ``map(payload, delivery, options)`` turns the vendor's JSON into
``FeedbackIn`` items and, for the trackers (``TRACKER_SOURCES``: GitHub, Jira, Linear), ``TrackerChange``
events, or says why it is ignored. The secret of a source is ``INGEST_<SOURCE>_SECRET``.
"""

from __future__ import annotations

from ingest.domain.connectors.base import (
    Connector,
    ConnectorOptions,
    Delivery,
    Outcome,
    VerificationFailed,
    Verified,
)
from ingest.domain.connectors.canny import Canny
from ingest.domain.connectors.freshdesk import AUTOMATION_TEMPLATE, Freshdesk
from ingest.domain.connectors.github import GitHub
from ingest.domain.connectors.helpscout import HelpScout
from ingest.domain.connectors.intercom import Intercom
from ingest.domain.connectors.jira import Jira
from ingest.domain.connectors.linear import Linear
from ingest.domain.connectors.slack import Slack
from ingest.domain.connectors.standard import StandardWebhooks
from ingest.domain.connectors.surveys import Delighted, Typeform
from ingest.domain.connectors.zendesk import Zendesk

__all__ = [
    "AUTOMATION_TEMPLATE",
    "CONNECTORS",
    "TRACKER_SOURCES",
    "Connector",
    "ConnectorOptions",
    "Delivery",
    "Outcome",
    "VerificationFailed",
    "Verified",
    "secret_variable",
]

CONNECTORS: dict[str, Connector] = {
    c.source: c
    for c in (
        Zendesk(),
        Intercom(),
        Freshdesk(),
        HelpScout(),
        GitHub(),
        Typeform(),
        Delighted(),
        Canny(),
        Slack(),
        StandardWebhooks(),
        Jira(),
        Linear(),
    )
}
#: The sources whose webhooks can carry tracker issue changes (published on ``tracker.v1``).
TRACKER_SOURCES: frozenset[str] = frozenset({"github", "jira", "linear"})


def secret_variable(source: str) -> str:
    """The environment variable that holds ``source``'s signing secret."""
    return f"INGEST_{source.upper()}_SECRET"
