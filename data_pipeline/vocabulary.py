"""The vocabulary: words sorted by frequency with their counts, counted in one streaming pass."""

import collections
import dataclasses
import pathlib
from collections.abc import Callable

import numpy as np
import tensorflow as tf

import errors
from data_pipeline.sources import text_chunks
from data_pipeline.tokenize import chunk_non_text_bytes, tokenize
from errors import UserError
from storage import write_atomically

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
        """Writes `word<TAB>count` lines under a header, atomically (temporary file, then rename); a disk that is
        full or read-only is a one-line ResourceError, and leaves no temporary file."""

        def write(out) -> None:
            out.write(HEADER + "\n")
            out.writelines(f"{word}\t{count}\n" for word, count in zip(self.words, self.counts))

        write_atomically(pathlib.Path(path), write, "the vocabulary")

    @classmethod
    def load(cls, path: str) -> "Vocabulary":
        """Reads a file written by `save`; anything else (truncated, edited, another format) is a UserError."""
        try:
            with open(path, encoding="utf-8") as saved:
                rows = saved.read().split("\n")
            if rows[0] != HEADER or rows[-1] != "":
                raise ValueError(f"expected the header {HEADER!r} and a newline at the end")
            fields = [row.rsplit("\t", 1) for row in rows[1:-1]]
            words = tuple(word for word, _ in fields)
            counts = tuple(int(count) for _, count in fields)
            if len(set(words)) != len(words) or "" in words or any(count < 1 for count in counts):
                raise ValueError("words must be distinct and non-empty, counts positive")
        except ValueError as error:  # Also UnicodeDecodeError, and a row without a tab (too few values to unpack).
            raise UserError(f"{path} is not a vocabulary file this program wrote ({error})") from None
        return cls(words, counts)


@dataclasses.dataclass
class CorpusCount:
    """What one pass over the corpus found: each token's count, and how much of it was not text."""

    words: collections.Counter
    bytes: int = 0
    invalid_bytes: int = 0
    control_bytes: int = 0


# What `token_chunks` yields for each chunk (tests/test_vocabulary.py checks that its tokenizer yields the same).
TOKEN_CHUNK_SPEC = {
    "words": tf.TensorSpec([None], tf.string), "counts": tf.TensorSpec([None], tf.int64),
    "token_index": tf.TensorSpec([None], tf.int32), "row_splits": tf.TensorSpec([None], tf.int64),
    "bytes": tf.TensorSpec([], tf.int64), "invalid_bytes": tf.TensorSpec([], tf.int64),
    "control_bytes": tf.TensorSpec([], tf.int64),
}


def empty_dataset(spec: dict) -> tf.data.Dataset:
    """A dataset of no elements whose elements would have the structure `spec` (dimensions of unknown size)."""

    @tf.autograph.experimental.do_not_convert
    def element(size: tf.Tensor) -> dict:
        return {name: tf.fill(tf.fill([tensor.shape.rank], size), tf.zeros([], tensor.dtype))
                for name, tensor in spec.items()}

    return tf.data.Dataset.range(0).map(element)


