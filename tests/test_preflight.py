"""The checks before a training run writes anything (training/preflight.py), in-process on tiny inputs.

The subprocess table in test_bad_input.py covers what a user sees; these cover the rules behind it.
"""

import gzip
import os
import pathlib
import subprocess
import sys

import pytest
import tensorflow as tf
from conftest import ROOT

from config import Config
from data_pipeline.sources import corpus_lines
from errors import UserError
from model.optimizer import BatchSGD
from model.skipgram import SkipGram
from training.checkpoints import Progress, training_checkpoint
from training.model_directory import ModelDirectory
from training.preflight import listed_checkpoint, prepare_run


def tiny_config(corpus: pathlib.Path, **data) -> Config:
    config = Config()
    config.data.corpus, config.data.min_count, config.data.sample = [str(corpus)], 1, 0.0
    config.model.embedding_dim = 2
    for name, value in data.items():
        setattr(config.data, name, value)
    return config


def prepare(config: Config, model_dir: pathlib.Path):
    return prepare_run(config, ModelDirectory(model_dir), corpus_lines(config.data.corpus))


def save_checkpoint(model_dir: pathlib.Path, vocabulary_size: int, embedding_dim: int, step: int) -> None:
    checkpoint = training_checkpoint(SkipGram(vocabulary_size, embedding_dim), BatchSGD(), Progress())
    manager = tf.train.CheckpointManager(checkpoint, str(model_dir / "checkpoints"), 3)
    manager.save(checkpoint_number=step)


@pytest.fixture
def corpus(tmp_path) -> pathlib.Path:
    path = tmp_path / "corpus.txt"
    path.write_text("the cat sat on the mat\nthe dog sat on the log\n")  # 7 distinct words.
    return path


def test_a_fresh_run_writes_the_vocabulary_then_the_config(corpus, tmp_path):
    config = tiny_config(corpus)
    vocabulary = prepare(config, tmp_path / "model")
    assert vocabulary.words[0] == "the" and config.model.vocabulary_size == len(vocabulary) == 7
    assert sorted(path.name for path in (tmp_path / "model").iterdir()) == ["config.json", "vocab.tsv"]


