"""The learned heads and the theme matcher, on hand-made vectors: pure logic, no model."""

import numpy as np
import pytest

from classification.domain.heads import LinearHead, ThemeModel, fit_head, fit_softmax


def _unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_a_fitted_head_separates_its_classes_and_rows_sum_to_one() -> None:
    features = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    head = fit_head(features, ["a", "a", "b", "b"], c=10)
    proba = head.proba(np.array([[1, 0], [0, 1]], dtype=np.float32))
    assert np.allclose(proba.sum(axis=1), 1)
    assert head.classes[int(proba[0].argmax())] == "a" and head.classes[int(proba[1].argmax())] == "b"
    again = LinearHead.from_arrays(head.as_arrays("x"), "x")
    assert np.allclose(again.proba(features), head.proba(features))


def test_themes_score_near_prototypes_and_nothing_far_from_all() -> None:
    model = ThemeModel.build({"billing": np.stack([_unit(1, 0, 0)]), "login": np.stack([_unit(0, 1, 0)])})
    scores = model.scores(np.stack([_unit(1, 0.1, 0), _unit(0, 0, 1)]))
    assert scores[0, model.theme_ids.index("billing")] > 0.5
    assert scores[1].max() == 0  # orthogonal to every prototype: no theme, not a forced guess


def test_examples_move_a_theme_towards_texts_like_them() -> None:
    zero_shot = ThemeModel.build({"billing": np.stack([_unit(1, 0, 0)]), "login": np.stack([_unit(0, 1, 0)])})
    item = _unit(0.5, 0.45, 0.7)
    few_shot = ThemeModel.build({"billing": np.stack([_unit(1, 0, 0), _unit(0.5, 0.4, 0.75)]),
                                 "login": np.stack([_unit(0, 1, 0)])})
    before = zero_shot.scores(item[None])[0, 0]
    after = few_shot.scores(item[None])[0, few_shot.theme_ids.index("billing")]
    assert after > before


def test_the_numpy_fit_finds_scikit_learns_solution() -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 8))
    features = np.vstack([c + 0.8 * rng.normal(size=(25, 8)) for c in centres]).astype(np.float32)
    labels = [name for name in "abcd" for _ in range(25)]
    ours, theirs = fit_softmax(features, labels, c=1.0, iterations=3000), fit_head(features, labels, c=1.0,
                                                                                    class_weight=None)
    assert ours.classes == theirs.classes == ("a", "b", "c", "d")
    assert np.abs(ours.proba(features) - theirs.proba(features)).max() < 0.02
    with pytest.raises(ValueError):
        fit_softmax(features, ["a"] * len(features))


def test_weighted_rows_and_balanced_classes_move_the_boundary() -> None:
    features = np.array([[0.0], [0.2], [0.8], [1.0]], dtype=np.float32)
    plain = fit_head(features, ["n", "n", "p", "p"], c=100)
    heavy = fit_head(features, ["n", "n", "p", "p"], c=100, sample_weight=np.array([1.0, 1.0, 1.0, 0.01]),
                     class_weight=None)
    middle = np.array([[0.5]], dtype=np.float32)
    assert heavy.proba(middle)[0, 0] > plain.proba(middle)[0, 0]  # "p" weighs less: the middle leans to "n"
