"""A disk that fills up or turns read-only, wherever a run writes: one line naming what could not be written, where
and how much space is free there, exit code 1, and nothing saved lost. On real file systems the tests mount: a
small tmpfs filled to the last byte, and read-only bind mounts (root only; skipped elsewhere, with the reason).
"""

import contextlib
import json
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, TOPIC_LINES, run_script
from mounts import fill, read_only, tmpfs, unmount, why_mounting_is_not_permitted

from config import MEAN_LOSS_SCORE, Config
from data_pipeline.pairs import chunk_ids
from data_pipeline.sources import corpus_lines
from data_pipeline.vocabulary import Vocabulary
from errors import ResourceError
from exporting.export_directory import write_export
from exporting.trained_embeddings import TrainedEmbeddings
from model.optimizer import BatchSGD
from model.skipgram import SkipGram
from storage import write_text_atomically
from training.checkpoints import Progress, training_checkpoint
from training.evaluation_hooks import BestCheckpoint, BestScore, write_best_score
from training.failures import explained_failures
from training.model_directory import ModelDirectory
from training.tensorboard import TrainingLog


@pytest.fixture
def disk(tmp_path) -> pathlib.Path:
    """A 1 MB tmpfs of the test's own, unmounted at the end."""
    reason = why_mounting_is_not_permitted()
    if reason:
        pytest.skip(reason)
    with tmpfs(tmp_path / "disk", "1m") as mounted:
        yield mounted


@contextlib.contextmanager
def unwritable(disk: pathlib.Path, condition: str):
    """The disk filled to its last byte, or made read-only, for the block."""
    if condition == "full":
        ballast = fill(disk)
        try:
            yield
        finally:
            ballast.unlink()
    else:
        with read_only(disk):
            yield


REASONS = {"full": r"no space left on device \(0 bytes free there\)",
           "read-only": r"read-only file system \([\d.]+ [KM]B free there\)"}


def tiny_vocabulary() -> Vocabulary:
    return Vocabulary(("the", "king", "queen", "a", "cat"), (5, 2, 2, 1, 1))


def write_vocabulary(directory: ModelDirectory) -> None:
    tiny_vocabulary().save(str(directory.vocabulary_path))


def write_config(directory: ModelDirectory) -> None:
    directory.save_config(Config())


def write_checkpoint(directory: ModelDirectory) -> None:
    checkpoint = training_checkpoint(SkipGram(5, 64), BatchSGD(), Progress())
    tf.train.CheckpointManager(checkpoint, str(directory.checkpoints), 3).save(checkpoint_number=7)


def tensorboard_log(directory: ModelDirectory) -> TrainingLog:
    config = Config()
    config.model.embedding_dim = 64
    return TrainingLog(directory.logs, tiny_vocabulary(), config)


def write_token_ids(directory: ModelDirectory) -> None:
    corpus = directory.root.parent.parent / "corpus.txt"
    corpus.write_text("\n".join(TOPIC_LINES * 100) + "\n")
    directory.id_cache.mkdir()
    chunks = chunk_ids(corpus_lines([str(corpus)]), tiny_vocabulary(), Config().data.token_pattern, 16)

    @tf.function
    def read_all(iterator) -> None:  # As training reads its batches: inside a compiled loop.
        while iterator.get_next_as_optional().has_value():
            pass

    read_all(iter(chunks.cache(str(directory.id_cache / "ids"))))


def keep_best(directory: ModelDirectory) -> None:
    """--keep-best after an epoch with a new best: the best checkpoint, then best.json."""
    config = Config()
    config.training.keep_best = MEAN_LOSS_SCORE
    checkpoint = training_checkpoint(SkipGram(5, 64), BatchSGD(), Progress())
    BestCheckpoint(config.training, checkpoint, directory.best).after_epoch(1, 7, {MEAN_LOSS_SCORE: 1.0})


def write_best_record(directory: ModelDirectory) -> None:
    write_best_score(directory.best, BestScore(MEAN_LOSS_SCORE, 1.0, 1, 7))


def export(directory: ModelDirectory) -> None:
    trained = TrainedEmbeddings(("the", "king"), np.ones([2, 4], np.float32), 3, Config().data.token_pattern)
    write_export(trained, directory.root / "exports", 3, ["savedmodel", "word2vec"])