def test_a_refused_run_leaves_no_model_directory_behind(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("one\nword\nper\nline\n")
    with pytest.raises(UserError, match="no training pairs"):
        prepare(tiny_config(words), tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_a_vocabulary_without_a_config_is_a_run_that_never_started_and_is_rebuilt(corpus, tmp_path):
    # vocab.tsv is written before config.json: alone, it is what a run killed between the two writes leaves.
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "vocab.tsv").write_text("word\tcount\nstale\t1\n")
    assert len(prepare(tiny_config(corpus), tmp_path / "model")) == 7


def test_a_short_corpus_trains_with_a_warning(tmp_path, capsys):
    hello = tmp_path / "hello.txt"
    hello.write_text("hello world\n")
    # Two words, window 5: every word reaches every other, which is worth a warning but not a refusal.
    assert len(prepare(tiny_config(hello), tmp_path / "model")) == 2
    assert capsys.readouterr().err == (
        "warning: the corpus has only 2 words in the vocabulary, no more than --window 5: every word is within "
        "reach of every other, so there is little to learn\n")


def test_a_model_dir_that_is_a_file_is_refused(corpus):
    with pytest.raises(UserError, match="is a file, not a directory"):
        prepare(tiny_config(corpus), corpus)


def test_a_vocabulary_and_config_of_different_sizes_are_refused(corpus, tmp_path):
    config = tiny_config(corpus)
    prepare(config, tmp_path / "model")
    vocabulary = (tmp_path / "model" / "vocab.tsv").read_text()
    (tmp_path / "model" / "vocab.tsv").write_text(vocabulary + "extra\t1\n")
    with pytest.raises(UserError, match="vocab.tsv holds 8 words but .*config.json says 7"):
        prepare(config, tmp_path / "model")


def test_a_checkpoint_of_other_shapes_is_refused(corpus, tmp_path):
    config = tiny_config(corpus)
    prepare(config, tmp_path / "model")
    save_checkpoint(tmp_path / "model", vocabulary_size=7, embedding_dim=3, step=5)
    with pytest.raises(UserError, match=r"holds E of shape \[7, 3\], but config.json and vocab.tsv make \[7, 2\]"):
        prepare(config, tmp_path / "model")


def test_a_damaged_checkpoint_list_is_refused_not_read_as_no_checkpoint(corpus, tmp_path):
    # tf.train.CheckpointManager would ignore it and start training afresh over the trained checkpoints.
    config = tiny_config(corpus)
    prepare(config, tmp_path / "model")
    save_checkpoint(tmp_path / "model", 7, 2, step=5)
    (tmp_path / "model" / "checkpoints" / "checkpoint").write_text("model_checkpoint_path: {")
    with pytest.raises(UserError, match="checkpoints/checkpoint is damaged"):
        prepare(config, tmp_path / "model")


def test_one_unlisted_checkpoint_is_a_first_save_cut_short_but_two_mean_a_lost_list(corpus, tmp_path):
    config = tiny_config(corpus)
    prepare(config, tmp_path / "model")
    save_checkpoint(tmp_path / "model", 7, 2, step=5)
    (tmp_path / "model" / "checkpoints" / "checkpoint").unlink()
    # Killed between writing its first checkpoint and listing it, a run restarts from step 0: it loses 5 steps,
    # no more than --checkpoint-every.
    assert listed_checkpoint(ModelDirectory(tmp_path / "model")) is None
    save_checkpoint(tmp_path / "model", 7, 2, step=10)
    (tmp_path / "model" / "checkpoints" / "checkpoint").unlink()
    with pytest.raises(UserError, match="holds 2 checkpoints but not the file 'checkpoint' that lists them"):
        prepare(config, tmp_path / "model")


def test_an_unfinished_checkpoint_write_is_cleared_when_the_next_run_starts(corpus, tmp_path):
    config = tiny_config(corpus)
    prepare(config, tmp_path / "model")
    save_checkpoint(tmp_path / "model", 7, 2, step=5)
    unfinished = tmp_path / "model" / "checkpoints" / "ckpt-10_temp"
    unfinished.mkdir()
    (unfinished / "part-00000-of-00001.data-00000-of-00001.tempstate123").write_bytes(b"")
    prepare(config, tmp_path / "model")
    assert not unfinished.exists()
    assert listed_checkpoint(ModelDirectory(tmp_path / "model")).endswith("ckpt-5")


def test_a_checkpoint_killed_while_its_index_was_written_is_removed_when_the_next_run_starts(corpus, tmp_path):
    # TensorFlow renames ckpt-N's data into place, then writes ckpt-N.index in place and lists it last: a kill in
    # between leaves a data file and a torn index that the list does not name.
    config = tiny_config(corpus)
    prepare(config, tmp_path / "model")
    save_checkpoint(tmp_path / "model", 7, 2, step=5)
    folder = tmp_path / "model" / "checkpoints"
    (folder / "ckpt-10.data-00000-of-00001").write_bytes(b"\0" * 64)
    (folder / "ckpt-10.index").write_bytes(b"\0" * 8)  # Shorter than an sstable's footer.
    prepare(config, tmp_path / "model")
    assert sorted(path.name for path in folder.glob("ckpt-*")) == ["ckpt-5.data-00000-of-00001", "ckpt-5.index"]
    tf.train.load_checkpoint(listed_checkpoint(ModelDirectory(tmp_path / "model")))


def test_a_config_json_with_text_where_a_number_belongs_names_the_file(corpus, tmp_path):
    prepare(tiny_config(corpus), tmp_path / "model")
    path = tmp_path / "model" / "config.json"
    path.write_text(path.read_text().replace('"embedding_dim": 2', '"embedding_dim": "two"'))
    with pytest.raises(UserError, match=r"config.json is not a config this version can read \(--dim must be a whole "
                                        r"number, not 'two'\)"):
        ModelDirectory(tmp_path / "model").saved_config()


def test_a_directory_given_as_the_corpus_is_refused_with_a_glob_to_use(tmp_path):
    (tmp_path / "texts").mkdir()
    with pytest.raises(UserError, match=r"is a directory: name its files, e.g. '.*texts/\*.txt'"):
        corpus_lines([str(tmp_path / "texts")])


def test_gzip_content_and_a_gz_name_must_agree(tmp_path):
    hidden = tmp_path / "hidden.txt"
    hidden.write_bytes(gzip.compress(b"some text\n"))
    with pytest.raises(UserError, match="is gzip-compressed: add .gz to its name"):
        corpus_lines([str(hidden)])
    fake = tmp_path / "fake.txt.gz"
    fake.write_bytes(b"plain text\n")
    with pytest.raises(UserError, match="ends in .gz but is not gzip-compressed: remove the .gz from its name"):
        corpus_lines([str(fake)])
    empty = tmp_path / "empty.gz"
    empty.write_bytes(b"")  # An empty file is no gzip stream, but no text either: read as an empty corpus.
    assert list(corpus_lines([str(empty)]).as_numpy_iterator()) == []


HOLD_LOCK = ("import pathlib, sys; from training.model_directory import ModelDirectory; "
             "from training.preflight import hold_lock; hold_lock(ModelDirectory(pathlib.Path(sys.argv[1])))")


def test_a_second_run_on_a_model_dir_in_use_is_refused(corpus, tmp_path):
    config = tiny_config(corpus)
    prepare(config, tmp_path / "model")  # This process now holds the directory's lock; a second call may go on.
    prepare(config, tmp_path / "model")
    other_run = subprocess.run(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path / "model")],
        capture_output=True, text=True, cwd=ROOT, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert other_run.returncode == 1
    assert "UserError: another run is training in --model-dir" in other_run.stderr
