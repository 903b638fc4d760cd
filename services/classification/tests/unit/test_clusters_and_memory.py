"""Emerging-theme clusters and the example memory: pure vector logic."""

from __future__ import annotations

import numpy as np

from classification.domain.clusters import ClusterIndex, text_terms
from classification.domain.memory import ExampleMemory, LearnedExample


def _unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_similar_items_share_a_growing_cluster_named_by_its_telling_terms() -> None:
    index = ClusterIndex()
    first = index.assign("a", _unit(1, 0, 0), "Podcast recommendations are all true crime")
    second = index.assign("b", _unit(0.95, 0.1, 0), "More true crime podcast recommendations, please stop")
    other = index.assign("c", _unit(0, 0, 1), "Dark mode for the calendar would be nice")
    assert first.id == second.id != other.id and second.size == 2 and other.size == 1
    assert {"podcast", "crime"} <= {w for t in second.terms for w in t.split()}
    assert "please" not in second.terms and len(index) == 2
    restored = ClusterIndex([index.get(second.id), index.get(other.id)])  # type: ignore[list-item]
    assert restored.assign("d", _unit(1, 0.05, 0), "true crime podcast again").id == first.id


def test_terms_skip_stop_words_and_survive_odd_text() -> None:
    assert text_terms("The app is SLOW!!! slow slow") == {"slow"}
    assert text_terms("🙂🙂") == set() and len(text_terms("x" * 100_000)) <= 1


def test_memory_recalls_the_label_of_a_near_correction_only() -> None:
    examples = [LearnedExample("crash on pay", kind="bug"), LearnedExample("love it", sentiment="positive"),
                LearnedExample("about billing", themes=("billing",))]
    memory = ExampleMemory.build(examples, np.vstack([_unit(1, 0, 0), _unit(0, 1, 0), _unit(0, 0, 1)]))
    assert len(memory) == 2
    recalled = memory.recall(_unit(0.98, 0.05, 0), "kind")
    assert recalled is not None and recalled.label == "bug" and recalled.similarity > 0.9
    assert memory.recall(_unit(0.5, 0.5, 0.7), "kind") is None
    assert memory.recall(_unit(1, 0, 0), "sentiment") is None, "the bug example sets no sentiment"
    assert ExampleMemory.empty().recall(_unit(1, 0, 0), "kind") is None


def test_corrections_vote_on_similar_texts_by_closeness_and_leave_distant_ones_alone() -> None:
    unit = _unit
    memory = ExampleMemory.build([LearnedExample("a", kind="bug"), LearnedExample("b", kind="bug")],
                                 np.vstack([unit(1, 0, 0), unit(1, 0.1, 0)]))
    head = {"bug": 0.2, "question": 0.8}
    near = memory.blend(head, unit(1, 0.3, 0), "kind")
    assert near["bug"] > near["question"] and abs(sum(near.values()) - 1) < 1e-6
    middling = memory.blend(head, unit(1, 1.1, 0), "kind")
    assert head["bug"] < middling["bug"] < near["bug"], "a less similar text is nudged less"
    assert memory.blend(head, unit(0, 0, 1), "kind") == head, "an unrelated text keeps the head's reading"
    assert memory.blend(head, unit(1, 0, 0), "sentiment") == head, "no sentiment was corrected"
    assert ExampleMemory.empty().blend(head, unit(1, 0, 0), "kind") == head


def test_the_nearest_cluster_is_the_one_a_plain_scan_finds() -> None:
    """The stacked-centroid search picks what comparing each centroid in turn picks, ties to the oldest."""
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(12, 16)).astype(np.float32)
    index = ClusterIndex()
    for n in range(400):
        vector = (centres[n % 12] + rng.normal(scale=0.9, size=16)).astype(np.float32)
        unit = vector / np.linalg.norm(vector)
        states = [index.get(i) for i in list(index._order)]
        scores = [float(s.centroid @ unit) for s in states if s is not None]
        expected = states[scores.index(max(scores))] if scores else None
        joined = index.assign(f"i{n}", vector, "")
        if expected is not None and max(scores) >= 0.55:
            assert joined.id == expected.id
    twin = ClusterIndex()
    first = twin.assign("a", _unit(1, 0, 0), "")
    twin.assign("b", _unit(0, 1, 0), "")
    assert twin.assign("c", _unit(1, 1, 0), "").id == first.id  # equally near both: the older one
