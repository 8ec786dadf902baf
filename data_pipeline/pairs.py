"""Skip-gram training pairs as word2vec makes them, vectorised per chunk of lines inside tf.data.

For each chunk: tokens -> ids (out-of-vocabulary tokens dropped) -> subsampling of frequent words ->
a random window reach b in [1, window] per centre word -> (centre, context) pairs within the same line ->
shuffle -> batches, each with its noise words drawn from unigram^0.75. Every random draw is stateless,
seeded by (seed, epoch, chunk), so a resumed run regenerates exactly the batches it had not yet trained on.
"""

import numpy as np
import tensorflow as tf

from data_pipeline.tokenize import tokenize
from data_pipeline.vocabulary import Vocabulary, unigram_probabilities

NOISE_POWER = 0.75

# What the training step reads of a batch (the rest, `words`, `chunk` and `batch`, is the loop's bookkeeping).
STEP_INPUTS = ("centres", "contexts", "weights", "noise", "centre_pairs", "context_pairs", "noise_pairs",
               "context_noise_pairs", "noise_context_pairs")

def noise_table_size(vocabulary_size: int) -> int:
    """A million slots, or 20 per word for large vocabularies: resolution well below the rarest word's share."""
    return max(1_000_000, 20 * vocabulary_size)


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec's subsampling: a word of count c among T corpus words survives with probability
    (sqrt(c / (sample * T)) + 1) * (sample * T) / c, capped at 1; `sample` 0 keeps every word."""
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts, dtype=np.float32)
    threshold = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / threshold) + 1.0) * threshold / counts).astype(np.float32)


def skipgram_pairs(ids: tf.RaggedTensor, window_size: int, keep_probability: tf.Tensor,
                   seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """All (centre, context) id pairs of a ragged [lines, words] batch of ids, in no particular order.

    Frequent words are first dropped with 1 - keep_probability (the window then reaches past them, as in
    word2vec). Each remaining centre word draws its reach b uniformly from [1, window_size] and pairs with
    every word at distance <= b on its own line.
    """
    subsample_seed, reach_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    flat_ids = ids.flat_values
    survives = tf.random.stateless_uniform(tf.shape(flat_ids), subsample_seed) < tf.gather(keep_probability, flat_ids)
    kept = tf.ragged.boolean_mask(ids, ids.with_flat_values(survives))
    words, lines = kept.flat_values, kept.value_rowids()
    reach = tf.random.stateless_uniform(tf.shape(words), reach_seed, minval=1, maxval=window_size + 1, dtype=tf.int32)

    centres, contexts = [], []
    for distance in range(1, window_size + 1):
        left, right = words[:-distance], words[distance:]
        same_line = tf.equal(lines[:-distance], lines[distance:])
        # The left word as centre sees the right one if its own reach covers the distance, and vice versa.
        left_sees_right = same_line & (reach[:-distance] >= distance)
        right_sees_left = same_line & (reach[distance:] >= distance)
        centres += [tf.boolean_mask(left, left_sees_right), tf.boolean_mask(right, right_sees_left)]
        contexts += [tf.boolean_mask(right, left_sees_right), tf.boolean_mask(left, right_sees_left)]
    return tf.concat(centres, axis=0), tf.concat(contexts, axis=0)


def noise_table(probabilities: np.ndarray, size: int) -> np.ndarray:
    """word2vec's unigram table: `size` slots, word i filling a share of them equal to its probability,
    so that a uniform slot is a draw from the noise distribution (to a resolution of 1 / size)."""
    slots = (np.arange(size) + 0.5) / size
    table = np.searchsorted(np.cumsum(probabilities), slots, side="right")
    return np.minimum(table, len(probabilities) - 1).astype(np.int32)


def noise_words(table: tf.Tensor, shape: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Word ids drawn from a `noise_table`: one uniform slot each, four times cheaper than a binary search."""
    slots = tf.random.stateless_uniform(shape, seed, minval=0, maxval=tf.size(table), dtype=tf.int32)
    return tf.gather(table, slots)


