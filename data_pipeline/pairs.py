"""Skip-gram training pairs as word2vec makes them, vectorised per chunk of lines inside tf.data.

For each chunk: tokens -> ids (out-of-vocabulary tokens dropped) -> subsampling of frequent words ->
a random window reach b in [1, window] per centre word -> (centre, context) pairs within the same line ->
shuffle -> batches, each with its noise words drawn from unigram^0.75. Every random draw is stateless,
seeded by (seed, epoch, chunk), so a resumed run regenerates exactly the batches it had not yet trained on.
"""

import functools
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from data_pipeline.sources import text_chunks
from data_pipeline.tokenize import tokenize
from data_pipeline.vocabulary import Vocabulary, token_chunks, unigram_probabilities

NOISE_POWER = 0.75
# The most words a chunk holds. A chunk of 2,048 ordinary lines holds 20k-50k words; a chunk of longer lines
# is cut into pieces of this many words (windows do not cross a cut), so that one very long line (a whole book,
# a file without line breaks) cannot make a chunk with hundreds of millions of pairs.
MAX_CHUNK_WORDS = 131_072

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

    Every centre is set against all 2 x window_size offsets at once, a [words, 2 x window] grid masked once:
    a third of the time of masking each distance apart, and far fewer ops to trace. A centre sees an offset if it
    is within its reach and its line's bounds (how far the line runs before and after it, two numbers per word):
    a quarter less time than looking up each partner's line in the grid (issue 12), and the same pairs in the same
    order.
    """
    subsample_seed, reach_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    flat_ids = ids.flat_values
    survives = tf.random.stateless_uniform(tf.shape(flat_ids), subsample_seed) < tf.gather(keep_probability, flat_ids)
    words, lines = tf.boolean_mask(flat_ids, survives), tf.boolean_mask(ids.value_rowids(), survives)
    reach = tf.random.stateless_uniform(tf.shape(words), reach_seed, minval=1, maxval=window_size + 1, dtype=tf.int32)

    # How far each centre sees back and forth: its reach, cut at the first and last word of its line.
    position = tf.range(tf.size(words))
    back = tf.minimum(position - tf.gather(tf.math.segment_min(position, lines), lines), reach)
    forth = tf.minimum(tf.gather(tf.math.segment_max(position, lines), lines) - position, reach)
    distances = tf.range(1, window_size + 1)
    offsets = tf.concat([-distances, distances], axis=0)
    seen = tf.where((offsets[None, :] >= -back[:, None]) & (offsets[None, :] <= forth[:, None]))  # [pairs, 2]
    centres = tf.cast(seen[:, 0], tf.int32)
    return tf.gather(words, centres), tf.gather(words, centres + tf.gather(offsets, seen[:, 1]))


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


# Row counts are summed into a dense array over the chunk's (batch, word) keys while it is small: about three
# times faster than hashing the keys (tf.unique) at a vocabulary of 70k words, slower past about 150k words.
DENSE_VOCABULARY = 100_000
DENSE_KEYS = 1 << 24  # At most 64 MB per array of sums; a larger key space (fresh noise per pair) is hashed.


def row_pairs(centres: tf.Tensor, contexts: tf.Tensor, weights: tf.Tensor, noise: tf.Tensor,
              vocabulary_size: int, dense_vocabulary: int = DENSE_VOCABULARY) -> dict[str, tf.Tensor]:
    """How many pairs of each batch touch each row: what bounds a row's update (model.optimizer.RowBounds).

    For [batches, B] pairs (weights 1, or 0 for padding) and their [batches, groups, K] noise words (pair p of a
    batch in group p // (B / groups)), the weight of the pairs of the same batch that
    - `centre_pairs` [batches, B]: have the same centre word (its row of E);
    - `context_pairs` [batches, B]: have the same context word (its row of W, as a true context);
    - `noise_pairs` [batches, groups, K]: score the same noise word, over every draw of it (a group's pairs score
      its K words, except a pair whose own context word it is);
    - `context_noise_pairs` [batches, B] and `noise_context_pairs` [batches, groups, K]: the same two counts for the
      other use of the same row of W (as noise for a context word, as a true context for a noise word).
    Counted over the batch's own rows (`key_sums`), outside the training step. With a dense vocabulary the words
    are first `renumbered` to those the batches use (gcide: about 8k of 43k words in a chunk's 64 batches), so that
    the arrays of sums are [batches, words used] rather than [batches, vocabulary]: the same counts, and a chunk's
    row counts in a third of the time (issue 12).
    """
    batches, groups = tf.shape(centres)[0], tf.shape(noise)[1]
    dense = vocabulary_size <= dense_vocabulary
    words = tf.constant(vocabulary_size, tf.int64)
    if dense:  # Summed over the words these batches use rather than the whole vocabulary: smaller dense arrays.
        (centres, contexts, noise), words = renumbered([centres, contexts, noise], vocabulary_size)
    batch_index = tf.range(batches, dtype=tf.int64)[:, None]
    group_index = batch_index * tf.cast(groups, tf.int64) + tf.range(groups, dtype=tf.int64)
    keyed = lambda ids, index: index * words + tf.cast(ids, tf.int64)  # One key per (batch, word).
    space = lambda rows: tf.cast(rows, tf.int64) * words
    group_contexts = tf.reshape(contexts, [batches, groups, -1])
    group_weights = tf.reshape(weights, [batches, groups, -1])
    context_keys, noise_keys = keyed(contexts, batch_index), keyed(noise, batch_index[..., None])
    centre_pairs, = key_sums(keyed(centres, batch_index), weights, [None], space(batches), dense)
    context_pairs, noise_context_pairs = key_sums(context_keys, weights, [None, noise_keys], space(batches), dense)
    # For each noise word, the group's pairs whose own context word it is: they skip it. With one group, the
    # group is the batch: those are the noise word's `noise_context_pairs`.
    own_context = noise_context_pairs if noise.shape[1] == 1 else key_sums(
        keyed(group_contexts, group_index[..., None]), group_weights, [keyed(noise, group_index[..., None])],
        space(batches * groups), dense)[0]
    scoring = tf.reduce_sum(group_weights, axis=-1, keepdims=True) - own_context
    noise_pairs, context_noise_pairs = key_sums(noise_keys, tf.broadcast_to(scoring, tf.shape(noise_keys)),
                                                [None, context_keys], space(batches), dense)
    return {"centre_pairs": centre_pairs, "context_pairs": context_pairs, "noise_pairs": noise_pairs,
            "context_noise_pairs": context_noise_pairs, "noise_context_pairs": noise_context_pairs}


def renumbered(ids: list[tf.Tensor], vocabulary_size: int) -> tuple[list[tf.Tensor], tf.Tensor]:
    """`ids` (word ids below `vocabulary_size`) with each word renumbered by its rank among the words they use,
    and how many words they use (int64): the same words equal, different words different, in fewer numbers."""
    used = tf.math.bincount(tf.concat([tf.reshape(values, [-1]) for values in ids], axis=0),
                            minlength=vocabulary_size, maxlength=vocabulary_size) > 0
    rank = tf.cumsum(tf.cast(used, tf.int32)) - 1
    return [tf.gather(rank, values) for values in ids], tf.cast(rank[-1] + 1, tf.int64)


def step_batch(centres: tf.Tensor, contexts: tf.Tensor, weights: tf.Tensor, noise: tf.Tensor,
               vocabulary_size: int) -> dict[str, tf.Tensor]:
    """One batch of pairs and [groups, K] noise words as the training step reads it (STEP_INPUTS), row counts
    included, as `training_batches` would make it: for tests and for callers of the step outside the pipeline."""
    batched = {"centres": centres[None], "contexts": contexts[None], "weights": weights[None], "noise": noise[None]}
    counts = row_pairs(**batched, vocabulary_size=vocabulary_size)
    return {name: value[0] for name, value in {**batched, **counts}.items()}


def key_sums(keys: tf.Tensor, values: tf.Tensor, queries: list[tf.Tensor | None], key_space: tf.Tensor,
             dense: bool = True) -> list[tf.Tensor]:
    """For each key of each tensor of `queries` (None: `keys` themselves), the sum of `values` over the equal
    `keys` (int64 keys in [0, key_space)). Summed into a dense array when `dense` and the key space is at most
    DENSE_KEYS, else over the distinct keys found by hashing (tf.unique); the sums are of whole numbers of pairs,
    so both give the same."""
    flat_keys, flat_values = tf.reshape(keys, [-1]), tf.reshape(values, [-1])
    others = [tf.reshape(query, [-1]) for query in queries if query is not None]

    def dense_sums() -> list[tf.Tensor]:
        sums = tf.math.unsorted_segment_sum(flat_values, flat_keys, key_space)
        return [tf.gather(sums, flat_keys), *(tf.gather(sums, query) for query in others)]

    def hashed_sums() -> list[tf.Tensor]:
        distinct, index = tf.unique(tf.concat([flat_keys, *others], axis=0))
        sums = tf.gather(tf.math.unsorted_segment_sum(flat_values, index[:tf.size(flat_keys)], tf.size(distinct)),
                         index)
        return tf.split(sums, [tf.size(flat_keys), *(tf.size(query) for query in others)])

    own, *looked_up = tf.cond(key_space <= DENSE_KEYS, dense_sums, hashed_sums) if dense else hashed_sums()
    looked_up = iter(looked_up)
    return [tf.reshape(own, tf.shape(keys)) if query is None else tf.reshape(next(looked_up), tf.shape(query))
            for query in queries]


def chunk_ids(lines: tf.data.Dataset, vocabulary: Vocabulary, token_pattern: str,
              lines_per_chunk: int = 2048, token_cache: str = "",
              max_chunk_words: int = MAX_CHUNK_WORDS) -> tf.data.Dataset:
    """Chunks of `lines_per_chunk` lines as ragged [lines, words] int32 ids, out-of-vocabulary tokens dropped. Long
    lines and chunks of much text are cut first (`text_chunks`), and a chunk of more than `max_chunk_words` words is
    cut into pieces of that many (`cut_into_pieces`).

    This is the expensive, epoch-independent part of the pipeline (regex, lowercasing, hashing), worth
    caching after the first epoch. When the vocabulary pass left the tokenised corpus in `token_cache`
    (`data_pipeline.vocabulary.token_chunks`), the lines are not read again: each chunk's distinct words are
    looked up, and its tokens take their ids from them.
    """
    table = vocabulary.lookup_table()
    if token_cache and tf.io.gfile.exists(f"{token_cache}.index"):  # Written whole, or not at all, by tf.data.

        @tf.autograph.experimental.do_not_convert
        def ids_of_tokens(chunk: dict) -> tf.RaggedTensor:
            ids = tf.gather(table.lookup(chunk["words"]), chunk["token_index"])
            ids = tf.RaggedTensor.from_row_splits(ids, tf.cast(chunk["row_splits"], tf.int64), validate=False)
            return cut_into_pieces(tf.ragged.boolean_mask(ids, ids >= 0), max_chunk_words)

        return token_chunks(lines, token_pattern, lines_per_chunk, token_cache).map(
            ids_of_tokens, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()

    @tf.autograph.experimental.do_not_convert
    def ids_of(chunk_lines: tf.Tensor) -> tf.RaggedTensor:
        ids = tf.ragged.map_flat_values(table.lookup, tokenize(chunk_lines, token_pattern))
        return cut_into_pieces(tf.ragged.boolean_mask(ids, ids >= 0), max_chunk_words)

    chunks = text_chunks(lines, lines_per_chunk).map(ids_of, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return chunks.unbatch()


def cut_into_pieces(ids: tf.RaggedTensor, max_words: int) -> tf.RaggedTensor:
    """A ragged [lines, words] chunk as [pieces, lines, words]: its words in runs of at most `max_words`, a line
    that crosses a cut becoming two lines. A chunk within the limit is one piece with the same words and lines
    (lines without words dropped, which changes no pair), so it trains exactly as it did uncut.

    For example, with `max_words` 4, the lines [[1, 2, 3], [4, 5, 6]] become the pieces [[[1, 2, 3], [4]], [[5, 6]]].
    """
    words, rows = ids.flat_values, ids.value_rowids()
    total = tf.size(words, out_type=tf.int64)
    piece = tf.range(total) // max_words
    # A new line starts where the piece or the original line changes: the line ids of the cut chunk.
    previous = lambda values: tf.concat([[-1], values], axis=0)[:total]
    starts = (piece != previous(piece)) | (rows != previous(rows))
    line = tf.cumsum(tf.cast(starts, tf.int64)) - 1
    lines = tf.RaggedTensor.from_value_rowids(words, line, nrows=tf.reduce_sum(tf.cast(starts, tf.int64)))
    pieces = tf.maximum((total + max_words - 1) // max_words, 1)  # An empty chunk stays one (empty) piece.
    return tf.RaggedTensor.from_value_rowids(lines, tf.boolean_mask(piece, starts), nrows=pieces)


@functools.lru_cache(maxsize=8)
def shuffled_pairs_function(vocabulary: Vocabulary, window_size: int, sample: float) -> Callable:
    """A traced `(ids, pair_seed, shuffle_seed) -> (centres, contexts)`: a chunk's `skipgram_pairs`, shuffled.

    Made once per (vocabulary, window, sample) and called by every epoch's dataset, so that its graph is traced
    once per run rather than once per epoch (about 0.4 s each time).
    """
    keep_probability = tf.constant(keep_probabilities(vocabulary.counts, sample))

    @tf.function(autograph=False)
    def shuffled_pairs(ids: tf.RaggedTensor, pair_seed: tf.Tensor, shuffle_seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        centres, contexts = skipgram_pairs(ids, window_size, keep_probability, pair_seed)
        order = tf.random.experimental.stateless_shuffle(tf.range(tf.size(centres)), shuffle_seed)
        return tf.gather(centres, order), tf.gather(contexts, order)

    return shuffled_pairs


@functools.lru_cache(maxsize=8)
def noise_table_for(vocabulary: Vocabulary) -> tf.Tensor:
    """The vocabulary's `noise_table`, as a constant made once per run."""
    return tf.constant(noise_table(unigram_probabilities(vocabulary, NOISE_POWER), noise_table_size(len(vocabulary))))


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
    shuffled_pairs = shuffled_pairs_function(vocabulary, window_size, sample)
    table = noise_table_for(vocabulary)
    epoch_seed = tf.random.experimental.stateless_fold_in(tf.constant([seed, stream], tf.int64), epoch)

    @tf.autograph.experimental.do_not_convert
    def chunk_batches(chunk: tf.Tensor, ids: tf.RaggedTensor) -> dict:
        chunk_seed = tf.random.experimental.stateless_fold_in(epoch_seed, chunk)
        pair_seed, shuffle_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(chunk_seed, num=3))
        centres, contexts = shuffled_pairs(ids, pair_seed, shuffle_seed)
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
    # Without tf.data's autotuning: on one core it held the process for about 8 s each time an epoch's iterator
    # was released (gcide, pinned, two epochs: 46.0 s against 34.7 s without it); on two cores it gained nothing.
    options = tf.data.Options()
    options.autotune.enabled = False
    return batches.prefetch(tf.data.AUTOTUNE).with_options(options)
