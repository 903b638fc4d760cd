"""What an erasure request (``privacy.v1``) changes in a delivery's stored payload. Pure: no I/O.

The delivery log stays (which rule fired, when, to which channel, with what outcome); what the message said about
the erased items goes. Total: a payload of an unexpected shape is handled, never an error.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["ERASED_ERROR", "blanked_payload", "digest_without", "insight_after_erasure"]

#: ``last_error`` of a delivery that was still to be sent when its item was erased (it never will be).
ERASED_ERROR = "not sent: its item was erased (privacy.v1)"


def blanked_payload(payload: Mapping[str, Any], request_id: str) -> dict[str, Any]:
    """A delivery's payload with the event's data gone: its type, rule and event id stay, and the request."""
    kept = {k: payload[k] for k in ("type", "rule", "event_id") if k in payload}
    return {**kept, "erased": {"request_id": request_id}}


def insight_after_erasure(payload: Mapping[str, Any], erased: Collection[str], request_id: str
                          ) -> dict[str, Any] | None:
    """An insight delivery's payload after the erasure of ``erased`` feedback ids; None when it cites none.

    An ``urgent_item`` insight is about its one item (its title names the customer): blanked. Any other keeps
    its figures and loses the erased ids from its evidence, and a loop's insight from its customers' items."""
    data = payload.get("data")
    if not isinstance(data, Mapping):
        return None
    evidence = [str(e) for e in data.get("evidence") or []]
    loop = data.get("loop") if isinstance(data.get("loop"), Mapping) else None
    customers = [c for c in (loop or {}).get("customers") or [] if isinstance(c, Mapping)]
    items = {str(i) for c in customers for i in c.get("items") or []}
    if not any(e in erased for e in evidence) and not items & set(erased):
        return None
    if data.get("type") == "urgent_item":
        return blanked_payload(payload, request_id)
    changed: dict[str, Any] = {**data, "evidence": [e for e in evidence if e not in erased]}
    if loop is not None:
        changed["loop"] = {**loop, "customers": [
            {**c, "items": [i for i in c.get("items") or [] if str(i) not in erased]} for c in customers]}
    return {**payload, "data": changed}


def digest_without(payload: Mapping[str, Any], event_ids: Collection[str]) -> dict[str, Any] | None:
    """A filled digest's payload without the lines of the erased deliveries' events (its count stays: a number
    of held messages names no one); None when it lists none of them."""
    items = payload.get("items")
    if not isinstance(items, list):
        return None
    kept = [i for i in items if not (isinstance(i, Mapping) and i.get("event_id") in event_ids)]
    if len(kept) == len(items):
        return None
    return {**payload, "items": kept}
