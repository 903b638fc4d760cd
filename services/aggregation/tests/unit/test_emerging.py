from aggregation.domain.emerging import (
    MEMBER_THEMED_SHARE,
    TERMS_CHECKED,
    ClusterFacts,
    TermUse,
    judge_cluster,
    term_words,
    terms_to_check,
)

NAMES = {"onboarding": "Onboarding", "account.login": "Login & authentication", "billing.invoices":
         "Invoices & receipts", "performance": "Performance & reliability", "mobile": "Mobile app",
         "documentation": "Documentation & help"}
WORKSPACE = ("workspace took", "took long", "setting workspace")


def _cluster(terms: tuple[str, ...] = WORKSPACE, items: int = 8, themed: int = 0,
             themes: dict[str, int] | None = None) -> ClusterFacts:
    return ClusterFacts("c-1", terms, items, themed, themes or {})


def test_a_cluster_whose_terms_no_theme_knows_is_emerging() -> None:
    verdict = judge_cluster(_cluster(("dark mode", "dark", "night")), NAMES,
                            {"dark mode": TermUse(0), "dark": TermUse(2, {"ui": 1}), "night": TermUse(0)})
    assert verdict.emerging and verdict.duplicate_of is None


def test_the_seen_workspace_cluster_repeats_onboarding_through_its_items_vocabulary() -> None:
    # Items outside the cluster that say "setting up my workspace" were filed under Onboarding.
    use = {"setting workspace": TermUse(6, {"onboarding": 5}), "workspace took": TermUse(1, {"onboarding": 1}),
           "took long": TermUse(40, {"performance": 9, "onboarding": 4})}
    verdict = judge_cluster(_cluster(), NAMES, use)
    assert verdict.duplicate_of == "onboarding" and verdict.terms == ("setting workspace",)
    assert "Onboarding" in verdict.reason


def test_a_term_is_a_themes_word_only_with_enough_items_mostly_in_that_theme() -> None:
    too_few = {"setting workspace": TermUse(2, {"onboarding": 2})}
    spread = {"setting workspace": TermUse(10, {"onboarding": 4, "account.login": 3})}
    assert judge_cluster(_cluster(), NAMES, too_few).emerging
    assert judge_cluster(_cluster(), NAMES, spread).emerging
    assert judge_cluster(_cluster(), NAMES, {"setting workspace": TermUse(6, {"onboarding": 3})}).duplicate_of \
        == "onboarding", "3 of 6 is half: enough"


def test_a_term_that_is_a_themes_name_matches_it_with_light_stemming() -> None:
    assert judge_cluster(_cluster(("logins", "slow")), NAMES, {}).duplicate_of == "account.login"
    assert judge_cluster(_cluster(("invoice", "pdf")), NAMES, {}).duplicate_of == "billing.invoices"
    assert judge_cluster(_cluster(("onboarding",)), NAMES, {}).duplicate_of == "onboarding"
    # A pair matches only when both its words are the name's; stop words of names ("app", "help") never do.
    assert judge_cluster(_cluster(("slow login export",)), NAMES, {}).emerging
    assert judge_cluster(_cluster(("help", "app")), NAMES, {}).emerging


def test_most_items_carrying_a_theme_make_the_cluster_that_theme() -> None:
    half = _cluster(items=8, themed=4, themes={"onboarding": 3, "account.login": 1})
    assert MEMBER_THEMED_SHARE == 0.5
    verdict = judge_cluster(half, NAMES, {})
    assert verdict.duplicate_of == "onboarding" and "4 of its 8 items" in verdict.reason
    assert judge_cluster(_cluster(items=8, themed=3, themes={"onboarding": 3}), NAMES, {}).emerging


def test_the_theme_with_most_matching_terms_wins_then_the_better_ranked_term() -> None:
    use = {"workspace took": TermUse(5, {"performance": 5}), "took long": TermUse(5, {"onboarding": 5}),
           "setting workspace": TermUse(5, {"onboarding": 5})}
    assert judge_cluster(_cluster(), NAMES, use).duplicate_of == "onboarding"
    use["setting workspace"] = TermUse(0)
    assert judge_cluster(_cluster(), NAMES, use).duplicate_of == "performance", "tie: the first term's theme"


def test_only_the_first_terms_with_words_are_checked() -> None:
    terms = ("it's", "aa", "alpha", "beta", "gamma", "delta", "epsilon", "invoice")
    assert terms_to_check(terms) == ("alpha", "beta", "gamma", "delta", "epsilon")
    assert len(terms_to_check(terms)) == TERMS_CHECKED
    assert judge_cluster(_cluster(terms), NAMES, {}).emerging, "the 8th term is not read"
    assert term_words("Setting up my WORKSPACE") == ("setting", "workspace")
