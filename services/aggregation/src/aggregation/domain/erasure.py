"""What an erasure request (``privacy.v1``) changes in aggregation's derived data. Pure: no I/O.

The items themselves are deleted. What they added to the counters stays, as anonymous aggregates: a count of
items per hour and theme names no one. Where a counter is keyed by the customer's id (the ``customer`` and
``theme_customer`` rollups, the theme/customer presence), the id is replaced by a label that names the request,
not the account, so the figures still add up.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from aggregation.domain.rollups import THEME_CUSTOMER_SEP

__all__ = ["erased_customer_label", "pruned_evidence", "pruned_link_items", "renamed_theme_customer_key"]


def erased_customer_label(request_id: uuid.UUID) -> str:
    """What replaces an erased customer's id in counters: names the request, not the account."""
    return f"erased:{request_id}"


def renamed_theme_customer_key(key: str, customer_id: str, label: str) -> str | None:
    """A ``theme_customer`` rollup key (``theme<SEP>customer``) with the customer replaced; None when the key is
    another customer's."""
    theme, sep, customer = key.rpartition(THEME_CUSTOMER_SEP)
    if not sep or customer != customer_id:
        return None
    return f"{theme}{THEME_CUSTOMER_SEP}{label}"


def pruned_evidence(data: dict[str, Any], erased: Collection[str]) -> dict[str, Any] | None:
    """An insight's ``insights.v1`` data without the erased items in its ``evidence`` and, for a loop insight, in
    its ``loop.customers`` (a customer left with no item is dropped, with its owner and conversations); None when it
    cites none of them (nothing to change). The metrics (counts) stay."""
    evidence = [str(e) for e in data.get("evidence") or []]
    kept = [e for e in evidence if e not in erased]
    loop = data.get("loop")
    customers = loop.get("customers") if isinstance(loop, dict) else None
    pruned_customers = _pruned_customers(customers, erased) if isinstance(customers, list) else None
    if len(kept) == len(evidence) and pruned_customers is None:
        return None
    changed = {**data, "evidence": kept}
    if pruned_customers is not None and isinstance(loop, dict):
        changed["loop"] = {**loop, "customers": pruned_customers}
    return changed


def _pruned_customers(customers: list[Any], erased: Collection[str]) -> list[Any] | None:
    """A loop's customers without the erased items, a customer left with none dropped; None when none changed."""
    pruned: list[Any] = []
    changed = False
    for customer in customers:
        items = [str(i) for i in (customer.get("items") or [])] if isinstance(customer, dict) else []
        left = [i for i in items if i not in erased]
        if len(left) == len(items):  # none of theirs erased
            pruned.append(customer)
        else:
            changed = True
            if left:
                pruned.append({**customer, "items": left})
    return pruned if changed else None


def pruned_link_items(feedback_ids: list[str] | None, erased: Collection[str]) -> list[str] | None:
    """An ``items`` link's items without the erased ones; None when none of them is erased."""
    if not feedback_ids:
        return None
    kept = [f for f in feedback_ids if f not in erased]
    return kept if len(kept) != len(feedback_ids) else None
