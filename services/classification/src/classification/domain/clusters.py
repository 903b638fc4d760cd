"""Emerging themes: items that fit no theme, grouped incrementally by meaning, each group named by its terms.

Online "leader" clustering over unit sentence embeddings: an item joins the cluster whose centroid is most
similar when the cosine reaches :data:`JOIN_SIMILARITY`, else it starts a new cluster. A join moves the
centroid (running mean, re-normalized) and adds the item's terms to the cluster's term counts. A cluster's
most telling terms are ranked by TF-IDF over clusters: the share of the cluster's members that contain the
term, times ``log((1 + all clustered items) / (1 + clustered items containing it))`` — words every cluster
shares ("app", "please") sink, words this cluster is about rise.

Pure: :class:`ClusterIndex` holds the states in memory; the caller loads them from the store at start and
writes each changed state back in the same transaction as the item.
"""

from __future__ import annotations

import itertools
import math
import re
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from classification.domain.stopwords import ENGLISH_STOP_WORDS

__all__ = ["JOIN_SIMILARITY", "ClusterIndex", "ClusterState", "cluster_id_for", "text_terms"]

JOIN_SIMILARITY = 0.55
#: A cluster keeps the counts of at most this many terms (the most frequent), so a row stays small.
MAX_TERMS_KEPT = 300
TERMS_SHOWN = 5
_WORD = re.compile(r"[a-z][a-z0-9'\-]{2,}")
_STOP = frozenset(ENGLISH_STOP_WORDS) | {"app", "i'm", "it's", "don't", "can't", "just", "really", "like", "get",
                                         "got", "use", "using", "would", "could", "please", "thanks", "thank"}


def text_terms(text: str, limit: int = 2_000) -> set[str]:
    """The distinct terms of ``text``'s first ``limit`` characters: words (no stop words) and adjacent word pairs."""
    words = [w.strip("'-") for w in _WORD.findall(text[:limit].lower())]
    words = [w for w in words if len(w) >= 3 and w not in _STOP]
    return set(words) | {f"{a} {b}" for a, b in itertools.pairwise(words) if a != b}


def cluster_id_for(first_member: str) -> str:
    """A cluster's id, derived from its first member: the same history always yields the same ids."""
    return "c-" + uuid.uuid5(uuid.NAMESPACE_URL, f"feedbackloop/cluster/{first_member}").hex[:12]


@dataclass(frozen=True)
class ClusterState:
    id: str
    centroid: npt.NDArray[np.float32]
    size: int
    term_counts: dict[str, int]
    terms: tuple[str, ...] = ()


class ClusterIndex:
    """The clusters in memory: find the nearest, start or join one, and rank their terms."""

    def __init__(self, states: Iterable[ClusterState] = ()) -> None:
        self._states: dict[str, ClusterState] = {}
        self._df: Counter[str] = Counter()
        self._items = 0
        # The centroids stacked (row ``_rows[id]``; rows past ``len(self)`` unused), to find the nearest in one product.
        self._rows: dict[str, int] = {}
        self._order: list[str] = []
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        for state in states:
            self._put(state)

    def __len__(self) -> int:
        return len(self._states)

    def get(self, cluster_id: str) -> ClusterState | None:
        return self._states.get(cluster_id)

    def _put(self, state: ClusterState) -> None:
        old = self._states.get(state.id)
        if old is not None:
            self._df.subtract(old.term_counts)
            self._items -= old.size
        self._df.update(state.term_counts)
        self._items += state.size
        self._states[state.id] = state
        self._stack(state)

    def _stack(self, state: ClusterState) -> None:
        centroid = np.asarray(state.centroid, dtype=np.float32).reshape(-1)
        row = self._rows.get(state.id)
        if row is None:
            row = self._rows[state.id] = len(self._order)
            self._order.append(state.id)
        if row == 0 and len(self._order) == 1:
            self._matrix = np.zeros((64, len(centroid)), dtype=np.float32)
        if self._matrix.shape[1] != len(centroid):  # vectors of another width: scan one by one from now on
            self._matrix = np.zeros((0, 0), dtype=np.float32)
            return
        if row >= len(self._matrix):
            grown = np.zeros((2 * len(self._matrix), len(centroid)), dtype=np.float32)
            grown[:len(self._matrix)] = self._matrix
            self._matrix = grown
        self._matrix[row] = centroid

    def _nearest(self, unit: npt.NDArray[np.float32]) -> tuple[ClusterState | None, float]:
        """The cluster whose centroid is most similar to ``unit`` and that similarity (None, -1 when there is none).

        One matrix product finds the candidates; the few within a hair of the best are then compared one by one,
        in insertion order, by the same dot product as ever, so the choice does not depend on how the product
        rounds."""
        count = len(self._order)
        if count == 0:
            return None, -1.0
        if len(self._matrix) < count or len(unit) != self._matrix.shape[1]:
            return _scan(self._states.values(), unit)
        similarity = self._matrix[:count] @ unit
        near = np.flatnonzero(similarity >= float(similarity.max()) - 1e-4)
        return _scan((self._states[self._order[i]] for i in near), unit)

    def assign(self, item_id: str, vector: npt.NDArray[np.float32], text: str) -> ClusterState:
        """Put an item into its cluster (joined or new) and return that cluster's new state."""
        unit = _unit(vector)
        terms = text_terms(text)
        best, best_similarity = self._nearest(unit)
        if best is None or best_similarity < JOIN_SIMILARITY:
            state = ClusterState(cluster_id_for(item_id), unit, 1, {t: 1 for t in terms})
        else:
            counts = Counter(best.term_counts)
            counts.update(terms)
            kept = dict(counts.most_common(MAX_TERMS_KEPT))
            centroid = _unit(best.centroid * best.size + unit)
            state = ClusterState(best.id, centroid, best.size + 1, kept)
        self._put(state)
        state = replace(state, terms=self.telling_terms(state))
        self._states[state.id] = state
        return state

    def telling_terms(self, state: ClusterState, count: int = TERMS_SHOWN) -> tuple[str, ...]:
        """The cluster's most telling terms, best first (TF-IDF over clusters; see the module docstring)."""
        total = max(self._items, state.size)

        def score(term: str) -> tuple[float, int, str]:
            share = state.term_counts[term] / state.size
            idf = math.log((1 + total) / (1 + max(self._df.get(term, 0), state.term_counts[term])))
            return (share * (idf + 0.1), len(term.split()), term)

        ranked = sorted(state.term_counts, key=score, reverse=True)
        chosen: list[str] = []
        for term in ranked:
            if any(term in c.split(" ") or c in term.split(" ") for c in chosen):
                continue  # "apple pay" already says "apple"
            chosen.append(term)
            if len(chosen) == count:
                break
        return tuple(chosen)


def _scan(states: Iterable[ClusterState], unit: npt.NDArray[np.float32]) -> tuple[ClusterState | None, float]:
    """The first of ``states`` with the highest similarity to ``unit`` (in the order given), and that similarity."""
    best: ClusterState | None = None
    best_similarity = -1.0
    for state in states:
        similarity = float(state.centroid @ unit)
        if similarity > best_similarity:
            best, best_similarity = state, similarity
    return best, best_similarity


def _unit(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    row = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(row))
    out: npt.NDArray[np.float32] = row / norm if norm > 0 else row
    return out
