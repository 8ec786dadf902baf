"""Skip-gram pairs follow word2vec's rules: window reach, no pair across a line, subsampling."""

import collections

import numpy as np
import pytest
import tensorflow as tf

from data_pipeline.pairs import (
    chunk_ids,
    cut_into_pieces,
    keep_probabilities,
    noise_table,
    noise_words,
    row_pairs,
    skipgram_pairs,
    training_batches,
)
from data_pipeline.tokenize import tokenize
from data_pipeline.vocabulary import Vocabulary, build_vocabulary


def pairs_of(lines: list[list[int]], window_size: int, seed: int = 0, keep=None) -> list[tuple[int, int]]:
    ids = tf.ragged.constant(lines, dtype=tf.int32)
    keep = tf.ones([100]) if keep is None else tf.constant(keep, tf.float32)
    centres, contexts = skipgram_pairs(ids, window_size, keep, tf.constant([seed, 0], tf.int64))
    return sorted(zip(centres.numpy().tolist(), contexts.numpy().tolist()))


def test_window_one_pairs_each_word_with_its_neighbours():
    # Line 0 1 2 3 4, window 1 (so every reach b is 1): each word pairs with the word on each side.
    # 0:(1)  1:(0,2)  2:(1,3)  3:(2,4)  4:(3)  -> 8 pairs.
    assert pairs_of([[0, 1, 2, 3, 4]], window_size=1) == [
        (0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2), (3, 4), (4, 3)
    ]


def test_no_pair_crosses_a_line():
    # Lines [0 1] and [2 3], window 5: only 0-1 and 2-3 may pair, never 1-2.
    assert pairs_of([[0, 1], [2, 3]], window_size=5) == [(0, 1), (1, 0), (2, 3), (3, 2)]


def test_each_pair_is_within_the_window_and_near_pairs_always_appear():
    line = list(range(12))
    for seed in range(5):
        pairs = pairs_of([line], window_size=3, seed=seed)
        assert all(1 <= abs(centre - context) <= 3 for centre, context in pairs)
        # Every reach b is at least 1, so all distance-1 pairs are there: 11 left-right, 11 right-left.
        assert sum(abs(centre - context) == 1 for centre, context in pairs) == 22


def test_pairs_come_centre_by_centre_back_then_forth_each_within_one_reach_and_its_line():
    # Words are their positions, so a pair's offset is context - centre. The pairs come in the order the shuffle
    # that follows was made for: centre by centre, each centre's offsets -1, -2, ... then +1, +2, ...; a centre sees
    # min(b, room) words on each side for one reach b in [1, window], room being how far its line runs that way.
    lines = [[], [0], list(range(1, 13)), [], [13, 14], list(range(15, 41)), [41, 42, 43]]
    window, bounds = 4, {word: (line[0], line[-1]) for line in lines for word in line}
    for seed in range(4):
        centres, contexts = skipgram_pairs(tf.ragged.constant(lines, dtype=tf.int32), window, tf.ones([44]),
                                           tf.constant([seed, 0], tf.int64))
        centres, offsets = centres.numpy(), contexts.numpy() - centres.numpy()
        order = [(centre, -offset if offset < 0 else window + offset) for centre, offset in zip(centres, offsets)]
        assert order == sorted(set(order))
        assert set(centres) == set(range(1, 44))  # Every word with a neighbour on its line (not 0, alone).
        for centre in set(centres):
            seen = offsets[centres == centre]
            back, forth = np.sum(seen < 0), np.sum(seen > 0)
            first, last = bounds[centre]
            assert any(back == min(reach, centre - first) and forth == min(reach, last - centre)
                       for reach in range(1, window + 1)), (centre, seen)


