"""Length-sorted batches under a token budget: pure arithmetic over token counts, no model."""

from classification.model.embedding import _batches


def test_short_texts_fill_whole_batches_and_long_ones_stay_under_the_budget() -> None:
    assert _batches([3] * 130, 64, 2048) == [range(0, 64), range(64, 128), range(128, 130)]
    lengths = [10, 20, 100, 128, 128, 128, 200]
    batches = _batches(lengths, 64, 256)
    assert [i for batch in batches for i in batch] == list(range(len(lengths)))  # every text once, in order
    assert all(len(b) * lengths[b[-1]] <= 256 or len(b) == 1 for b in batches)  # a lone text may exceed it


def test_no_texts_no_batches() -> None:
    assert _batches([], 64, 2048) == []


def test_a_batch_never_mixes_short_texts_with_much_longer_ones() -> None:
    lengths = sorted([8] * 30 + [12] * 10 + [40] * 10 + [90] * 4)
    batches = _batches(lengths, 64, 4096)
    assert [i for batch in batches for i in batch] == list(range(len(lengths)))
    for batch in batches:
        shortest, longest = lengths[batch[0]], lengths[batch[-1]]
        assert longest <= 1.5 * shortest + 4, (shortest, longest)
