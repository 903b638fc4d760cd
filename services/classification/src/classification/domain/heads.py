"""Small models over sentence embeddings: linear (softmax) heads for kind and sentiment, and the theme matcher.

Everything here is pure computation on vectors the caller hands in (see :mod:`classification.model.embedding` for where
they come from); nothing reads a file or a model.

* :class:`LinearHead` — a multinomial logistic regression (weights, bias, class names): ``proba(X)`` rows sum to 1.
  :func:`fit_head` trains one with scikit-learn (offline: the fit and evaluation commands only);
  :func:`fit_softmax` trains one with numpy alone (at run time: the theme model is refitted when the taxonomy or
  the corrections change, and a running service never imports scikit-learn).
* :func:`kind_features` / :func:`sentiment_features` — the embedding plus the rule layer's signals (phrase hits
  per kind, VADER's compound and strongest clauses), so a head learns when to trust the rules.
* :class:`ThemeModel` — themes from their name + description (zero-shot) and examples (few-shot). With prototypes
  for two or more themes it fits a logistic regression over all prototypes; a theme's confidence is its
  probability, damped when the text is far (cosine) from every prototype of the theme, so that text about
  nothing in the taxonomy gets no theme rather than a forced guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from classification.domain.kind import RULES as KIND_RULES
from classification.domain.kind import phrase_hits
from classification.domain.sentiment import SentimentResult

__all__ = ["KIND_FEATURE_KINDS", "LinearHead", "ThemeModel", "fit_head", "fit_softmax", "kind_features",
           "sentiment_features"]

Matrix = npt.NDArray[np.float32]
KIND_FEATURE_KINDS = tuple(KIND_RULES)
#: Below this cosine to its nearest prototype a theme's probability is damped towards 0 ("fits no theme").
SIMILARITY_FLOOR = 0.15
SIMILARITY_FULL = 0.40


@dataclass(frozen=True)
class LinearHead:
    """Softmax regression: ``proba(X) = softmax((X @ weights.T + bias) / temperature)``; ``classes[i]`` is column
    ``i``. ``temperature`` (1 = as fitted) is set by calibration on held-out domains, so that the top probability
    is a confidence one can act on; it never changes which class is on top."""

    classes: tuple[str, ...]
    weights: Matrix
    bias: Matrix
    temperature: float = 1.0

    def logits(self, features: Matrix) -> Matrix:
        logits: Matrix = (features @ self.weights.T + self.bias).astype(np.float32)
        if len(self.classes) == 2 and logits.shape[1] == 1:  # scikit-learn's binary form
            logits = np.hstack([-logits / 2, logits / 2])
        return logits

    def proba(self, features: Matrix) -> Matrix:
        return softmax(self.logits(features) / self.temperature)

    def with_temperature(self, temperature: float) -> LinearHead:
        return LinearHead(self.classes, self.weights, self.bias, float(temperature))

    def as_arrays(self, prefix: str) -> dict[str, npt.NDArray[np.generic]]:
        return {f"{prefix}.classes": np.array(self.classes), f"{prefix}.weights": self.weights,
                f"{prefix}.bias": self.bias, f"{prefix}.temperature": np.array(self.temperature, dtype=np.float32)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, npt.NDArray[np.generic]], prefix: str) -> LinearHead:
        temperature = float(arrays[f"{prefix}.temperature"]) if f"{prefix}.temperature" in arrays else 1.0
        return cls(tuple(str(c) for c in arrays[f"{prefix}.classes"]),
                   np.asarray(arrays[f"{prefix}.weights"], dtype=np.float32),
                   np.asarray(arrays[f"{prefix}.bias"], dtype=np.float32), temperature)


def softmax(logits: Matrix) -> Matrix:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    out: Matrix = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
    return out


def fit_head(features: Matrix, labels: Sequence[str], *, c: float = 1.0,
             class_weight: str | None = "balanced",
             sample_weight: npt.NDArray[np.float64] | None = None) -> LinearHead:
    """Fit a multinomial logistic regression with scikit-learn (a training-time tool: imports it).

    ``sample_weight`` weighs rows; with ``class_weight="balanced"`` the weights are then re-scaled so that every
    class carries the same total weight. At least two distinct labels are required (``ValueError``).
    """
    from sklearn.linear_model import LogisticRegression

    if len(set(labels)) < 2:
        raise ValueError("a head needs at least two classes")
    model = LogisticRegression(C=c, max_iter=3000, class_weight=None if sample_weight is not None else class_weight)
    weights = None
    if sample_weight is not None:
        weights = np.asarray(sample_weight, dtype=np.float64)
        if class_weight == "balanced":
            names = np.asarray(labels)
            totals = {label: float(weights[names == label].sum()) for label in set(labels)}
            scale = np.array([sum(totals.values()) / (len(totals) * totals[label]) for label in labels])
            weights = weights * scale
    model.fit(features, list(labels), sample_weight=weights)
    return LinearHead(tuple(str(c) for c in model.classes_), model.coef_.astype(np.float32),
                      model.intercept_.astype(np.float32))


def fit_softmax(features: Matrix, labels: Sequence[str], *, c: float = 1.0, iterations: int = 400,
                tolerance: float = 1e-5) -> LinearHead:
    """Multinomial logistic regression in numpy: minimizes ``c · Σ cross-entropy + ½‖W‖²`` (bias not penalized),
    scikit-learn's objective, by Nesterov-accelerated gradient descent with adaptive restart.

    Deterministic; stops after ``iterations`` steps or when the gradient's largest entry falls below
    ``tolerance`` (relative to ``c`` · rows). At least two distinct labels are required (``ValueError``).
    """
    classes = tuple(sorted(set(labels)))
    if len(classes) < 2:
        raise ValueError("a head needs at least two classes")
    x = np.asarray(features, dtype=np.float32)
    index = {name: n for n, name in enumerate(classes)}
    onehot = np.zeros((len(x), len(classes)), dtype=np.float32)
    onehot[np.arange(len(x)), [index[label] for label in labels]] = 1.0
    # Lipschitz constant of the gradient: c · ‖[X 1]‖₂² / 2 (the softmax Hessian is bounded by ½) + 1.
    augmented = np.hstack([x, np.ones((len(x), 1), dtype=np.float32)])
    step = 1.0 / (c * float(np.linalg.norm(augmented, 2)) ** 2 / 2 + 1.0)
    theta = np.zeros((augmented.shape[1], len(classes)), dtype=np.float32)
    previous, momentum = theta, 1.0
    penalty = np.ones((augmented.shape[1], 1), dtype=np.float32)
    penalty[-1] = 0.0

    def objective_and_gradient(t: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        logits = augmented @ t
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        total = exp.sum(axis=1, keepdims=True)
        loss = float(c * -(onehot * (logits - np.log(total))).sum() + 0.5 * ((t * penalty) ** 2).sum())
        return loss, c * augmented.T @ (exp / total - onehot) + t * penalty

    last = float("inf")
    for _ in range(iterations):
        ahead = theta + ((momentum - 1) / (momentum + 2)) * (theta - previous) if momentum > 1 else theta
        loss, gradient = objective_and_gradient(ahead)
        if loss > last:  # adaptive restart: drop the momentum when the objective goes up
            momentum, ahead = 1.0, theta
            loss, gradient = objective_and_gradient(ahead)
        previous, theta = theta, ahead - step * gradient
        momentum += 1
        last = loss
        if np.abs(gradient).max() < tolerance * c * len(x):
            break
    return LinearHead(classes, theta[:-1].T.astype(np.float32).copy(), theta[-1].astype(np.float32).copy())


def kind_features(vectors: Matrix, texts: Sequence[str], sentiments: Sequence[SentimentResult]) -> Matrix:
    """Embedding + per-kind phrase-hit counts (capped at 3, scaled to [0, 1]) + VADER compound / clauses."""
    extra = np.zeros((len(texts), len(KIND_FEATURE_KINDS) + 3), dtype=np.float32)
    for row, (text, sentiment) in enumerate(zip(texts, sentiments, strict=True)):
        for col, kind in enumerate(KIND_FEATURE_KINDS):
            extra[row, col] = min(3, len(phrase_hits(kind, text))) / 3
        extra[row, -3:] = (sentiment.score, sentiment.strongest_positive, sentiment.strongest_negative)
    return np.hstack([vectors, 2.0 * extra]).astype(np.float32)


def sentiment_features(vectors: Matrix, sentiments: Sequence[SentimentResult]) -> Matrix:
    """Embedding + VADER's compound, its strongest positive / negative and its last clause, and its shares of
    positive, negative and neutral words (the lexicon carries across domains where the embedding alone does not:
    see the README's evaluation)."""
    extra = np.array([(s.score, s.strongest_positive, s.strongest_negative, s.last_clause, s.positive, s.negative,
                       s.neutral) for s in sentiments], dtype=np.float32).reshape(len(sentiments), 7)
    return np.hstack([vectors, 2.0 * extra]).astype(np.float32)


@dataclass(frozen=True)
class ThemeModel:
    """Scores texts against themes from prototype vectors (see the module docstring)."""

    theme_ids: tuple[str, ...]
    prototypes: Matrix                  # all prototype vectors, stacked
    owners: npt.NDArray[np.int64]       # theme index of each prototype row
    head: LinearHead | None

    @classmethod
    def build(cls, prototypes: Mapping[str, Matrix], *, c: float = 10.0) -> ThemeModel:
        """``prototypes``: theme id → its prototype vectors (name + description first, then examples).

        The logistic regression's temperature is calibrated by two-fold cross-validation over the examples (each
        half predicted by a model fitted on the other half and every theme's name), when every theme has at least
        two examples: a theme's confidence then means what it says, so the taxonomy's ``match_threshold`` keeps
        the right share of items whatever the number of themes.
        """
        ids = tuple(theme_id for theme_id, rows in prototypes.items() if len(rows))
        if not ids:
            return cls((), np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64), None)
        stacked = np.vstack([prototypes[i] for i in ids]).astype(np.float32)
        owners = np.concatenate([np.full(len(prototypes[i]), n, dtype=np.int64) for n, i in enumerate(ids)])
        head = fit_softmax(stacked, [ids[o] for o in owners], c=c) if len(ids) >= 2 else None
        if head is not None and all(len(prototypes[i]) >= 3 for i in ids):
            head = head.with_temperature(_cross_fitted_temperature(stacked, owners, ids, c))
        return cls(ids, stacked, owners, head)

    def scores(self, vectors: Matrix) -> Matrix:
        """Confidence in [0, 1] of each theme (columns in ``theme_ids`` order) for each vector (rows)."""
        if not self.theme_ids or len(vectors) == 0:
            return np.zeros((len(vectors), len(self.theme_ids)), dtype=np.float32)
        similarity = vectors @ self.prototypes.T
        nearest = np.full((len(vectors), len(self.theme_ids)), -1.0, dtype=np.float32)
        for theme in range(len(self.theme_ids)):
            nearest[:, theme] = similarity[:, self.owners == theme].max(axis=1)
        gate = np.clip((nearest - SIMILARITY_FLOOR) / (SIMILARITY_FULL - SIMILARITY_FLOOR), 0.0, 1.0)
        if self.head is None:
            gated: Matrix = gate.astype(np.float32)
            return gated
        proba = self.head.proba(vectors)
        order = [self.head.classes.index(t) for t in self.theme_ids]
        scores: Matrix = (proba[:, order] * gate).astype(np.float32)
        return scores


def _cross_fitted_temperature(stacked: Matrix, owners: npt.NDArray[np.int64], ids: tuple[str, ...], c: float) -> float:
    """Temperature from two folds of each theme's examples (its first prototype, the name, stays in training)."""
    from classification.domain.calibration import fit_temperature

    first = np.zeros(len(owners), dtype=bool)
    first[np.unique(owners, return_index=True)[1]] = True
    position = np.zeros(len(owners), dtype=np.int64)
    for theme in range(len(ids)):
        rows = np.flatnonzero(owners == theme)
        position[rows] = np.arange(len(rows))
    logits, truth = [], []
    for fold in (0, 1):
        test = ~first & (position % 2 == fold)
        train = ~test
        head = fit_softmax(stacked[train], [ids[o] for o in owners[train]], c=c)
        z = head.logits(stacked[test])
        order = [head.classes.index(t) for t in ids]
        logits.append(z[:, order])
        truth += owners[test].tolist()
    return fit_temperature(np.vstack(logits), truth)
