"""What an erasure changes in aggregation's derived data: pure decisions."""

from __future__ import annotations

import uuid

from aggregation.domain.erasure import (
    erased_customer_label,
    pruned_evidence,
    pruned_link_items,
    renamed_theme_customer_key,
)
from aggregation.domain.rollups import THEME_CUSTOMER_SEP as SEP


def test_the_label_names_the_request_not_the_account() -> None:
    request_id = uuid.uuid4()
    assert erased_customer_label(request_id) == f"erased:{request_id}"


def test_only_the_erased_customers_theme_keys_are_renamed() -> None:
    assert renamed_theme_customer_key(f"login{SEP}acme", "acme", "erased:1") == f"login{SEP}erased:1"
    assert renamed_theme_customer_key(f"login{SEP}notacme", "acme", "erased:1") is None
    assert renamed_theme_customer_key(f"acme{SEP}globex", "acme", "erased:1") is None
    assert renamed_theme_customer_key("acme", "acme", "erased:1") is None, "not a theme_customer key"


def test_evidence_loses_the_erased_items_and_keeps_the_figures() -> None:
    data = {"evidence": ["a", "b", "c"], "metrics": {"observed": 3}}
    assert pruned_evidence(data, {"b"}) == {"evidence": ["a", "c"], "metrics": {"observed": 3}}
    assert pruned_evidence(data, {"z"}) is None, "nothing to change"
    assert pruned_evidence({"title": "t"}, {"b"}) is None


def test_a_closed_loop_forgets_an_erased_customer_and_an_erased_item() -> None:
    loop = {"link_id": "l", "customers": [
        {"id": "acme", "owner": "ana@csm.example", "items": ["a1", "a2"], "conversations": [{"source": "zendesk",
                                                                                               "id": "7"}]},
        {"id": "globex", "owner": "bo@csm.example", "items": ["g1"], "conversations": []}]}
    data = {"evidence": ["a1", "a2", "g1"], "loop": loop}
    pruned = pruned_evidence(data, {"g1", "a2"})
    assert pruned is not None
    assert pruned["evidence"] == ["a1"]
    assert pruned["loop"]["customers"] == [{**loop["customers"][0], "items": ["a1"]}]  # globex gone, owner too
    assert pruned_evidence(data, {"zz"}) is None


def test_an_item_set_link_loses_its_erased_items() -> None:
    assert pruned_link_items(["a", "b"], {"b"}) == ["a"]
    assert pruned_link_items(["a"], {"b"}) is None
    assert pruned_link_items(None, {"b"}) is None
