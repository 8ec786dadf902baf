"""The same seed, corpus and flags give the same vocabulary and the same stream of training pairs, whatever
the number of threads tf.data runs on; another seed gives another stream."""

import numpy as np
import tensorflow as tf

from data_pipeline.pairs import chunk_ids, training_batches
from data_pipeline.sources import corpus_lines
from data_pipeline.vocabulary import build_vocabulary

PATTERN = r"[^\pL\pN]+"


def single_threaded(dataset: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    return dataset.with_options(options)


def pair_stream(lines: tf.data.Dataset, seed: int, epoch: int = 0, threads: str = "default") -> list[np.ndarray]:
    """Every batch of one epoch as one array of (centre, context, noise...) rows, padding included."""
    vocabulary = build_vocabulary(lines, PATTERN, min_count=1, lines_per_chunk=7)
    batches = training_batches(chunk_ids(lines, vocabulary, PATTERN, lines_per_chunk=7), vocabulary, window_size=3,
                               sample=1e-2, batch_size=32, noise_shape=(32, 2), seed=seed, epoch=epoch)
    if threads == "one":
        batches = single_threaded(batches)
    return [np.column_stack([batch["centres"], batch["contexts"], batch["noise"]]) for batch in batches]


def test_the_vocabulary_is_the_same_from_one_thread_or_many(tiny_corpus):
    lines = corpus_lines([str(tiny_corpus)])
    many = build_vocabulary(lines, PATTERN, min_count=1, lines_per_chunk=7)
    one = build_vocabulary(single_threaded(lines), PATTERN, min_count=1, lines_per_chunk=7)
    assert many == one and len(many) == 19


def test_the_same_seed_gives_the_same_pairs_and_noise_whatever_the_threads(tiny_corpus):
    lines = corpus_lines([str(tiny_corpus)])
    first, again, one_thread = (pair_stream(lines, seed=5), pair_stream(lines, seed=5),
                                pair_stream(lines, seed=5, threads="one"))
    assert len(first) > 10
    for batches in (again, one_thread):
        assert len(batches) == len(first)
        for expected, actual in zip(first, batches):
            np.testing.assert_array_equal(expected, actual)


def test_another_seed_or_epoch_gives_another_stream(tiny_corpus):
    lines = corpus_lines([str(tiny_corpus)])
    first = np.concatenate(pair_stream(lines, seed=5))
    for other in (pair_stream(lines, seed=6), pair_stream(lines, seed=5, epoch=1)):
        other = np.concatenate(other)
        assert other.shape != first.shape or not np.array_equal(other, first)


def test_lines_of_several_files_come_in_a_fixed_order(tmp_path):
    # Three files of 100 lines, taken in sorted order 64 lines at a time: a0-63, b0-63, c0-63, then the last
    # 36 of each. The order decides the chunks, so it must not depend on timing.
    for name in "abc":
        (tmp_path / f"{name}.txt").write_text("".join(f"{name}{number}\n" for number in range(100)))
    lines = [line.decode() for line in corpus_lines([str(tmp_path / "*.txt")]).as_numpy_iterator()]
    expected = [f"{name}{number}" for block in (range(64), range(64, 100)) for name in "abc" for number in block]
    assert lines == expected
