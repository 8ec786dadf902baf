"""Corpus sources: plain and gzip files, globs, the embedded corpus, and a TFDS dataset prepared locally."""

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from data_pipeline.sources import EMBEDDED_CORPUS, corpus_lines, cut_long_lines, text_chunks
from errors import UserError


def read(dataset: tf.data.Dataset) -> list[str]:
    return [line.decode("utf-8") for line in dataset.as_numpy_iterator()]


def test_plain_and_gzip_files_give_the_same_lines(tiny_corpus, tiny_gzip_corpus):
    assert read(corpus_lines([str(tiny_corpus)])) == read(corpus_lines([str(tiny_gzip_corpus)]))


def test_a_glob_reads_every_matching_file(tmp_path):
    (tmp_path / "a.txt").write_text("one\ntwo\n")
    (tmp_path / "b.txt").write_text("three\n")
    assert sorted(read(corpus_lines([str(tmp_path / "*.txt")]))) == ["one", "three", "two"]


def test_a_path_that_matches_nothing_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="matches no file"):
        corpus_lines([str(tmp_path / "missing*.txt")])


def test_no_corpus_means_the_embedded_wordnet_glosses():
    assert EMBEDDED_CORPUS.exists()
    first = read(corpus_lines([]).take(1))
    assert first == ["that which is perceived or known or inferred to have its own distinct existence (living or nonliving)"]


def test_a_tfds_dataset_prepared_locally_is_read_by_name(tmp_path):
    tfds.dataset_builders.store_as_tfds_dataset(
        name="tiny_reviews",
        version="1.0.0",
        features=tfds.features.FeaturesDict({"text": tfds.features.Text(), "label": tf.int64}),
        split_datasets={"train": tf.data.Dataset.from_tensor_slices(
            {"text": ["a good film", "a bad film"], "label": [1, 0]})},
        data_dir=str(tmp_path),
    )
    lines = corpus_lines([], tfds_name="tiny_reviews", tfds_split="train", tfds_feature="text",
                         tfds_data_dir=str(tmp_path))
    assert sorted(read(lines)) == ["a bad film", "a good film"]


def test_a_tfds_dataset_that_is_not_prepared_says_how_to_prepare_it(tmp_path):
    with pytest.raises(UserError, match="tfds build"):
        corpus_lines([], tfds_name="imdb_reviews", tfds_data_dir=str(tmp_path))


def cut(lines: list[str], max_bytes: int) -> list[str]:
    return [piece.decode("utf-8") for piece in cut_long_lines(tf.constant(lines), max_bytes).numpy().tolist()]


def test_a_long_line_is_cut_at_the_last_whitespace_before_each_cut():
    # 15 bytes, at most 6 a piece: byte cuts after "aaa bb" and "b ccc ", then each piece's partial last word
    # ("bb", "") moves to the next piece. The short line in between is kept as it is.
    assert cut(["aaa bbb ccc ddd", "short"], 6) == ["aaa ", "bbb ccc ", "ddd", "short"]
    # A cut never falls inside a UTF-8 character. "aéé ééé" is 12 bytes: cuts at bytes 4 and 8, but byte 4 is inside
    # the second "é" (bytes 3-4), so that cut moves back to 3: pieces "aé", "é é", "éé". The first has no whitespace
    # and moves on whole (leaving an empty line, which holds no word); no piece holds a broken character.
    assert cut(["aéé ééé"], 4) == ["", "aéé ", "ééé"]
    # A piece without whitespace is carried whole into the next piece: a "word" longer than a piece is the only
    # thing ever cut, and no byte is lost.
    assert "".join(cut(["x" * 20], 6)) == "x" * 20
    # A chunk without a long line comes back as it is.
    assert cut(["a b", "c"], 6) == ["a b", "c"]


def test_a_chunk_with_much_text_is_split_in_order_and_one_within_the_limits_is_kept_whole():
    lines = tf.data.Dataset.from_tensor_slices(["aaaa"] * 10)
    # Chunks of 4 lines of 5 bytes (with their line breaks), at most 12 bytes a chunk: 3 lines, then 1.
    chunks = [chunk.numpy().tolist() for chunk in text_chunks(lines, 4, max_chunk_bytes=12)]
    assert [len(chunk) for chunk in chunks] == [3, 1, 3, 1, 2]
    assert [len(chunk.numpy()) for chunk in text_chunks(lines, 4)] == [4, 4, 2]


@pytest.mark.parametrize("name, suggestion", [
    ("imdb_review", "did you mean imdb_reviews?"),  # TFDS's catalogue has imdb_reviews.
    ("no_such_dataset_xyz", "check the spelling (tfds.list_builders() lists the names TFDS knows)"),
])
def test_an_unknown_tfds_name_is_called_unknown_with_the_closest_known_names(tmp_path, name, suggestion):
    with pytest.raises(UserError) as raised:
        corpus_lines([], tfds_name=name, tfds_data_dir=str(tmp_path))
    assert str(raised.value) == f"TFDS knows no dataset named {name!r}: {suggestion}"
