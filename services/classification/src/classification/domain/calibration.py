"""Confidence one can act on: temperature scaling, expected calibration error, and the review decision.

* :func:`fit_temperature` — the temperature ``T`` that minimises the negative log-likelihood of ``softmax(z / T)``
  on held-out predictions (Guo et al. 2017): one number per head, so the class on top never changes, only how sure
  it claims to be. Found by golden-section search over ``log T`` in [1/20, 20].
* :func:`expected_calibration_error` — the gap between claimed confidence and accuracy, averaged over equal-width
  confidence bins weighted by their share of items (15 bins).
* :func:`review_reasons` — which labels of an item fall below their thresholds: an item with any is marked
  ``needs_review``.

Pure numpy; no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_REVIEW_THRESHOLDS", "expected_calibration_error", "fit_temperature", "review_reasons"]

#: Below these confidences a label is worth a person's look (tuned so that ~15-25 % of held-out items are flagged).
DEFAULT_REVIEW_THRESHOLDS: Mapping[str, float] = {"sentiment": 0.5, "kind": 0.5, "themes": 0.35}


def _nll(logits: npt.NDArray[np.float64], truth: npt.NDArray[np.int64], temperature: float) -> float:
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(scaled).sum(axis=1))
    return float((log_norm - scaled[np.arange(len(truth)), truth]).mean())


def fit_temperature(logits: npt.ArrayLike, truth: Sequence[int]) -> float:
    """The NLL-minimising temperature of ``logits`` (rows of class scores) for the true class indexes ``truth``.

    1.0 for no rows. ``ValueError`` when the shapes disagree.
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(truth, dtype=np.int64)
    if len(z) != len(y):
        raise ValueError(f"{len(z)} rows of logits but {len(y)} labels")
    if len(y) == 0:
        return 1.0
    low, high = math.log(1 / 20), math.log(20)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = _nll(z, y, math.exp(a)), _nll(z, y, math.exp(b))
    for _ in range(60):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = _nll(z, y, math.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = _nll(z, y, math.exp(b))
    return round(math.exp((low + high) / 2), 4)


def expected_calibration_error(confidence: npt.ArrayLike, correct: npt.ArrayLike, bins: int = 15) -> float:
    """ECE of top-label ``confidence`` (each in [0, 1]) against whether the label was ``correct``."""
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    if len(conf) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        chosen = index == b
        if chosen.any():
            total += chosen.mean() * abs(conf[chosen].mean() - hit[chosen].mean())
    return round(float(total), 4)


def review_reasons(confidences: Mapping[str, float | None],
                   thresholds: Mapping[str, float] = DEFAULT_REVIEW_THRESHOLDS) -> list[str]:
    """The labels (``sentiment``, ``kind``, ``themes``) whose confidence is below its threshold, in that order.

    A confidence of None (no such label, e.g. no theme at all) is never a reason.
    """
    return [name for name, threshold in thresholds.items()
            if (value := confidences.get(name)) is not None and value < threshold]