def token_chunks(lines: tf.data.Dataset, token_pattern: str, lines_per_chunk: int = 2048,
                 cache_path: str = "") -> tf.data.Dataset:
    """The corpus tokenised once, chunk by chunk, as what both the vocabulary and the training pairs need:

    - `words`, `counts`: the chunk's distinct tokens and how often each occurs in it;
    - `token_index`, `row_splits`: its tokens in order, as indices into `words`, and where each line starts;
    - `bytes`, `invalid_bytes`, `control_bytes`: its size, and how much of it is not UTF-8 text.

    With `cache_path`, the first full pass writes the chunks to that file, and `data_pipeline.pairs.chunk_ids`
    turns them into ids by looking up each chunk's distinct words only, instead of tokenising the corpus again.
    Once the file is whole, tf.data reads it without running its input, so the input is then an empty dataset
    of the same structure: tracing the tokenizer again took about 0.3 s each time a pipeline read the file.
    """
    if cache_path and tf.io.gfile.exists(f"{cache_path}.index"):  # Written whole, or not at all, by tf.data.
        return empty_dataset(TOKEN_CHUNK_SPEC).cache(cache_path)

    @tf.autograph.experimental.do_not_convert
    def tokenized(chunk: tf.Tensor) -> dict:
        tokens = tokenize(chunk, token_pattern)
        words, token_index, counts = tf.unique_with_counts(tokens.flat_values, out_idx=tf.int32)
        invalid, control = chunk_non_text_bytes(chunk)
        return {"words": words, "counts": tf.cast(counts, tf.int64), "token_index": token_index,
                "row_splits": tokens.row_splits,
                "bytes": tf.reduce_sum(tf.cast(tf.strings.length(chunk), tf.int64)),
                "invalid_bytes": invalid, "control_bytes": control}

    # Long lines and chunks of much text are cut first, as for the training pairs (`text_chunks`).
    chunks = text_chunks(lines, lines_per_chunk).map(tokenized, num_parallel_calls=tf.data.AUTOTUNE,
                                                     deterministic=True)
    return chunks.cache(cache_path) if cache_path else chunks


def count_corpus(lines: tf.data.Dataset, token_pattern: str, lines_per_chunk: int = 2048,
                 max_words_in_memory: int = 0, token_cache: str = "") -> CorpusCount:
    """Counts every token of the corpus, and its bytes that are not UTF-8 text. Each chunk of lines is reduced
    to its distinct words in TensorFlow, so memory grows with the vocabulary, not with the corpus; with
    `max_words_in_memory` (0: no limit) the rarest words are pruned whenever a chunk leaves more than that many,
    so memory stays bounded too (words pruned early and seen again later restart from zero: their counts are
    undercounts, as in word2vec). With `token_cache`, the tokenised chunks are written there (`token_chunks`)."""
    found, min_reduce = CorpusCount(collections.Counter()), 1
    chunks = token_chunks(lines, token_pattern, lines_per_chunk, token_cache)
    try:
        for chunk in chunks.prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
            found.words.update(dict(zip(chunk["words"].tolist(), chunk["counts"].tolist())))
            if max_words_in_memory:
                min_reduce = prune_rarest(found.words, max_words_in_memory, min_reduce)
            found.bytes += int(chunk["bytes"])
            found.invalid_bytes += int(chunk["invalid_bytes"])
            found.control_bytes += int(chunk["control_bytes"])
    except tf.errors.OpError as error:  # An unreadable file, a damaged .gz, a file deleted while reading.
        raise UserError(f"cannot read the corpus: {error.message.splitlines()[0]}") from None
    return found


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
    """Counts every token of the corpus (see `count_corpus`)."""
    return count_corpus(lines, token_pattern, lines_per_chunk, max_words_in_memory).words


# UTF-8 text holds no invalid bytes and almost no control characters, and text in Latin-1 a few percent of
# invalid ones (French: about 3%); binary files hold about half, UTF-16 half NULs. Above this share: refused.
NON_TEXT_LIMIT = 0.25


def check_text(found: CorpusCount, warn: Callable[[str], None]) -> None:
    """Refuses a corpus that is mostly not UTF-8 text; warns about (and counts) invalid bytes in one that is."""
    non_text = found.invalid_bytes + found.control_bytes
    if found.bytes and non_text > NON_TEXT_LIMIT * found.bytes:
        raise UserError(
            f"the corpus is not UTF-8 text: {non_text:,} of its {found.bytes:,} bytes ({non_text / found.bytes:.0%}) "
            "are invalid UTF-8 or control characters; pass text files (binary data cannot train), "
            "converted to UTF-8 if needed (e.g. `iconv -f utf-16 -t utf-8`)"
        )
    if found.invalid_bytes:
        warn(
            f"{found.invalid_bytes:,} of the corpus's {found.bytes:,} bytes are not valid UTF-8 and were read as "
            "word separators; if the corpus is in another encoding, convert it (e.g. `iconv -f latin1 -t utf-8`)"
        )