def row_pairs(centres: tf.Tensor, contexts: tf.Tensor, weights: tf.Tensor, noise: tf.Tensor,
              vocabulary_size: int) -> dict[str, tf.Tensor]:
    """How many pairs of each batch touch each row: what bounds a row's update (model.optimizer.RowBounds).

    For [batches, B] pairs (weights 1, or 0 for padding) and their [batches, groups, K] noise words (pair p of a
    batch in group p // (B / groups)), the weight of the pairs of the same batch that
    - `centre_pairs` [batches, B]: have the same centre word (its row of E);
    - `context_pairs` [batches, B]: have the same context word (its row of W, as a true context);
    - `noise_pairs` [batches, groups, K]: score the same noise word, over every draw of it (a group's pairs score
      its K words, except a pair whose own context word it is);
    - `context_noise_pairs` [batches, B] and `noise_context_pairs` [batches, groups, K]: the same two counts for the
      other use of the same row of W (as noise for a context word, as a true context for a noise word).
    Counted with tf.unique over the batch's own rows, so the cost follows the batch and not the vocabulary, and
    outside the training step.
    """
    batches, groups = tf.shape(centres)[0], tf.shape(noise)[1]
    batch_index = tf.range(batches, dtype=tf.int64)[:, None]
    group_index = batch_index * tf.cast(groups, tf.int64) + tf.range(groups, dtype=tf.int64)
    keyed = lambda ids, index: index * vocabulary_size + tf.cast(ids, tf.int64)  # One key per (batch, word).
    group_contexts = tf.reshape(contexts, [batches, groups, -1])
    group_weights = tf.reshape(weights, [batches, groups, -1])
    # For each noise word, the group's pairs whose own context word it is: they skip it.
    own_context = summed_per_key(keyed(group_contexts, group_index[..., None]), group_weights,
                                 keyed(noise, group_index[..., None]))
    scoring = tf.reduce_sum(group_weights, axis=-1, keepdims=True) - own_context
    context_keys, noise_keys = keyed(contexts, batch_index), keyed(noise, batch_index[..., None])
    return {"centre_pairs": summed_per_key(keyed(centres, batch_index), weights),
            "context_pairs": summed_per_key(context_keys, weights),
            "noise_pairs": summed_per_key(noise_keys, scoring),
            "context_noise_pairs": summed_per_key(noise_keys, scoring, context_keys),
            "noise_context_pairs": summed_per_key(context_keys, weights, noise_keys)}


def step_batch(centres: tf.Tensor, contexts: tf.Tensor, weights: tf.Tensor, noise: tf.Tensor,
               vocabulary_size: int) -> dict[str, tf.Tensor]:
    """One batch of pairs and [groups, K] noise words as the training step reads it (STEP_INPUTS), row counts
    included, as `training_batches` would make it: for tests and for callers of the step outside the pipeline."""
    batched = {"centres": centres[None], "contexts": contexts[None], "weights": weights[None], "noise": noise[None]}
    counts = row_pairs(**batched, vocabulary_size=vocabulary_size)
    return {name: value[0] for name, value in {**batched, **counts}.items()}


def summed_per_key(keys: tf.Tensor, values: tf.Tensor, queries: tf.Tensor | None = None) -> tf.Tensor:
    """For each key of `queries` (by default `keys` itself), the sum of `values` over the equal `keys`."""
    flat_keys, flat_values = tf.reshape(keys, [-1]), tf.reshape(values, [-1])
    flat_queries = flat_keys if queries is None else tf.reshape(queries, [-1])
    known = tf.size(flat_keys)
    distinct, index = tf.unique(flat_keys if queries is None else tf.concat([flat_keys, flat_queries], axis=0))
    sums = tf.math.unsorted_segment_sum(flat_values, index[:known], tf.size(distinct))
    looked_up = tf.gather(sums, index if queries is None else index[known:])
    return tf.reshape(looked_up, tf.shape(keys if queries is None else queries))