def test_window_reach_is_uniform_from_one_to_window():
    # With reach b uniform in [1, 4], a centre sees distance d with probability (4 - d + 1) / 4:
    # d=1: 1, d=2: 3/4, d=3: 1/2, d=4: 1/4. Count over many centres (a long line, many seeds).
    line = list(range(100))
    seen = collections.Counter()
    for seed in range(40):
        seen.update(abs(centre - context) for centre, context in pairs_of([line], window_size=4, seed=seed))
    # Each distance d has 2 * (100 - d) (centre, context) slots per seed.
    rates = {d: seen[d] / (40 * 2 * (100 - d)) for d in range(1, 5)}
    assert rates[1] == 1.0
    for distance, expected in [(2, 0.75), (3, 0.5), (4, 0.25)]:
        assert rates[distance] == pytest.approx(expected, abs=0.03)


def test_keep_probabilities_follow_word2vecs_formula():
    # Counts 900, 99 and 1 of 1000 words, sample 0.01: threshold t = 0.01 * 1000 = 10.
    # keep(900) = (sqrt(900/10) + 1) * 10/900 = (9.4868 + 1) / 90  = 0.11652
    # keep(99)  = (sqrt(99/10) + 1) * 10/99   = (3.1464 + 1) / 9.9 = 0.41883
    # keep(1)   = (sqrt(1/10) + 1) * 10/1 = 13.16, capped at 1: rare words are always kept.
    assert keep_probabilities([900, 99, 1], 0.01) == pytest.approx([0.11652, 0.41883, 1.0], abs=1e-5)
    # Sample 0 keeps everything.
    assert keep_probabilities([900, 100], 0.0).tolist() == [1.0, 1.0]


def test_subsampling_drops_words_at_the_expected_rate():
    # One line of 10,000 copies of word 0 with keep probability 0.25: about 2,500 survive, so window-1
    # pairs number about 2 * 2,500.
    pairs = pairs_of([[0] * 10_000], window_size=1, keep=[0.25])
    assert len(pairs) == pytest.approx(5_000, rel=0.05)


def test_the_noise_table_gives_each_word_its_share_of_slots():
    # Probabilities [0.5, 0.25, 0.25] over 8 slots: 4, 2 and 2 slots.
    assert noise_table(np.array([0.5, 0.25, 0.25]), size=8).tolist() == [0, 0, 0, 0, 1, 1, 2, 2]


def test_noise_words_follow_the_distribution():
    table = tf.constant(noise_table(np.array([0.5, 0.25, 0.25]), size=1000))
    draws = noise_words(table, tf.constant([30_000]), tf.constant([1, 2], tf.int64))
    frequencies = np.bincount(draws.numpy(), minlength=3) / 30_000
    assert frequencies == pytest.approx([0.5, 0.25, 0.25], abs=0.01)


def test_batches_cover_all_pairs_and_resume_skips_exactly_what_was_done():
    lines = tf.data.Dataset.from_tensor_slices(["a b c d e"] * 30 + ["b c d"] * 30)
    vocabulary = Vocabulary(("a", "b", "c", "d", "e"), (30, 60, 60, 60, 30))
    chunks = chunk_ids(lines, vocabulary, token_pattern=" ", lines_per_chunk=10)
    make = lambda **start: list(training_batches(
        chunks, vocabulary, window_size=2, sample=0, batch_size=16, noise_shape=(16, 3), seed=7, **start))
    everything = make()
    # Every batch holds 16 pairs, padding included, with noise [16, 3]; the words add up to the 240 corpus words.
    assert all(b["centres"].shape == (16,) and b["noise"].shape == (16, 3) for b in everything)
    assert sum(float(b["words"]) for b in everything) == pytest.approx(30 * 5 + 30 * 3)
    # Sample 0 keeps every word, so the real pairs (weight 1) are each line's window pairs, at most
    # 2 * (4 + 3) = 14 for "a b c d e" (distances 1 and 2) and 2 * (2 + 1) = 6 for "b c d", and at least
    # the distance-1 pairs, 8 and 4.
    real_pairs = sum(float(tf.reduce_sum(b["weights"])) for b in everything)
    assert 30 * 8 + 30 * 4 <= real_pairs <= 30 * 14 + 30 * 6
    # Starting at (chunk 2, batch 1) regenerates exactly the tail of the full stream.
    index = next(i for i, b in enumerate(everything) if int(b["chunk"]) == 2 and int(b["batch"]) == 1)
    resumed = make(start_chunk=2, start_batch=1)
    assert len(resumed) == len(everything) - index
    for expected, actual in zip(everything[index:], resumed):
        np.testing.assert_array_equal(expected["centres"], actual["centres"])
        np.testing.assert_array_equal(expected["noise"], actual["noise"])


