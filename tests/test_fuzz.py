"""Arbitrary text and bytes through the tokenizer, the vocabulary and the pair generator: nothing crashes, every
id stays inside the vocabulary, and no pair joins two lines."""

import collections
import itertools
import unicodedata

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import TOKEN_PATTERN
from data_pipeline.normalization import nfc
from data_pipeline.pairs import chunk_ids, skipgram_pairs, training_batches
from data_pipeline.tokenize import chunk_non_text_bytes, non_text_bytes, tokenize
from data_pipeline.vocabulary import NON_TEXT_LIMIT, Vocabulary, build_vocabulary
from errors import UserError

PATTERN = TOKEN_PATTERN

# Lines as a corpus file holds them: arbitrary Unicode (encoded as UTF-8) or arbitrary bytes, invalid UTF-8
# included. A few fixed words are mixed in so that most examples have a vocabulary with repeated words.
line = st.one_of(
    st.text(max_size=30).map(lambda text: text.encode("utf-8")),
    st.binary(max_size=30),
    st.lists(st.sampled_from(["King", "queen", "cat", "DOG", "café", "наука", "猫"]), max_size=8).map(
        lambda words: " ".join(words).encode("utf-8")),
)
corpora = st.lists(line, min_size=1, max_size=8)
fuzz = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_non_text_bytes(data: bytes) -> tuple[int, int]:
    """Python's own UTF-8 decoder: surrogateescape turns each invalid byte into one lone surrogate U+DC80..U+DCFF."""
    text = data.decode("utf-8", errors="surrogateescape")
    invalid = sum(0xDC80 <= ord(character) <= 0xDCFF for character in text)
    control = sum((ord(character) < 0x20 and character not in "\t\n\v\f\r") or ord(character) == 0x7F
                  for character in text)
    return invalid, control


def line_ids(lines: list[bytes], vocabulary: Vocabulary) -> list[list[int]]:
    """The in-vocabulary ids of each line, in order, from the tokenizer's own tokens."""
    ids = vocabulary.ids()
    return [[ids[token.decode("utf-8")] for token in tokens if token.decode("utf-8") in ids]
            for tokens in tokenize(tf.constant(lines, tf.string), PATTERN).to_list()]


def adjacent_pairs(lines: list[list[int]]) -> collections.Counter:
    """Window 1 without subsampling: each word pairs with its neighbours on its own line, both ways."""
    return collections.Counter(pair for ids in lines for left, right in itertools.pairwise(ids)
                               for pair in ((left, right), (right, left)))


@fuzz
@given(corpora)
def test_tokens_are_clean_lowercase_words_one_row_per_line(lines):
    rows = tokenize(tf.constant(lines, tf.string), PATTERN).to_list()
    assert len(rows) == len(lines)
    for token in (token for row in rows for token in row):
        text = token.decode("utf-8")  # Valid UTF-8: invalid bytes were turned into separators.
        assert text and "\ufffd" not in text and not any(character.isspace() for character in text)
        # A token is a fixed point: tokenizing it again gives itself.
        assert tokenize(tf.constant([token]), PATTERN).to_list() == [[token]]


# Text that NFC has work on: letters, combining marks of several classes, Hangul jamo and syllables, and the
# starters of Indic scripts that compose with each other, in any order.
nfc_text = st.text(st.sampled_from(
    list("aeiouAEIOUcnsz ") + [chr(mark) for mark in (0x300, 0x301, 0x302, 0x303, 0x308, 0x323, 0x327, 0x331, 0x345)]
    + [chr(point) for point in (0x1100, 0x1161, 0x11A8, 0xAC00, 0x0BC6, 0x0BBE, 0x0BD7, 0x0CC6, 0x0CC2, 0x0CD5,
                                0x0DD9, 0x0DCF, 0x0DCA, 0x0915, 0x093C, 0x0928, 0x212B, 0x0344, 0x1E0A, 0x00C5)]),
    max_size=20)


@fuzz
@given(st.lists(nfc_text, min_size=1, max_size=8))
def test_nfc_equals_pythons_unicodedata_normalize(lines):
    normalized = nfc(tf.constant([line.encode("utf-8") for line in lines])).numpy()
    assert [line.decode("utf-8") for line in normalized] == [unicodedata.normalize("NFC", line) for line in lines]


@fuzz
@given(corpora)
def test_invalid_and_control_bytes_are_counted_as_pythons_decoder_counts_them(lines):
    invalid, control = non_text_bytes(tf.constant(lines, tf.string))
    expected = [reference_non_text_bytes(data) for data in lines]
    assert list(zip(invalid.numpy().tolist(), control.numpy().tolist())) == expected
    # The chunk's totals, with the shortcut for ASCII chunks, agree.
    assert [int(total) for total in chunk_non_text_bytes(tf.constant(lines, tf.string))] == [
        sum(counts) for counts in zip(*expected)] if expected else [0, 0]


