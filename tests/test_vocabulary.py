"""The vocabulary: counted by streaming, cut by min-count and max-vocab, frequency-sorted, saved with counts."""

import collections

import pytest
import tensorflow as tf

from config import TOKEN_PATTERN
from data_pipeline.tokenize import standardize, tokenize
from data_pipeline.vocabulary import TOKEN_CHUNK_SPEC, Vocabulary, build_vocabulary, prune_rarest, token_chunks
from errors import UserError

PATTERN = TOKEN_PATTERN


def lines(*texts: str) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(list(texts))


def test_a_whole_token_cache_is_read_back_as_the_tokenizer_made_it_without_tokenising_again(tmp_path):
    # TOKEN_CHUNK_SPEC stands for the tokenizer's output when the cache is read: the same structure, the same values.
    text = lines("The cat sat", "", b"caf\xe9 the\x01 dog", "dog cat sat")
    cache = str(tmp_path / "tokens")
    tokenized = token_chunks(text, PATTERN, lines_per_chunk=2)
    assert tokenized.element_spec == TOKEN_CHUNK_SPEC
    written = list(token_chunks(text, PATTERN, lines_per_chunk=2, cache_path=cache).as_numpy_iterator())
    # An unreadable corpus shows that the whole cache is read without running the tokenizer's input.
    unreadable = tf.data.TextLineDataset(str(tmp_path / "missing.txt"))
    read = token_chunks(unreadable, PATTERN, lines_per_chunk=2, cache_path=cache)
    assert read.element_spec == TOKEN_CHUNK_SPEC
    read = list(read.as_numpy_iterator())
    assert len(read) == len(written) == 2
    for made, kept in zip(written, read):
        assert made.keys() == kept.keys()
        for name in made:
            assert made[name].tolist() == kept[name].tolist(), name
    assert read[1]["words"].tolist() == [b"caf", b"the", b"dog", b"cat", b"sat"]
    assert (read[1]["invalid_bytes"], read[1]["control_bytes"]) == (1, 1)


def test_tokenize_lowercases_and_splits_on_the_pattern():
    tokens = tokenize(tf.constant(["The King's  horse, RUNS!", ""]), PATTERN)
    assert tokens.to_list() == [[b"the", b"king", b"s", b"horse", b"runs"], []]


def test_standardize_lowercases_any_script_and_leaves_a_standardised_word_as_it_is():
    words = tf.constant(["King", "ÉCOLE", "ΣΟΦΙΑ", "straße", b"bad\xffbyte", ""])
    standardised = standardize(words)
    assert [word.decode() for word in standardised.numpy().tolist()] == [
        "king", "école", "σοφια", "straße", "bad\ufffdbyte", ""]
    # Idempotent: every vocabulary word (made by tokenize, which standardises first) looks itself up.
    assert standardize(standardised).numpy().tolist() == standardised.numpy().tolist()
    assert standardize(tf.constant([["A", "b"], ["C", ""]])).shape == (2, 2)  # Any shape.


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


def test_pruning_drops_every_word_at_or_below_the_threshold_it_needs():
    # Budget 2 words: a threshold t must leave at most 2 words counted above t. t = 3 leaves a, b, c (3 > 2);
    # t = 4 leaves a alone. The tie b = c = 4 goes together, so the result never depends on dictionary order.
    counts = collections.Counter({b"a": 5, b"b": 4, b"c": 4, b"d": 2, b"e": 1})
    assert prune_rarest(counts, max_words=2, min_reduce=1) == 5
    assert counts == {b"a": 5}


def test_pruning_below_the_budget_changes_nothing():
    counts = collections.Counter({b"a": 5, b"b": 4})
    assert prune_rarest(counts, max_words=2, min_reduce=3) == 3
    assert counts == {b"a": 5, b"b": 4}


def test_counting_with_a_memory_budget_prunes_the_rarest_words_as_word2vec_does():
    # One line per chunk, at most 3 distinct words held:
    #   "a a a b b c"  a3 b2 c1            3 words: kept
    #   "d e"          a3 b2 c1 d1 e1      5 > 3: drop counts <= 1 (c, d, e), next threshold 2
    #   "a b d"        a4 b3 d1            3 words: kept
    #   "e f b"        a4 b4 d1 e1 f1      5 > 3: drop counts <= 2 (d, e, f), next threshold 3
    # Unpruned, d and e would have counted 2 each: pruning trades exact counts of rare words for memory.
    corpus = lines("a a a b b c", "d e", "a b d", "e f b")
    pruned = build_vocabulary(corpus, PATTERN, min_count=1, lines_per_chunk=1, max_words_in_memory=3)
    assert dict(zip(pruned.words, pruned.counts)) == {"a": 4, "b": 4}
    unpruned = build_vocabulary(corpus, PATTERN, min_count=1, lines_per_chunk=1, max_words_in_memory=0)
    assert dict(zip(unpruned.words, unpruned.counts)) == {"a": 4, "b": 4, "d": 2, "e": 2, "c": 1, "f": 1}