def scored(word: int, contexts: np.ndarray, weights: np.ndarray, noise: np.ndarray) -> float:
    """The pairs of one batch that score `word` as noise: each pair scores its group's noise words but its own
    context word; a word drawn twice counts twice."""
    group = np.arange(len(contexts)) // (len(contexts) // noise.shape[0])
    return sum(weights[p] * np.sum(noise[group[p]] == word) * (contexts[p] != word) for p in range(len(contexts)))


def counted_row_pairs(centres, contexts, weights, noise) -> dict[str, np.ndarray]:
    """row_pairs's counts, pair by pair and word by word in numpy."""
    counts = {name: [] for name in ("centre_pairs", "context_pairs", "context_noise_pairs", "noise_pairs",
                                    "noise_context_pairs")}
    for c, x, w, n in zip(centres, contexts, weights, noise):
        counts["centre_pairs"].append([w[c == word].sum() for word in c])
        counts["context_pairs"].append([w[x == word].sum() for word in x])
        counts["context_noise_pairs"].append([scored(word, x, w, n) for word in x])
        counts["noise_pairs"].append([[scored(word, x, w, n) for word in row] for row in n])
        counts["noise_context_pairs"].append([[w[x == word].sum() for word in row] for row in n])
    return {name: np.array(values, np.float32) for name, values in counts.items()}


@pytest.mark.parametrize("dense_vocabulary", [100_000, 0], ids=["dense", "hashed"])
@pytest.mark.parametrize("groups", [1, 4])
@pytest.mark.parametrize("spread", [1, 997], ids=["all words used", "few of many words used"])
def test_row_pairs_counts_each_rows_pairs_in_its_own_batch(dense_vocabulary, groups, spread):
    # With `spread` 997, the batches use 9 words of a vocabulary of 8,974 (the dense sums renumber them).
    rng = np.random.default_rng(groups)
    centres, contexts = spread * rng.integers(0, 9, [3, 16]), spread * rng.integers(0, 9, [3, 16])
    weights = (rng.random([3, 16]) < 0.8).astype(np.float32)
    noise = spread * rng.integers(0, 9, [3, groups, 5])
    counts = row_pairs(tf.constant(centres, tf.int32), tf.constant(contexts, tf.int32), tf.constant(weights),
                       tf.constant(noise, tf.int32), vocabulary_size=8 * spread + 1, dense_vocabulary=dense_vocabulary)
    expected = counted_row_pairs(centres, contexts, weights, noise)
    for name, values in expected.items():
        np.testing.assert_array_equal(counts[name].numpy(), values, err_msg=name)


def test_the_tokens_kept_by_the_vocabulary_pass_give_the_same_ids_as_the_lines(tmp_path):
    # Words out of the vocabulary ("rare", "x") are dropped from both, lines that keep no word are dropped too (the
    # chunks are cut into pieces, `cut_into_pieces`), and a chunk's token indices point into its own distinct
    # words, whatever the order they first appear in.
    text = ["the cat sat", "", "cat the the x dog", "dog cat sat"] * 7 + ["rare x"]
    lines = tf.data.Dataset.from_tensor_slices(text)
    cache = str(tmp_path / "tokens")
    vocabulary = build_vocabulary(lines, " ", min_count=9, lines_per_chunk=4, token_cache=cache)
    assert vocabulary.words == ("cat", "the", "dog", "sat")
    from_lines = [chunk.to_list() for chunk in chunk_ids(lines, vocabulary, " ", lines_per_chunk=4)]
    # An unreadable corpus shows that the cached chunks do not read the lines again.
    unreadable = tf.data.TextLineDataset(str(tmp_path / "missing.txt"))
    from_tokens = [chunk.to_list() for chunk in chunk_ids(unreadable, vocabulary, " ", lines_per_chunk=4,
                                                            token_cache=cache)]
    assert from_tokens == from_lines
    assert from_lines[0] == [[1, 0, 3], [0, 1, 1, 2], [2, 0, 3]]
    assert from_lines[-1] == []


