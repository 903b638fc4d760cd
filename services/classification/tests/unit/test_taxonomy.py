from pathlib import Path

import pytest

from classification.config import DEFAULT_TAXONOMY_FILE
from classification.domain.taxonomy import TaxonomyError, parse_taxonomy, taxonomy_from_yaml
from classification.model.classifier import load_taxonomy


def doc(*themes: dict[str, object], **top: object) -> dict[str, object]:
    return {"version": "t1", "themes": list(themes), **top}


def problems_of(document: object) -> str:
    with pytest.raises(TaxonomyError) as caught:
        parse_taxonomy(document)
    return str(caught.value)


def test_the_shipped_taxonomy_is_valid_and_covers_a_saas_product() -> None:
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY_FILE)
    ids = {t.id for t in taxonomy.themes}
    assert {"onboarding", "billing", "performance", "account.login", "integrations", "mobile", "data",
            "notifications", "pricing", "ui", "checkout"} <= ids
    assert taxonomy.version
    assert all(t.name and t.description for t in taxonomy.themes)


def test_duplicate_ids_are_named() -> None:
    message = problems_of(doc({"id": "billing", "name": "Billing"}, {"id": "billing", "name": "Billing again"}))
    assert "theme 'billing': duplicate id" in message


def test_cycles_are_named() -> None:
    message = problems_of(doc({"id": "a", "name": "A", "parent": "c"}, {"id": "b", "name": "B", "parent": "a"},
                              {"id": "c", "name": "C", "parent": "b"}, {"id": "root", "name": "Root"}))
    assert "parent cycle:" in message and all(x in message for x in ("a", "b", "c"))
    assert "own parent" in problems_of(doc({"id": "a", "name": "A", "parent": "a"}))


def test_a_theme_without_a_name_is_named() -> None:
    assert "theme 'billing' has no name" in problems_of(doc({"id": "billing", "name": "  "}))


def test_other_problems_are_all_reported_at_once() -> None:
    with pytest.raises(TaxonomyError) as caught:
        parse_taxonomy({"themes": [{"id": "Bad Id", "name": "x"}, {"name": "no id"},
                                   {"id": "child", "name": "Child", "parent": "ghost"},
                                   {"id": "kw", "name": "Kw", "keywords": "not a list"}],
                        "match_threshold": 2})
    problems = caught.value.problems
    assert any("version" in p for p in problems)
    assert any("match_threshold" in p for p in problems)
    assert any("Bad Id" in p and "lower-case" in p for p in problems)
    assert any("themes[1] has no id" in p for p in problems)
    assert any("parent 'ghost' does not exist" in p for p in problems)
    assert any("keywords must be a list" in p for p in problems)


@pytest.mark.parametrize("text", ["", "just a string", "themes: [", "version: x\nthemes: []"])
def test_unusable_documents_are_errors(text: str) -> None:
    with pytest.raises(TaxonomyError):
        taxonomy_from_yaml(text)


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.yaml"
    path.write_text("version: x\nthemes:\n  - id: a\n")
    with pytest.raises(TaxonomyError, match=r"taxonomy\.yaml: theme 'a' has no name"):
        load_taxonomy(path)


TREE = doc(
    {"id": "billing", "name": "Billing", "keywords": ["billing", "invoice*"]},
    {"id": "billing.refunds", "name": "Refunds", "parent": "billing", "keywords": ["refund*", "charged twice"]},
    {"id": "onboarding", "name": "Onboarding"},
    {"id": "performance", "name": "Performance", "keywords": ["slow", "takes forever", "lag*"]},
)


def test_keywords_match_at_word_boundaries_with_a_confidence() -> None:
    taxonomy = parse_taxonomy(TREE)
    [match] = taxonomy.match("I was charged twice and want my refunds")
    assert match.theme.id == "billing.refunds" and match.confidence == pytest.approx(1 - 2.718281828 ** -1.7, 1e-3)
    assert taxonomy.root_of("billing.refunds").id == "billing"
    assert [m.theme.id for m in taxonomy.match("Our INVOICES are wrong")] == ["billing"]  # prefix keyword, any case
    assert taxonomy.match("the slowest") == []  # "slow" is a whole word; no prefix star
    assert [m.theme.id for m in taxonomy.match("The onboarding was confusing")] == ["onboarding"]  # name as keyword


def test_more_keywords_mean_more_confidence_and_nothing_below_threshold_is_kept() -> None:
    taxonomy = parse_taxonomy(TREE)
    [one] = taxonomy.match("it is slow")
    [three] = taxonomy.match("it is slow, it lags and takes forever")
    assert three.confidence > one.confidence
    strict = parse_taxonomy({**TREE, "match_threshold": 0.6})
    assert strict.match("it is slow") == []
    assert [m.theme.id for m in strict.match("it is slow and lagging")] == ["performance"]


def test_max_themes_keeps_the_best() -> None:
    taxonomy = parse_taxonomy({**TREE, "max_themes": 1})
    [best] = taxonomy.match("slow, laggy and takes forever; also one invoice")
    assert best.theme.id == "performance"


def test_tree_nests_children_under_parents() -> None:
    tree = parse_taxonomy(TREE).tree()
    assert [n["id"] for n in tree] == ["billing", "onboarding", "performance"]
    assert [c["id"] for c in tree[0]["children"]] == ["billing.refunds"]
