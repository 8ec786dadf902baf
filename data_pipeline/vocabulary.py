"""The vocabulary: words sorted by frequency with their counts, counted in one streaming pass."""

import collections
import dataclasses
import os

import numpy as np
import tensorflow as tf

from data_pipeline.tokenize import tokenize
from errors import UserError

HEADER = "word\tcount"


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Words in id order (most frequent first) and how often each was seen in the corpus."""

    words: tuple[str, ...]
    counts: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.words)

    @property
    def total_words(self) -> int:
        """Corpus tokens that are in the vocabulary: what word2vec's learning-rate decay counts."""
        return sum(self.counts)

    def ids(self) -> dict[str, int]:
        return {word: index for index, word in enumerate(self.words)}

    def lookup_table(self) -> tf.lookup.StaticHashTable:
        """Maps a token to its id, and any other token to -1."""
        initializer = tf.lookup.KeyValueTensorInitializer(
            tf.constant(self.words, tf.string), tf.range(len(self.words), dtype=tf.int32)
        )
        return tf.lookup.StaticHashTable(initializer, default_value=-1)

    def save(self, path: str) -> None:
        """Writes `word<TAB>count` lines under a header, atomically (temporary file, then rename)."""
        temporary = f"{path}.tmp"
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(HEADER + "\n")
            out.writelines(f"{word}\t{count}\n" for word, count in zip(self.words, self.counts))
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: str) -> "Vocabulary":
        with open(path, encoding="utf-8") as saved:
            rows = saved.read().splitlines()
        if not rows or rows[0] != HEADER:
            raise UserError(f"{path} is not a vocabulary file (expected the header {HEADER!r})")
        words, counts = zip(*(row.rsplit("\t", 1) for row in rows[1:])) if len(rows) > 1 else ((), ())
        return cls(tuple(words), tuple(int(count) for count in counts))


def prune_rarest(counts: collections.Counter, max_words: int, min_reduce: int) -> int:
    """Keeps at most `max_words` words in `counts` the way word2vec's ReduceVocab does: drops every word seen
    at most `min_reduce` times, raising the threshold until few enough remain; returns the next threshold.

    Dropping all words of a count, never some of them, keeps the result independent of dictionary order.
    """
    if len(counts) <= max_words:
        return min_reduce
    values = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
    # The smallest threshold t >= min_reduce that leaves at most max_words words with a count above t.
    threshold = max(min_reduce, int(np.partition(values, len(values) - max_words - 1)[len(values) - max_words - 1]))
    for word in [word for word, count in counts.items() if count <= threshold]:
        del counts[word]
    return threshold + 1


def word_counts(lines: tf.data.Dataset, token_pattern: str, lines_per_chunk: int = 2048,
                max_words_in_memory: int = 0) -> collections.Counter:
    """Counts every token of the corpus. Each chunk of lines is reduced to its distinct words in TensorFlow,
    so memory grows with the vocabulary, not with the corpus; with `max_words_in_memory` (0: no limit) the
    rarest words are pruned whenever a chunk leaves more than that many, so memory stays bounded too (words
    pruned early and seen again later restart from zero: their counts are undercounts, as in word2vec)."""

    def distinct_words(chunk: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        words, _, counts = tf.unique_with_counts(tokenize(chunk, token_pattern).flat_values, out_idx=tf.int64)
        return words, counts

    counts: collections.Counter = collections.Counter()
    min_reduce = 1
    chunks = lines.batch(lines_per_chunk).map(distinct_words, num_parallel_calls=tf.data.AUTOTUNE)
    for words, chunk_counts in chunks.prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
        counts.update(dict(zip(words.tolist(), chunk_counts.tolist())))
        if max_words_in_memory:
            min_reduce = prune_rarest(counts, max_words_in_memory, min_reduce)
    return counts


def build_vocabulary(lines: tf.data.Dataset, token_pattern: str, min_count: int, max_vocab: int = 0,
                     lines_per_chunk: int = 2048, max_words_in_memory: int = 0) -> Vocabulary:
    """Counts the corpus (pruning the rarest words beyond `max_words_in_memory`, 0: never) and keeps words seen
    at least `min_count` times, the `max_vocab` most frequent (0: all), sorted by falling count, then
    alphabetically so that ties are reproducible."""
    counts = word_counts(lines, token_pattern, lines_per_chunk, max_words_in_memory)
    if not counts:
        raise UserError("the corpus has no words: it is empty or holds no text the tokenizer can split")
    kept = sorted((item for item in counts.items() if item[1] >= min_count), key=lambda item: (-item[1], item[0]))
    if max_vocab > 0:
        kept = kept[:max_vocab]
    if not kept:
        most = max(counts.values())
        raise UserError(
            f"--min-count {min_count} leaves no words: the most frequent of {len(counts):,} words occurs "
            f"{most} times; lower --min-count"
        )
    words = tuple(word.decode("utf-8") for word, _ in kept)
    return Vocabulary(words, tuple(int(count) for _, count in kept))


def unigram_probabilities(vocabulary: Vocabulary, power: float = 1.0) -> np.ndarray:
    counts = np.asarray(vocabulary.counts, dtype=np.float64) ** power
    return counts / counts.sum()
