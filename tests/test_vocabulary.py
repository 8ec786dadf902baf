"""The vocabulary: counted by streaming, cut by min-count and max-vocab, frequency-sorted, saved with counts."""

import pytest
import tensorflow as tf

from data_pipeline.tokenize import tokenize
from data_pipeline.vocabulary import Vocabulary, build_vocabulary
from errors import UserError

PATTERN = r"[^\pL\pN]+"


def lines(*texts: str) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(list(texts))


def test_tokenize_lowercases_and_splits_on_the_pattern():
    tokens = tokenize(tf.constant(["The King's  horse, RUNS!", ""]), PATTERN)
    assert tokens.to_list() == [[b"the", b"king", b"s", b"horse", b"runs"], []]


def test_invalid_utf8_becomes_a_separator():
    tokens = tokenize(tf.constant([b"good\xff\xfebytes"]), PATTERN)
    assert tokens.to_list() == [[b"good", b"bytes"]]


def test_words_are_sorted_by_count_then_alphabetically():
    # the: 3, cat: 2, dog: 2, sat: 1 -> ties (cat, dog) in alphabetical order.
    vocabulary = build_vocabulary(lines("the cat sat", "the dog", "the cat dog"), PATTERN, min_count=1,
                                  lines_per_chunk=2)
    assert vocabulary.words == ("the", "cat", "dog", "sat")
    assert vocabulary.counts == (3, 2, 2, 1)
    assert vocabulary.total_words == 8


def test_min_count_and_max_vocab_cut_the_vocabulary():
    corpus = lines("the cat sat", "the dog", "the cat dog")
    assert build_vocabulary(corpus, PATTERN, min_count=2).words == ("the", "cat", "dog")
    assert build_vocabulary(corpus, PATTERN, min_count=1, max_vocab=2).words == ("the", "cat")


def test_a_min_count_that_leaves_nothing_is_a_clear_error():
    with pytest.raises(UserError, match="--min-count 10 leaves no words"):
        build_vocabulary(lines("the cat sat"), PATTERN, min_count=10)


def test_an_empty_corpus_is_a_clear_error():
    with pytest.raises(UserError, match="no words"):
        build_vocabulary(lines("", "  ,, "), PATTERN, min_count=1)


def test_vocabulary_round_trips_through_its_file(tmp_path):
    vocabulary = Vocabulary(("the", "café", "a"), (10, 3, 1))
    vocabulary.save(str(tmp_path / "vocab.tsv"))
    assert (tmp_path / "vocab.tsv").read_text(encoding="utf-8").splitlines()[:2] == ["word\tcount", "the\t10"]
    assert Vocabulary.load(str(tmp_path / "vocab.tsv")) == vocabulary