@fuzz
@given(corpora, st.integers(1, 4), st.integers(0, 2**31))
def test_pairs_stay_inside_the_vocabulary_and_inside_one_line(lines, window_size, seed):
    words = sorted({token for row in tokenize(tf.constant(lines, tf.string), PATTERN).to_list() for token in row})
    vocabulary = Vocabulary(tuple(word.decode("utf-8") for word in words), (1,) * len(words))
    ids = line_ids(lines, vocabulary)
    ragged = tf.ragged.constant(ids, dtype=tf.int32, ragged_rank=1, inner_shape=())
    keep = tf.ones([max(len(vocabulary), 1)])
    centres, contexts = skipgram_pairs(ragged, window_size, keep, tf.constant([seed, 0], tf.int64))
    pairs = list(zip(centres.numpy().tolist(), contexts.numpy().tolist()))
    # Every pair is two words of one line at most `window_size` apart.
    near = {(line[i], line[j]) for line in ids for i in range(len(line)) for j in range(len(line))
            if 0 < abs(i - j) <= window_size}
    assert all(pair in near for pair in pairs)
    if window_size == 1:
        assert collections.Counter(pairs) == adjacent_pairs(ids)


# Each example builds two tf.data pipelines (about half a second), so this one explores fewer examples.
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=corpora, batch_size=st.integers(1, 4), lines_per_chunk=st.integers(1, 5))
def test_vocabulary_and_training_batches_hold_every_token_and_no_pair_across_lines(lines, batch_size,
                                                                                    lines_per_chunk, tmp_path_factory):
    tokens = [token.decode("utf-8") for row in tokenize(tf.constant(lines, tf.string), PATTERN).to_list()
              for token in row]
    corpus = tf.data.Dataset.from_tensor_slices(lines)
    try:
        vocabulary = build_vocabulary(corpus, PATTERN, min_count=1, warn=lambda message: None)
    except UserError:
        # Only two refusals are possible: no words at all, or mostly bytes that are not text.
        non_text = sum(sum(reference_non_text_bytes(data)) for data in lines)
        assert not tokens or non_text > NON_TEXT_LIMIT * sum(map(len, lines))
        return
    assert dict(zip(vocabulary.words, vocabulary.counts)) == collections.Counter(tokens)
    assert list(vocabulary.counts) == sorted(vocabulary.counts, reverse=True)
    path = tmp_path_factory.mktemp("vocabulary") / "vocab.tsv"
    vocabulary.save(str(path))
    assert Vocabulary.load(str(path)) == vocabulary

    chunks = chunk_ids(corpus, vocabulary, PATTERN, lines_per_chunk)
    batches = list(training_batches(chunks, vocabulary, window_size=1, sample=0.0, batch_size=batch_size,
                                    noise_shape=(batch_size, 2), seed=3))
    size = len(vocabulary)
    pairs = collections.Counter()
    for batch in batches:
        for name in ("centres", "contexts", "noise"):
            assert np.all((batch[name].numpy() >= 0) & (batch[name].numpy() < size)), name
        # Every batch has batch_size rows; the padding that fills a chunk's last batch weighs 0.
        real = batch["weights"].numpy() == 1.0
        assert batch["centres"].shape[0] == batch_size and real.any() and set(batch["weights"].numpy()) <= {0.0, 1.0}
        pairs.update(zip(batch["centres"].numpy()[real].tolist(), batch["contexts"].numpy()[real].tolist()))
    # Window 1 and no subsampling: exactly the neighbours on each line, never the last word of one line
    # with the first of the next, even when both lines share a chunk.
    assert pairs == adjacent_pairs(line_ids(lines, vocabulary))


@pytest.mark.parametrize("data, expected", [
    (b"caf\xc3\xa9", (0, 0)),            # Valid two-byte e-acute.
    (b"caf\xe9", (1, 0)),                # Latin-1 e-acute: one invalid byte.
    (b"\xed\xa0\x80", (3, 0)),           # An encoded surrogate is not UTF-8: three invalid bytes.
    (b"\xef\xbf\xbd", (0, 0)),           # A real U+FFFD in the text is valid, not a replaced byte.
    (b"a\x00b\tc\x7f", (0, 2)),          # NUL and DEL are control characters; tab is text.
])
def test_non_text_bytes_by_hand(data, expected):
    invalid, control = non_text_bytes(tf.constant([data]))
    assert (int(invalid[0]), int(control[0])) == expected == reference_non_text_bytes(data)