def checked_words(found: CorpusCount, warn: Callable[[str], None] = errors.warn) -> collections.Counter:
    """The counts of a corpus that holds words and is mostly UTF-8 text (`check_text`)."""
    check_text(found, warn)
    if not found.words:
        raise UserError("the corpus has no words: it is empty or holds no text the tokenizer can split")
    return found.words


def most_frequent(counts: dict, min_count: int) -> list[tuple]:
    """The (word, count) items seen at least `min_count` times, by falling count, then alphabetically so that
    ties are reproducible."""
    return sorted((item for item in counts.items() if item[1] >= min_count), key=lambda item: (-item[1], item[0]))


def build_vocabulary(lines: tf.data.Dataset, token_pattern: str, min_count: int, max_vocab: int = 0,
                     lines_per_chunk: int = 2048, max_words_in_memory: int = 0,
                     warn: Callable[[str], None] = errors.warn, token_cache: str = "") -> Vocabulary:
    """Counts the corpus (pruning the rarest words beyond `max_words_in_memory`, 0: never) and keeps words seen
    at least `min_count` times, the `max_vocab` most frequent (0: all), sorted by falling count, then
    alphabetically so that ties are reproducible. A corpus that is mostly not UTF-8 text is refused. With
    `token_cache`, the tokenised corpus is kept there for the first epoch (`token_chunks`)."""
    found = count_corpus(lines, token_pattern, lines_per_chunk, max_words_in_memory, token_cache)
    return counted_vocabulary(found, min_count, max_vocab, warn)


def counted_vocabulary(found: CorpusCount, min_count: int, max_vocab: int = 0,
                       warn: Callable[[str], None] = errors.warn) -> Vocabulary:
    """The vocabulary of a counted corpus (see `build_vocabulary`), or the one-line error that refuses it."""
    counts = checked_words(found, warn)
    kept = most_frequent(counts, min_count)
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


@dataclasses.dataclass(frozen=True)
class UpdatedVocabulary:
    """A vocabulary continued on new text: its words keep their ids, words the text adds come after them.

    Attributes:
        vocabulary: the words in id order, each counted in the old corpus and the new text together.
        words_added: how many words at the end are new.
        corpus_words: the new text's words that are in `vocabulary` (what one epoch over it trains on).
    """

    vocabulary: Vocabulary
    words_added: int
    corpus_words: int


def updated_vocabulary(vocabulary: Vocabulary, new_counts: collections.Counter, min_count: int, max_vocab: int = 0,
                       add_words: bool = True) -> UpdatedVocabulary:
    """`vocabulary` with the counts of new text (tokens as bytes, from `checked_words`) added to its own.

    With `add_words`, the new text's words that are not in the vocabulary and are seen at least `min_count` times
    are appended, most frequent first (then alphabetically), up to `max_vocab` words in all (0: no cap). Every
    existing word keeps its id. A word left out of the old vocabulary (below `min_count` then) has no count
    there, so its merged count is its count in the new text, as in gensim's `build_vocab(update=True)`.
    """
    new_text = {word.decode("utf-8"): count for word, count in new_counts.items()}
    known = vocabulary.ids()
    counts = [count + new_text.get(word, 0) for word, count in zip(vocabulary.words, vocabulary.counts)]
    added = most_frequent({word: count for word, count in new_text.items() if word not in known}, min_count) \
        if add_words else []
    if max_vocab > 0:
        added = added[:max(0, max_vocab - len(vocabulary))]
    merged = Vocabulary(vocabulary.words + tuple(word for word, _ in added),
                        tuple(counts) + tuple(int(count) for _, count in added))
    corpus_words = sum(new_text.get(word, 0) for word in merged.words)
    return UpdatedVocabulary(merged, len(added), corpus_words)


def unigram_probabilities(vocabulary: Vocabulary, power: float = 1.0) -> np.ndarray:
    counts = np.asarray(vocabulary.counts, dtype=np.float64) ** power
    return counts / counts.sum()
