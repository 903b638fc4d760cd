"""Temperature scaling, expected calibration error and the review decision (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from classification.domain.calibration import expected_calibration_error, fit_temperature, review_reasons
from classification.domain.heads import LinearHead


def test_overconfident_logits_get_a_temperature_above_one_and_calibrated_ones_stay_near_one() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 4000)
    true_logits = rng.normal(size=(4000, 3))
    true_logits[np.arange(4000), truth] += 1.0
    # Labels drawn from softmax(true_logits) are calibrated for T = 1; the same logits x 3 claim too much.
    proba = np.exp(true_logits) / np.exp(true_logits).sum(axis=1, keepdims=True)
    drawn = np.array([rng.choice(3, p=row) for row in proba])
    assert fit_temperature(true_logits, drawn) == pytest.approx(1.0, abs=0.15)
    assert fit_temperature(3 * true_logits, drawn) == pytest.approx(3.0, rel=0.15)


def test_temperature_scaling_lowers_the_ece_of_an_overconfident_head() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3000, 3)) * 4
    proba = np.exp(logits / 4) / np.exp(logits / 4).sum(axis=1, keepdims=True)
    truth = np.array([rng.choice(3, p=row) for row in proba])
    head = LinearHead(("a", "b", "c"), np.eye(3, dtype=np.float32), np.zeros(3, dtype=np.float32))
    raw = head.proba(logits.astype(np.float32))
    calibrated = head.with_temperature(fit_temperature(logits, truth)).proba(logits.astype(np.float32))
    hits_raw = raw.argmax(1) == truth
    assert (calibrated.argmax(1) == raw.argmax(1)).all()  # the label on top never changes
    assert expected_calibration_error(calibrated.max(1), hits_raw) < expected_calibration_error(raw.max(1), hits_raw)
    assert expected_calibration_error(calibrated.max(1), hits_raw) < 0.05


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_not() -> None:
    assert expected_calibration_error([0.75] * 4, [True, True, True, False]) == 0.0
    assert expected_calibration_error([0.99] * 4, [False] * 4) == pytest.approx(0.99)
    assert expected_calibration_error([], []) == 0.0


def test_review_reasons_name_the_unsure_labels_only() -> None:
    thresholds = {"sentiment": 0.5, "kind": 0.5, "themes": 0.35}
    assert review_reasons({"sentiment": 0.9, "kind": 0.9, "themes": 0.9}, thresholds) == []
    assert review_reasons({"sentiment": 0.4, "kind": 0.9, "themes": 0.2}, thresholds) == ["sentiment", "themes"]
    assert review_reasons({"sentiment": None, "kind": 0.3, "themes": None}, thresholds) == ["kind"]


def test_a_head_round_trips_its_temperature_through_arrays() -> None:
    head = LinearHead(("x", "y"), np.ones((2, 4), dtype=np.float32), np.zeros(2, dtype=np.float32), 1.7)
    again = LinearHead.from_arrays(head.as_arrays("h"), "h")
    assert again.temperature == pytest.approx(1.7)
    old = {k: v for k, v in head.as_arrays("h").items() if not k.endswith("temperature")}
    assert LinearHead.from_arrays(old, "h").temperature == 1.0
