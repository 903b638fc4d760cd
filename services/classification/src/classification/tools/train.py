"""``make train``: fit the kind and sentiment heads on every labelled domain, calibrate them, write ``heads.npz``.

    feedbackloop train [--model-dir var/models]

Deterministic for the same data and encoder. Steps:

1. Embed every example with the encoder the service loads (``CLASSIFICATION_MODEL_DIR``; the packaged or fine-tuned
   MiniLM, int8).
2. **Sentiment** head — softmax regression over the embedding and VADER's signals, on the rated tweets, movie and
   editorial sentences, the star-labelled app reviews (weight 0.25) and the written sentences; classes balanced.
3. **Kind** head — the same over the embedding, the kind rules' phrase hits and VADER, on the Firefox forum
   sentences, the written texts and the weak labels (see :mod:`classification.tools.datasets`).
4. **Calibration** — each head's temperature is fitted on *out-of-domain* predictions: for every domain, a head
   fitted without it predicts it; the pooled predictions set the temperature (:func:`fit_temperature`). So the
   shipped confidence is tuned to text of a kind the head did not see, as a customer's will be.

The heads are a few hundred kilobytes; they ship in the package (``classification/models/heads.npz``), so a
service never trains at start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from classification.domain.calibration import fit_temperature
from classification.domain.heads import LinearHead, fit_head, kind_features, sentiment_features
from classification.domain.sentiment import score_sentiment
from classification.model import HEADS_FILE
from classification.model.embedding import PARALLEL_RUNS, Encoder
from classification.tools import datasets as data
from classification.tools.datasets import Example

__all__ = ["KIND_C", "SENTIMENT_C", "Featurized", "featurize_kind", "featurize_sentiment", "fit_calibrated",
           "fit_kind", "fit_sentiment", "out_of_domain_logits", "train"]

#: Chosen by leave-one-domain-out on forum/firefox and written (C in 0.3 / 1; balanced or not classes).
KIND_C = 0.3
SENTIMENT_C = 1.0

Matrix = npt.NDArray[np.float32]


class Featurized:
    """Examples with their feature rows, so that folds and domains slice both alike."""

    def __init__(self, examples: Sequence[Example], features: Matrix) -> None:
        self.examples = list(examples)
        self.features = features

    def where(self, keep: Sequence[bool]) -> Featurized:
        mask = np.asarray(keep, dtype=bool)
        return Featurized([e for e, k in zip(self.examples, keep, strict=True) if k], self.features[mask])

    @property
    def labels(self) -> list[str]:
        return [e.label for e in self.examples]

    @property
    def weights(self) -> npt.NDArray[np.float64]:
        return np.array([e.weight for e in self.examples], dtype=np.float64)


def featurize_sentiment(encoder: Encoder, examples: Sequence[Example]) -> Featurized:
    texts = [e.text for e in examples]
    return Featurized(examples, sentiment_features(encoder.encode(texts), [score_sentiment(t) for t in texts]))


def featurize_kind(encoder: Encoder, examples: Sequence[Example]) -> Featurized:
    texts = [e.text for e in examples]
    return Featurized(examples, kind_features(encoder.encode(texts), texts, [score_sentiment(t) for t in texts]))


def fit_sentiment(rows: Featurized) -> LinearHead:
    return fit_head(rows.features, rows.labels, c=SENTIMENT_C, sample_weight=rows.weights)


def fit_kind(rows: Featurized) -> LinearHead:
    return fit_head(rows.features, rows.labels, c=KIND_C, sample_weight=rows.weights)


Fit = Callable[["Featurized"], LinearHead]


def out_of_domain_logits(rows: Featurized, fit: Fit, domains: Sequence[str],
                         ) -> tuple[Matrix, list[str], tuple[str, ...]]:
    """For each domain of ``domains``: fit without it, predict it. Returns the pooled logits (columns in the
    classes of a head fitted on everything), the true labels, and those classes."""
    classes = tuple(sorted(set(rows.labels)))
    logits, truth = [], []
    for domain in domains:
        held = [e.domain == domain for e in rows.examples]
        if not any(held):
            continue
        head = fit(rows.where([not h for h in held]))
        test = rows.where(held)
        z = head.logits(test.features)
        full = np.full((len(test.examples), len(classes)), -30.0, dtype=np.float32)
        for column, name in enumerate(head.classes):
            full[:, classes.index(name)] = z[:, column]
        logits.append(full)
        truth += test.labels
    return np.vstack(logits), truth, classes


def fit_calibrated(rows: Featurized, fit: Fit, domains: Sequence[str]) -> LinearHead:
    """A head fitted on every row, with the temperature its out-of-domain predictions call for."""
    logits, truth, classes = out_of_domain_logits(rows, fit, domains)
    temperature = fit_temperature(logits, [classes.index(t) for t in truth])
    return fit(rows).with_temperature(temperature)


def train(root: Path, *, model_dir: Path = Path("var/models"), out: Path = HEADS_FILE) -> Path:
    """Fit and calibrate both heads on the datasets under ``root`` with the encoder in ``model_dir``; write ``out``."""
    encoder = Encoder(model_dir, threads=PARALLEL_RUNS)
    sentiment_rows = featurize_sentiment(encoder, data.sentiment_examples(root))
    kind_rows = featurize_kind(encoder, data.kind_examples(root))
    heads = {"sentiment": fit_calibrated(sentiment_rows, fit_sentiment, data.SENTIMENT_DOMAINS),
             "kind": fit_calibrated(kind_rows, fit_kind, data.KIND_DOMAINS)}
    arrays: dict[str, npt.NDArray[np.generic]] = {"encoder": np.array(encoder.name)}
    for name, head in heads.items():
        arrays.update(head.as_arrays(name))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)  # type: ignore[arg-type]
    for name, head in heads.items():
        print(f"{name}: classes {', '.join(head.classes)}; temperature {head.temperature:.3f}")
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB) for encoder {encoder.name}")
    return out