# What a run writes, how to write it, and the line a full or read-only disk gets.
WRITERS = {
    "vocabulary": (write_vocabulary, r"the vocabulary to model/vocab.tsv"),
    "config": (write_config, r"the config to model/config.json"),
    "checkpoint": (write_checkpoint, r"(checkpoint ckpt-7|a checkpoint) to model/checkpoints"),
    "events": (lambda directory, log: ([log.scalars(step, loss=1.0) for step in range(1000)], log.writer.flush()),
               r"TensorBoard events to model/logs/train"),
    "projector": (lambda directory, log: log.write_projector(3, tf.ones([5, 64])),
                  r"the projector snapshot to model/logs/train/metadata.tsv"),
    "token-ids": (write_token_ids, r"the token-id cache to model/id-cache"),
    "best-checkpoint": (keep_best, r"the best checkpoint( best-7)? to model/best"),  # (not when best/ is refused)
    "best-record": (write_best_record, r"the best epoch's record to model/best/best.json"),
    "export": (export, r"export version 3 to model/exports"),
    "metrics": (lambda directory: write_text_atomically(directory.root / "metrics.json", "{}", "the metrics file"),
                r"the metrics file to model/metrics.json"),
}


@pytest.mark.parametrize("condition", ["full", "read-only"])
@pytest.mark.parametrize("artifact", WRITERS)
def test_each_write_of_a_run_on_a_full_or_read_only_disk_is_one_line_naming_it(artifact, condition, disk,
                                                                                 monkeypatch):
    if (artifact, condition) == ("events", "read-only"):
        pytest.skip("a file open for writing keeps writing through a read-only bind mount made after it was opened")
    monkeypatch.chdir(disk.parent)  # Messages show paths relative to the working directory.
    directory = ModelDirectory(pathlib.Path("disk/model"))
    directory.root.mkdir()
    write, expected = WRITERS[artifact]
    arguments = [directory]
    if artifact in ("events", "projector"):
        arguments.append(tensorboard_log(directory))  # Made while there is room: a run makes it at its start.
    if artifact == "best-record":
        directory.best.mkdir()  # Made with the best checkpoint, just before the record.
    files = lambda: sorted(path.name for path in disk.rglob("*") if path.is_file())
    before = files()

    with unwritable(disk, condition), pytest.raises(ResourceError) as raised, explained_failures(directory):
        write(*arguments)

    message = str(raised.value)
    assert re.match(rf"cannot write {expected.replace('model/', 'disk/model/')}: {REASONS[condition]}", message), \
        message
    assert "\n" not in message
    if artifact in ("checkpoint", "events", "projector", "token-ids", "best-checkpoint", "best-record"):
        # Failures inside training say what is intact.
        assert message.endswith("no checkpoint had been saved yet: " + (
            "free some space" if condition == "full" else "make it writable") + " and run the same command again to "
            "start afresh")
    if artifact not in ("events", "projector", "token-ids"):  # Nothing half-written is left to hold the space.
        assert files() == before


def run_in(work: pathlib.Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *flags], capture_output=True, text=True,
                          cwd=work, timeout=300, check=False)


def final_embeddings(model_dir: pathlib.Path) -> np.ndarray:
    return tf.train.load_variable(tf.train.latest_checkpoint(str(model_dir / "checkpoints")),
                                  "E/.ATTRIBUTES/VARIABLE_VALUE")


