"""Source names reserved for signed webhooks. Pure.

An item's ``feedback_id`` is a UUIDv5 of (source, the source's own id), and a second item with the same id is a
redelivery, dropped. Were ``POST /v1/feedback`` (an API write key) or ``feedbackloop import`` allowed to send
``source: "zendesk", external_id: "6001"``, the genuine, signed Zendesk ticket 6001 arriving later would be dropped
as a duplicate of the forgery. So every source with a signed webhook connector (``ingest.domain.connectors``)
comes in through that connector only: the JSON API answers 422 naming ``source``, the importer refuses the file,
and a Standard Webhooks body (signed, but with the integrator's key, not the vendor's) is ignored.
"""

from __future__ import annotations

from ingest.domain.connectors import CONNECTORS, secret_variable

__all__ = ["RESERVED_SOURCES", "reserved_source_reason"]

RESERVED_SOURCES: frozenset[str] = frozenset(CONNECTORS)


def reserved_source_reason(source: str) -> str | None:
    """Why ``source`` cannot be sent through the API or an import, or None when it can."""
    if source not in RESERVED_SOURCES:
        return None
    return (
        f"`{source}` is reserved for its signed webhook (POST /v1/webhooks/{source}, verified with "
        f"{secret_variable(source)}): an item sent under it here could take the id of a genuine {source} item "
        "and have that one dropped as a duplicate. Use another source name, e.g. `api` or your tool's name."
    )
