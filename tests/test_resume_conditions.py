"""Resuming never trains silently on other data: the corpus is saved as the files it was (absolute paths, sizes,
fingerprints), the data position with the layout that counts it, and a finished run says so.

The one-line refusals a user sees are rows of the bad-input table (test_bad_input.py); these check the rules.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf
from conftest import ROOT, TOPIC_LINES, run_script, tiny_flags

from config import Config
from data_pipeline.corpus_identity import FINGERPRINT_BYTES, corpus_change, corpus_identity
from errors import UserError
from model.optimizer import BatchSGD
from model.skipgram import SkipGram
from training.checkpoints import SINGLE_PROCESS, Progress, training_checkpoint
from training.model_directory import ModelDirectory
from training.preflight import check_position_layout, settled_corpus_files


def file_record(path: str, size: int, fingerprint: str) -> dict:
    return {"path": path, "bytes": size, "fingerprint": fingerprint}


def test_a_corpus_is_the_same_when_its_files_hold_the_same_content_in_the_same_order():
    a, b = file_record("/texts/a.txt", 10, "aaa"), file_record("/texts/b.txt", 20, "bbb")
    assert corpus_change([a, b], [a, b]) is None
    moved = [file_record("/elsewhere/a.txt", 10, "aaa"), file_record("/elsewhere/b.txt", 20, "bbb")]
    assert corpus_change([a, b], moved) is None  # A corpus moved elsewhere is the same corpus.
    assert corpus_change([a, b], [b, a]) == "the same files are read in another order"
    assert corpus_change([a], [a, b]) == "/texts/b.txt is new"
    assert corpus_change([a, b], [a]) == "/texts/b.txt is no longer in it"
    grown = file_record("/texts/b.txt", 25, "ccc")
    assert corpus_change([a, b], [a, grown]) == "/texts/b.txt changed (20 bytes then, 25 now)"
    many = [file_record(f"/texts/{n}.txt", n, str(n)) for n in range(5)]
    assert corpus_change([a], [a, *many]) == "/texts/0.txt, /texts/1.txt, /texts/2.txt and 2 more are new"


def test_the_fingerprint_sees_a_change_at_either_end_of_a_large_file_but_not_a_move(tmp_path):
    text = b"word " * (FINGERPRINT_BYTES // 2)  # 160 KB: a head and a tail that do not overlap, and a middle.
    path = tmp_path / "big.txt"
    path.write_bytes(text)
    original = corpus_identity([str(path)])[0]
    for offset in (0, len(text) - 1):
        path.write_bytes(text[:offset] + b"X" + text[offset + 1:])  # Same size, one byte changed.
        assert corpus_identity([str(path)])[0]["fingerprint"] != original["fingerprint"]
    moved = tmp_path / "moved.txt"
    moved.write_bytes(text)
    assert corpus_identity([str(moved)])[0]["fingerprint"] == original["fingerprint"]


def test_relative_corpus_paths_and_globs_are_saved_as_absolute_files(tmp_path, monkeypatch):
    (tmp_path / "texts").mkdir()
    for name in ("a.txt", "b.txt"):
        (tmp_path / "texts" / name).write_text("some words here\n")
    monkeypatch.chdir(tmp_path)
    data = Config().data
    data.corpus = ["texts/*.txt"]
    files = settled_corpus_files(data)
    assert files == [str(tmp_path / "texts" / "a.txt"), str(tmp_path / "texts" / "b.txt")]
    assert data.corpus == [str(tmp_path / "texts" / "*.txt")]
    assert [file["path"] for file in data.corpus_files] == files

    # From another directory, the saved absolute glob reads the same files; a new match is refused, naming it.
    monkeypatch.chdir(tmp_path / "texts")
    assert settled_corpus_files(data) == files
    (tmp_path / "texts" / "c.txt").write_text("a new file\n")
    with pytest.raises(UserError, match=r"the corpus is not the one this run trained on: c.txt is new; its "
                                        r"vocabulary and data position belong to the files listed as corpus_files"):
        settled_corpus_files(data)
    # Named as the files it trained on, in their order, the corpus resumes.
    data.corpus = files
    assert settled_corpus_files(data) == files


def save_progress(model_dir: pathlib.Path, batch_size: int, replicas: int, chunk: int, batch: int) -> str:
    progress = Progress()
    progress.epoch.assign(2)
    progress.chunk.assign(chunk)
    progress.batch.assign(batch)
    progress.layout.assign([batch_size, replicas])
    manager = tf.train.CheckpointManager(training_checkpoint(SkipGram(7, 2), BatchSGD(), progress),
                                         str(model_dir / "checkpoints"), 3)
    return manager.save(checkpoint_number=100)


def test_a_position_inside_an_epoch_resumes_only_in_the_layout_that_counted_it(tmp_path):
    inside = save_progress(tmp_path / "inside", batch_size=512, replicas=SINGLE_PROCESS, chunk=0, batch=37)
    check_position_layout(inside, 512, SINGLE_PROCESS)
    with pytest.raises(UserError, match=r"stopped inside epoch 3, at a data position counted in batches of 512 pairs "
                                        r"in one process; this run trains batches of 1,024 pairs in one process"):
        check_position_layout(inside, 1024, SINGLE_PROCESS)
    mirrored = save_progress(tmp_path / "mirrored", batch_size=512, replicas=2, chunk=0, batch=100)
    with pytest.raises(UserError, match=r"counted in batches of 512 pairs on each of 2 tf.distribute replicas; this "
                                        r"run trains batches of 512 pairs in one process .* resume with the "
                                        r"--distribute and TF_CONFIG it had \(2 replicas\)"):
        check_position_layout(mirrored, 512, SINGLE_PROCESS)


def test_a_position_at_the_start_of_an_epoch_resumes_in_any_layout(tmp_path):
    boundary = save_progress(tmp_path, batch_size=512, replicas=2, chunk=0, batch=0)
    check_position_layout(boundary, 64, SINGLE_PROCESS)


@pytest.mark.slow
def test_a_finished_run_says_so_and_how_to_train_further(trained_model_dir, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(trained_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    before = {path: path.read_bytes() for path in model.rglob("*") if path.is_file()}
    # The same command again, from another directory, with the corpus as config.json recorded it.
    again = run_script("train.py", *tiny_flags(pathlib.Path(config["data"]["corpus"][0]), model))
    assert again.returncode == 0, again.stderr
    steps = int(tf.train.load_variable(tf.train.latest_checkpoint(str(model / "checkpoints")),
                                       "progress/step/.ATTRIBUTES/VARIABLE_VALUE"))
    assert again.stdout.splitlines()[-1] == (
        f"{model} has already trained 1 of 1 epochs ({steps:,} steps): nothing to do; to train further, run again "
        "with --epochs 2 or more")
    assert "resuming" not in again.stdout and "words/s" not in again.stdout
    after = {path: path.read_bytes() for path in model.rglob("*") if path.is_file()}
    assert after == before  # Not even a new TensorBoard events file.


def run_script_in(directory: pathlib.Path, *flags: str) -> subprocess.CompletedProcess:
    """train.py run from `directory`, as a user in another folder would."""
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *flags], capture_output=True, text=True,
                          cwd=directory, timeout=180, check=False, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


@pytest.mark.slow
def test_a_run_started_with_a_relative_corpus_path_resumes_from_another_directory(tmp_path):
    (tmp_path / "start").mkdir()
    (tmp_path / "start" / "corpus.txt").write_text("\n".join(TOPIC_LINES * 25) + "\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "corpus.txt").write_text("other text entirely, which must not be read\n")
    model = tmp_path / "model"
    flags = [*tiny_flags(pathlib.Path("corpus.txt"), model)[2:], "--batch-size", "16"]
    first = run_script_in(tmp_path / "start", "--corpus", "corpus.txt", *flags, "--max-steps", "10")
    assert first.returncode == 0, first.stderr
    resumed = run_script_in(tmp_path / "elsewhere", *flags)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout
    config = ModelDirectory(model).saved_config()
    assert config.data.corpus_files[0]["path"] == str(tmp_path / "start" / "corpus.txt")
    # The same relative path given again there names another file: refused, not trained on.
    other = run_script_in(tmp_path / "elsewhere", "--corpus", "corpus.txt", *flags, "--epochs", "2")
    assert other.returncode == 2
    assert "the corpus is not the one this run trained on: corpus.txt is new; " in other.stderr
