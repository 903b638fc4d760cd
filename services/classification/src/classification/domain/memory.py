"""What the team taught the classifier: human corrections as labelled examples, recalled by similarity.

A correction says "this text is a ``bug``" or "this text is ``negative``". :class:`ExampleMemory` keeps each
corrected text's embedding with the labels the person set; :meth:`ExampleMemory.recall` finds the nearest
corrected example for a new text and, when it is at least :data:`RECALL_SIMILARITY` alike (cosine), hands back
its labels — the new text gets the team's label instead of the model's, with the similarity as the confidence.
Texts less alike still learn from the team: :meth:`ExampleMemory.blend` mixes the head's probabilities with a
vote of the corrected examples at least :data:`VOTE_SIMILARITY` alike (each weighing more the closer it is), so
fifty corrections move the labels of the texts around them, not only of their near-duplicates.
(Themes learn differently: a corrected text becomes an extra prototype of its theme(s) in the theme matcher,
see ``classifier.build_theme_model``.)

Pure: vectors in, labels out. An empty memory recalls nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["RECALL_SIMILARITY", "VOTE_SIMILARITY", "ExampleMemory", "LearnedExample", "Recall"]

#: A new text takes a corrected example's label only when at least this alike (cosine of unit embeddings).
RECALL_SIMILARITY = 0.80
#: Corrected examples at least this alike vote on a new text's label (see :meth:`ExampleMemory.blend`).
VOTE_SIMILARITY = 0.55
VOTE_NEIGHBOURS = 7


@dataclass(frozen=True, slots=True)
class LearnedExample:
    """One human correction as an example: the text read, and the labels the person set (None = not set)."""

    text: str
    kind: str | None = None
    sentiment: str | None = None
    themes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Recall:
    label: str
    similarity: float


@dataclass(frozen=True)
class ExampleMemory:
    """Corrected examples' unit vectors (rows) with their kind / sentiment labels (None where not set)."""

    vectors: npt.NDArray[np.float32]
    kinds: tuple[str | None, ...]
    sentiments: tuple[str | None, ...]

    @classmethod
    def build(cls, examples: Sequence[LearnedExample], vectors: npt.NDArray[np.float32]) -> ExampleMemory:
        """``vectors[i]`` is the embedding of ``examples[i].text``; examples with no kind or sentiment are left out."""
        keep = [i for i, e in enumerate(examples) if e.kind is not None or e.sentiment is not None]
        if not keep:
            return cls.empty()
        return cls(np.asarray(vectors[keep], dtype=np.float32), tuple(examples[i].kind for i in keep),
                   tuple(examples[i].sentiment for i in keep))

    @classmethod
    def empty(cls) -> ExampleMemory:
        return cls(np.zeros((0, 0), dtype=np.float32), (), ())

    def __len__(self) -> int:
        return len(self.kinds)

    def recall(self, vector: npt.NDArray[np.float32], field: str) -> Recall | None:
        """The ``field`` (``kind`` or ``sentiment``) label of the most similar example that has one, if alike enough."""
        labels = self.kinds if field == "kind" else self.sentiments
        if not labels or vector.size != self.vectors.shape[1]:
            return None
        similarity = self.vectors @ vector.reshape(-1).astype(np.float32)
        best, best_label = -1.0, None
        for index in np.argsort(-similarity):
            if labels[int(index)] is not None:
                best, best_label = float(similarity[int(index)]), labels[int(index)]
                break
        if best_label is None or best < RECALL_SIMILARITY:
            return None
        return Recall(best_label, round(min(1.0, best), 3))

    def blend(self, proba: dict[str, float], vector: npt.NDArray[np.float32], field: str) -> dict[str, float]:
        """``proba`` (label → probability) mixed with the vote of the nearest corrected examples.

        Each of the :data:`VOTE_NEIGHBOURS` nearest examples with a ``field`` label and a cosine ``s`` of at least
        :data:`VOTE_SIMILARITY` votes for its label with weight ``w = ((s - floor) / (1 - floor))²``; the result is
        ``(proba + Σ w · onehot) / (1 + Σ w)``: one very close correction outweighs the head, a few distant ones
        nudge it. Labels the head does not know are ignored. No votes: ``proba`` unchanged.
        """
        labels = self.kinds if field == "kind" else self.sentiments
        if not labels or vector.size != self.vectors.shape[1]:
            return proba
        similarity = self.vectors @ vector.reshape(-1).astype(np.float32)
        votes: dict[str, float] = {}
        for index in np.argsort(-similarity)[:VOTE_NEIGHBOURS * 3]:
            label, s = labels[int(index)], float(similarity[int(index)])
            if s < VOTE_SIMILARITY:
                break
            if label is None or label not in proba:
                continue
            votes[label] = votes.get(label, 0.0) + ((s - VOTE_SIMILARITY) / (1 - VOTE_SIMILARITY)) ** 2
            if len(votes) >= VOTE_NEIGHBOURS:
                break
        total = sum(votes.values())
        if total == 0:
            return proba
        return {label: (p + votes.get(label, 0.0)) / (1 + total) for label, p in proba.items()}