def test_a_chunk_over_the_word_limit_is_cut_into_pieces_and_a_line_across_a_cut_becomes_two():
    # Lines [1 2 3] [] [4 5 6], at most 4 words a piece: [1 2 3] [4] | [5 6]. The empty line is dropped.
    pieces = cut_into_pieces(tf.ragged.constant([[1, 2, 3], [], [4, 5, 6]], row_splits_dtype=tf.int64), 4)
    assert pieces.to_list() == [[[1, 2, 3], [4]], [[5, 6]]]
    # Within the limit, one piece: the same words in the same lines. An empty chunk stays one (empty) piece.
    assert cut_into_pieces(tf.ragged.constant([[1, 2], [3]], row_splits_dtype=tf.int64), 4).to_list() == [[[1, 2], [3]]]
    assert cut_into_pieces(tf.ragged.constant([[], []], tf.int32, row_splits_dtype=tf.int64), 4).to_list() == [[]]


def test_one_very_long_line_makes_chunks_of_bounded_size():
    # A "file without line breaks": one line of 300,000 words, then two short lines, in one chunk of lines.
    vocabulary = Vocabulary(("a", "b", "c"), (100_000, 100_003, 100_000))
    lines = tf.data.Dataset.from_tensor_slices([" ".join(["a b c"] * 100_000), "a b", "b c"])
    chunks = list(chunk_ids(lines, vocabulary, token_pattern=" ", lines_per_chunk=2048, max_chunk_words=131_072))
    # The 600,000-byte line is first cut into lines of 65,536 bytes (32,768 words of "x "): 10 lines. Then its
    # 300,004 words make chunks of 131,072 (4 lines), 131,072 (4 lines) and 37,860 words (the last 37,856 words of
    # the long line in 2 lines, then the 2 short lines).
    assert [int(tf.size(chunk.flat_values)) for chunk in chunks] == [131_072, 131_072, 37_860]
    assert [int(chunk.nrows()) for chunk in chunks] == [4, 4, 4]
    # So a chunk makes at most 2 x window pairs per word, whatever the line lengths.
    batches = training_batches(tf.data.Dataset.from_tensors(chunks[0]), vocabulary, window_size=5, sample=0,
                               batch_size=4096)
    assert sum(float(tf.reduce_sum(batch["weights"])) for batch in batches) <= 2 * 5 * 131_072


def uncut_chunk_ids(lines: tf.data.Dataset, vocabulary: Vocabulary, lines_per_chunk: int) -> tf.data.Dataset:
    """chunk_ids as it was before chunks were cut: every chunk of lines whole, its empty lines kept."""
    table = vocabulary.lookup_table()

    def ids_of(chunk_lines: tf.Tensor) -> tf.RaggedTensor:
        ids = tf.ragged.map_flat_values(table.lookup, tokenize(chunk_lines, " "))
        return tf.ragged.boolean_mask(ids, ids >= 0)

    return lines.batch(lines_per_chunk).map(ids_of)


def test_pairs_of_chunks_within_the_limit_are_as_before_the_cut():
    # The cut relabels lines and drops empty ones, which changes no pair: below the limit, training is as it was.
    lines = tf.data.Dataset.from_tensor_slices(["a b c d e", "", "b c d", "x"] * 20)
    vocabulary = Vocabulary(("a", "b", "c", "d", "e"), (20, 40, 40, 40, 20))
    make = lambda chunks: list(training_batches(chunks, vocabulary, window_size=2, sample=0.1, batch_size=16, seed=7))
    cut, uncut = make(chunk_ids(lines, vocabulary, " ", 10)), make(uncut_chunk_ids(lines, vocabulary, 10))
    assert len(cut) == len(uncut) > 0
    for cut_batch, uncut_batch in zip(cut, uncut):
        for key in ("centres", "contexts", "weights", "noise", "words", "chunk", "batch"):
            np.testing.assert_array_equal(cut_batch[key], uncut_batch[key])
