"""Fit the kind and sentiment heads and write them to ``classification/models/heads.npz``.

    .venv/bin/python -m classification.training.fit [--datasets ../shared/datasets]

Deterministic for the same data and model. The heads are small (two 384+-wide weight matrices); they ship in
the package so a service never trains at start.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from classification.domain.heads import LinearHead, fit_head, kind_features, sentiment_features
from classification.domain.sentiment import score_sentiment
from classification.embedding import Encoder
from classification.training.data import Example, kind_examples, sentiment_examples

__all__ = ["HEADS_FILE", "KIND_C", "SENTIMENT_C", "featurize_kind", "featurize_sentiment", "fit_all",
           "fit_sentiment"]

from classification.models import HEADS_FILE

KIND_C = 2.0
#: Chosen by 5-fold CV on the written sentences (C in 0.3 / 1 / 3 / 10; URR weight 0 / 0.1 / 0.25 / 0.5; a bias on
#: the neutral class in -1 … 1: plain argmax was best). See ``evaluation.eval_sentiment``.
SENTIMENT_C = 3.0


def featurize_kind(encoder: Encoder, examples: Sequence[Example]) -> np.ndarray:
    texts = [e.text for e in examples]
    return kind_features(encoder.encode(texts), texts, [score_sentiment(t) for t in texts])


def featurize_sentiment(encoder: Encoder, examples: Sequence[Example]) -> np.ndarray:
    texts = [e.text for e in examples]
    return sentiment_features(encoder.encode(texts), [score_sentiment(t) for t in texts])


def fit_all(encoder: Encoder, datasets: Path) -> dict[str, LinearHead]:
    kinds = kind_examples(datasets)
    sentiments = sentiment_examples(datasets)
    return {
        "kind": fit_head(featurize_kind(encoder, kinds), [e.label for e in kinds], c=KIND_C),
        "sentiment": fit_sentiment(featurize_sentiment(encoder, sentiments), sentiments),
    }


def fit_sentiment(features: np.ndarray, examples: Sequence[Example]) -> LinearHead:
    """The sentiment head: weighted rows (``Example.weight``), classes balanced by total weight, C = SENTIMENT_C."""
    return fit_head(features, [e.label for e in examples], c=SENTIMENT_C,
                    sample_weight=np.array([e.weight for e in examples]))


def main() -> None:  # pragma: no cover - a developer's command
    from feedbackloop.testing import handed_data

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", type=Path, default=None)
    parser.add_argument("--model-dir", type=Path, default=Path("var/models"))
    args = parser.parse_args()
    datasets = args.datasets or handed_data("datasets")
    heads = fit_all(Encoder(args.model_dir), datasets)
    arrays: dict[str, np.ndarray] = {}
    for name, head in heads.items():
        arrays.update(head.as_arrays(name))
    HEADS_FILE.parent.mkdir(parents=True, exist_ok=True)
    np.savez(HEADS_FILE, **arrays)  # type: ignore[arg-type]
    print(f"wrote {HEADS_FILE}: " + ", ".join(f"{n} {h.classes}" for n, h in heads.items()))


if __name__ == "__main__":  # pragma: no cover
    main()
