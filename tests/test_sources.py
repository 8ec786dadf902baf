"""Corpus sources: plain and gzip files, globs, the embedded corpus, and a TFDS dataset prepared locally."""

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from data_pipeline.sources import EMBEDDED_CORPUS, corpus_lines
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


@pytest.mark.parametrize("name, suggestion", [
    ("imdb_review", "did you mean imdb_reviews?"),  # TFDS's catalogue has imdb_reviews.
    ("no_such_dataset_xyz", "check the spelling (tfds.list_builders() lists the names TFDS knows)"),
])
def test_an_unknown_tfds_name_is_called_unknown_with_the_closest_known_names(tmp_path, name, suggestion):
    with pytest.raises(UserError) as raised:
        corpus_lines([], tfds_name=name, tfds_data_dir=str(tmp_path))
    assert str(raised.value) == f"TFDS knows no dataset named {name!r}: {suggestion}"