@pytest.mark.slow
def test_a_disk_that_fills_during_training_loses_nothing_saved_and_the_same_command_resumes(disk, tmp_path):
    (tmp_path / "corpus.txt").write_text("\n".join(TOPIC_LINES * 25) + "\n")
    # dim 300: a checkpoint takes 47 KB, far more than the other writes between two checkpoints.
    flags = ["--corpus", "corpus.txt", "--dim", "300", "--min-count", "1", "--batch-size", "16", "--epochs", "2",
             "--sample", "0", "--checkpoint-every", "25"]
    uninterrupted = run_in(tmp_path, *flags, "--model-dir", "uninterrupted")
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    model_flags = [*flags, "--model-dir", "disk/model"]
    assert run_in(tmp_path, *model_flags, "--max-steps", "30").returncode == 0

    # 24 KB left: the run resumes, trains, and cannot write its next checkpoint (ckpt-50).
    ballast = fill(disk, leave=24 * 1024)
    failed = run_in(tmp_path, *model_flags)
    assert failed.returncode == 1
    assert re.fullmatch(
        r"error: cannot write checkpoint ckpt-50 to disk/model/checkpoints: no space left on device \([\d.]+ KB free "
        r"there\); checkpoint disk/model/checkpoints/ckpt-30 \(step 30\) is intact: free some space and run the same "
        r"command to resume from it\n", failed.stderr), failed.stderr
    assert not (disk / "model" / "id-cache").exists()
    assert not list((disk / "model" / "checkpoints").glob("ckpt-50*"))  # The unfinished write is gone.
    # What was saved is whole: the listed checkpoint loads, and exports.
    assert tf.train.latest_checkpoint(str(disk / "model" / "checkpoints")).endswith("ckpt-30")
    exported = run_script("export.py", "--model-dir", str(disk / "model"), "--export-dir", str(tmp_path / "exports"))
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "exports" / "30" / "saved_model.pb").exists()

    # Once there is room, the same command resumes from step 30 (the 20 steps after it are trained again: fewer
    # than --checkpoint-every) and ends where the run that never lacked space ended, with the same E.
    ballast.unlink()
    resumed = run_in(tmp_path, *model_flags)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from disk/model/checkpoints/ckpt-30 at step 30" in resumed.stdout
    # The final line counts this run's steps, and all of them when it resumed: "trained 531 steps (step 561 in all)".
    steps = lambda result: re.search(r"trained ([\d,]+) steps(?: \(step ([\d,]+) in all\))?", result.stdout).groups()
    assert steps(resumed)[1] == steps(uninterrupted)[0] and steps(uninterrupted)[1] is None
    np.testing.assert_allclose(final_embeddings(disk / "model"), final_embeddings(tmp_path / "uninterrupted"),
                               atol=1e-6)


@pytest.mark.slow
def test_a_model_directory_on_a_read_only_file_system_is_read_by_export_and_evaluate_and_refused_by_train(
        trained_model_dir, tmp_path):
    reason = why_mounting_is_not_permitted()
    if reason:
        pytest.skip(reason)
    model = tmp_path / "model"
    shutil.copytree(trained_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    with read_only(model):
        before = {path: path.read_bytes() for path in model.rglob("*") if path.is_file()}
        refused = run_script("train.py", "--model-dir", str(model), "--epochs", "2")
        exported = run_script("export.py", "--model-dir", str(model), "--export-dir", str(tmp_path / "exports"),
                              "--format", "word2vec")
        evaluated = run_script("evaluate.py", "--model-dir", str(model), "--neighbours", "king", "--top", "2")
        after = {path: path.read_bytes() for path in model.rglob("*") if path.is_file()}

    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == (
        f"error: --model-dir {model} is on a read-only file system: training writes its checkpoints and logs there; "
        "export.py and evaluate.py can still read a model directory there, and to train further, copy it somewhere "
        "writable and pass that --model-dir\n")
    assert exported.returncode == 0, exported.stderr
    words = (tmp_path / "exports").glob("*/word2vec.txt")
    assert next(words).read_text().splitlines()[0] == f"{config['model']['vocabulary_size']} 2"
    assert evaluated.returncode == 0, evaluated.stderr
    assert re.search(r"^king: \S+ [-\d.]+, \S+ [-\d.]+$", evaluated.stdout, flags=re.MULTILINE)
    assert after == before


def test_mounts_made_by_the_tests_are_gone(tmp_path):
    # Guards the guard: the tmpfs and read-only mounts above unmount themselves, even when a test fails.
    if why_mounting_is_not_permitted():
        pytest.skip(why_mounting_is_not_permitted())
    with tmpfs(tmp_path / "a", "64k"), read_only(tmp_path / "a"):
        pass
    mounts = pathlib.Path("/proc/self/mounts").read_text()
    assert str(tmp_path) not in mounts
    unmount(tmp_path / "a")  # Unmounting what is not mounted is harmless.