def chunk_ids(lines: tf.data.Dataset, vocabulary: Vocabulary, token_pattern: str,
              lines_per_chunk: int = 2048) -> tf.data.Dataset:
    """Chunks of `lines_per_chunk` lines as ragged [lines, words] int32 ids, out-of-vocabulary tokens dropped.

    This is the expensive, epoch-independent part of the pipeline (regex, lowercasing, hashing), worth
    caching after the first epoch.
    """
    table = vocabulary.lookup_table()

    def ids_of(chunk_lines: tf.Tensor) -> tf.RaggedTensor:
        ids = tf.ragged.map_flat_values(table.lookup, tokenize(chunk_lines, token_pattern))
        return tf.ragged.boolean_mask(ids, ids >= 0)

    return lines.batch(lines_per_chunk).map(ids_of, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def training_batches(chunks: tf.data.Dataset, vocabulary: Vocabulary, *, window_size: int, sample: float,
                     batch_size: int, noise_shape: tuple[int, int] = (1, 1), seed: int = 1,
                     epoch: int = 0, start_chunk: int = 0, start_batch: int = 0, stream: int = 0) -> tf.data.Dataset:
    """One epoch of shuffled training batches from `chunk_ids` chunks, as dicts of tensors:

    - `centres`, `contexts`: int32 [batch_size] pair ids;
    - `weights`: float32 [batch_size], 1 for a pair and 0 for the padding that fills a chunk's last batch;
    - `noise`: int32 `noise_shape` = [groups, k] noise words: the batch's pairs in `groups` equal runs, each run
      sharing one row of k noise words (batch_size groups: fresh noise words for every pair);
    - `centre_pairs`, `context_pairs`, `context_noise_pairs`: float32 [batch_size], and `noise_pairs`,
      `noise_context_pairs`: float32 `noise_shape`: how many pairs of the batch touch each pair's and each noise
      word's rows (see `row_pairs`), which bounds their updates;
    - `words`: the corpus words (before subsampling) this batch stands for, for the learning-rate decay;
    - `chunk`, `batch`: the position in the epoch, so that training can resume right after it.

    `start_chunk` and `start_batch` skip what a checkpoint has already trained on. `stream` tells apart the
    random draws of replicas that each read their own shard of the corpus (0 for a single process).
    """
    keep_probability = tf.constant(keep_probabilities(vocabulary.counts, sample))
    table = tf.constant(noise_table(unigram_probabilities(vocabulary, NOISE_POWER), noise_table_size(len(vocabulary))))
    epoch_seed = tf.random.experimental.stateless_fold_in(tf.constant([seed, stream], tf.int64), epoch)

    def chunk_batches(chunk: tf.Tensor, ids: tf.RaggedTensor) -> dict:
        chunk_seed = tf.random.experimental.stateless_fold_in(epoch_seed, chunk)
        pair_seed, shuffle_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(chunk_seed, num=3))
        centres, contexts = skipgram_pairs(ids, window_size, keep_probability, pair_seed)
        order = tf.random.experimental.stateless_shuffle(tf.range(tf.size(centres)), shuffle_seed)
        centres, contexts = tf.gather(centres, order), tf.gather(contexts, order)
        pairs = tf.size(centres)
        batches = (pairs + batch_size - 1) // batch_size
        # The last batch of a chunk is padded to the full size with weight-0 pairs, so that every batch has the
        # same shape and the compiled training step is built once.
        padding = [[0, batches * batch_size - pairs]]
        as_batches = lambda values: tf.reshape(tf.pad(values, padding), [batches, batch_size])
        words = tf.cast(tf.size(ids.flat_values), tf.float32) / tf.cast(tf.maximum(batches, 1), tf.float32)
        batched = {"centres": as_batches(centres), "contexts": as_batches(contexts),
                   "weights": as_batches(tf.ones([pairs])),
                   "noise": noise_words(table, tf.stack([batches, *noise_shape]), noise_seed)}
        return {**batched, **row_pairs(**batched, vocabulary_size=len(vocabulary)),
                "words": tf.fill([batches], words), "chunk": tf.fill([batches], chunk),
                "batch": tf.range(tf.cast(batches, tf.int64))}

    numbered = chunks.enumerate().skip(start_chunk)
    batches = numbered.map(chunk_batches, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    batches = batches.flat_map(tf.data.Dataset.from_tensor_slices)
    if start_batch:
        batches = batches.filter(lambda batch: (batch["chunk"] > start_chunk) | (batch["batch"] >= start_batch))
    return batches.prefetch(tf.data.AUTOTUNE)
