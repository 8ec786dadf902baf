"""Interrupted training loses nothing: Ctrl-C and SIGTERM save a checkpoint and exit cleanly; SIGKILL at any
moment, even while a checkpoint is being written, leaves the last listed checkpoint readable; and runs resumed
after any of these end at exactly the step count of a run never interrupted."""

import os
import pathlib
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, TOPIC_LINES

CHECKPOINT_EVERY = 25
# 100 lines of the two topics (975 words), every word kept, window 5: about 280 batches of 16 pairs per epoch,
# so six epochs give a few seconds of training with a checkpoint every 25 steps: long enough that a signal sent
# 0.2 s after a checkpoint lands inside the training loop (two epochs could end first once steps got faster).
FLAGS = ["--corpus", "corpus.txt", "--model-dir", "model", "--dim", "2", "--min-count", "1", "--batch-size", "16",
         "--epochs", "6", "--sample", "0", "--checkpoint-every", str(CHECKPOINT_EVERY)]


def new_work_directory(path: pathlib.Path) -> pathlib.Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "corpus.txt").write_text("\n".join(TOPIC_LINES * 25) + "\n")
    return path


def start_training(work: pathlib.Path, environment: dict | None = None) -> subprocess.Popen:
    """train.py in a subprocess, its progress lines appended to stdout.txt (the child keeps the file open)."""
    with open(work / "stdout.txt", "a") as log:
        return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *FLAGS], cwd=work, stdout=log,
                                stderr=subprocess.PIPE, text=True, env=environment)


def checkpoint_entries(work: pathlib.Path) -> set[str]:
    """Names of everything a checkpoint write creates: ckpt-N.index, ckpt-N.data-..., and its ckpt-N_temp folder."""
    folder = work / "model" / "checkpoints"
    return {path.name for path in folder.glob("ckpt-*")} if folder.exists() else set()


def wait_for_new_checkpoint_entry(work: pathlib.Path, process: subprocess.Popen, seen: set[str]) -> bool:
    """Polls every millisecond until a checkpoint file appears that was not there before (a write has begun)."""
    while process.poll() is None:
        if checkpoint_entries(work) - seen:
            return True
        time.sleep(0.001)
    return False


def wait_for_new_listed_checkpoint(work: pathlib.Path, process: subprocess.Popen, before: str | None) -> bool:
    """Polls until the run has finished and listed a checkpoint of its own."""
    while process.poll() is None:
        if listed_checkpoint(work) != before:
            return True
        time.sleep(0.01)
    return False


def listed_checkpoint(work: pathlib.Path) -> str | None:
    return tf.train.latest_checkpoint(str(work / "model" / "checkpoints"))


def step_of(checkpoint: str) -> int:
    return int(tf.train.load_variable(checkpoint, "progress/step/.ATTRIBUTES/VARIABLE_VALUE"))


def complete_checkpoints(work: pathlib.Path) -> dict[int, str]:
    """Every checkpoint whose index file exists, by number. A write killed before its index has only its _temp
    folder; one killed while TensorFlow wrote the index (in place) has a torn index that is not listed."""
    folder = work / "model" / "checkpoints"
    return {int(re.fullmatch(r"ckpt-(\d+)\.index", path.name).group(1)): str(path.with_suffix(""))
            for path in folder.glob("ckpt-*.index")}


def assert_every_checkpoint_loads(checkpoints: list[str]) -> None:
    """Reads every tensor of each checkpoint; each is checksummed, so a torn write would fail here."""
    for checkpoint in checkpoints:
        reader = tf.train.load_checkpoint(checkpoint)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)


def listed_checkpoints(work: pathlib.Path) -> list[str]:
    return list(tf.train.get_checkpoint_state(str(work / "model" / "checkpoints")).all_model_checkpoint_paths)


def embeddings(work: pathlib.Path) -> np.ndarray:
    return tf.train.load_variable(listed_checkpoint(work), "E/.ATTRIBUTES/VARIABLE_VALUE")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> pathlib.Path:
    work = new_work_directory(tmp_path_factory.mktemp("uninterrupted"))
    process = start_training(work)
    assert process.wait(timeout=300) == 0, process.stderr.read()
    return work


@pytest.mark.slow
def test_sigterm_and_ctrl_c_save_a_checkpoint_and_exit_cleanly(tmp_path, uninterrupted):
    work = new_work_directory(tmp_path)
    resumed_from = step = None
    for signal_number, exit_code in [(signal.SIGTERM, 143), (signal.SIGINT, 130)]:
        process = start_training(work)
        assert wait_for_new_checkpoint_entry(work, process, checkpoint_entries(work)), "training ended too soon"
        time.sleep(0.2)
        process.send_signal(signal_number)
        assert process.wait(timeout=120) == exit_code
        assert process.stderr.read() == ""  # No traceback, no error.
        stdout = (work / "stdout.txt").read_text()
        if resumed_from:  # The second run continued from the first one's signal checkpoint.
            assert f"resuming from {resumed_from} at step {step:,}" in stdout
        saved = re.findall(rf"stopped by {signal_number.name}: saved step ([\d,]+) in (\S+)", stdout)
        assert len(saved) == 1
        step, resumed_from = int(saved[0][0].replace(",", "")), saved[0][1]
        # The signal's own checkpoint is the one listed, at the step where training stopped.
        assert str(work / resumed_from) == listed_checkpoint(work) and step_of(listed_checkpoint(work)) == step
        assert_every_checkpoint_loads(list(complete_checkpoints(work).values()))
    assert step < step_of(listed_checkpoint(uninterrupted))


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_at_most_checkpoint_every_steps(tmp_path, uninterrupted):
    work = new_work_directory(tmp_path)
    choose = random.Random(6)
    kills = ["as a checkpoint write begins", "at a random moment", "as a checkpoint write begins"]
    steps_after_kills = []
    for moment in kills:
        before = listed_checkpoint(work)
        before_step = step_of(before) if before else 0
        process = start_training(work)
        assert wait_for_new_listed_checkpoint(work, process, before), "training ended too soon"
        if moment == "at a random moment":
            time.sleep(choose.uniform(0.0, 1.0))
        else:
            assert wait_for_new_checkpoint_entry(work, process, checkpoint_entries(work)), "training ended too soon"
        process.kill()
        process.wait(timeout=60)

        # Every listed checkpoint loads, and none written is more than one interval ahead of the one resumed
        # from: resuming loses at most --checkpoint-every steps.
        assert_every_checkpoint_loads(listed_checkpoints(work))
        listed = listed_checkpoint(work)
        assert listed is not None and step_of(listed) > before_step
        assert max(complete_checkpoints(work)) - step_of(listed) <= CHECKPOINT_EVERY
        steps_after_kills.append(step_of(listed))

    process = start_training(work)
    assert process.wait(timeout=300) == 0, process.stderr.read()
    stdout = (work / "stdout.txt").read_text()
    assert stdout.count("resuming from") == len(kills)
    assert_every_checkpoint_loads(list(complete_checkpoints(work).values()))  # Torn leftovers were removed.
    # Resumed three times, the run ends at the same step as the uninterrupted one, with the same embeddings: the
    # data position (epoch, chunk, batch) in each checkpoint let every resume regenerate exactly the batches left.
    assert steps_after_kills[-1] < step_of(listed_checkpoint(work)) == step_of(listed_checkpoint(uninterrupted))
    np.testing.assert_allclose(embeddings(work), embeddings(uninterrupted), atol=1e-6)


@pytest.mark.slow
def test_the_tokenised_corpus_of_a_killed_run_is_removed_by_the_next_run(tmp_path):
    # The vocabulary pass keeps the tokenised corpus for the first epoch in $TMPDIR/word2vec-tokens-<pid>-* (the
    # model directory may not be written yet). SIGKILL leaves it behind; the next run sees that its process is gone.
    work, temporary = new_work_directory(tmp_path / "work"), tmp_path / "tmp"
    temporary.mkdir()
    environment = {**os.environ, "TMPDIR": str(temporary)}
    process = start_training(work, environment)
    while process.poll() is None and not list(temporary.glob("word2vec-tokens-*/tokens*")):
        time.sleep(0.01)
    process.kill()
    process.wait(timeout=60)
    left = list(temporary.glob(f"word2vec-tokens-{process.pid}-*"))
    assert left, "the run ended before it wrote its token cache"

    next_run = subprocess.run([sys.executable, str(ROOT / "train.py"), *FLAGS, "--max-steps", "1"], cwd=work,
                              env=environment, capture_output=True, text=True, timeout=300, check=False)
    assert next_run.returncode == 0, next_run.stderr
    assert not any(path.exists() for path in left)


def test_the_token_id_cache_of_a_killed_run_is_removed_by_the_next_run(tmp_path):
    # The cache is model_dir/id-cache, not a folder of the system's temporary directory: a run killed by SIGKILL or
    # the kernel's out-of-memory killer cannot remove it, and the next run on the model directory does.
    work = new_work_directory(tmp_path)
    cache = work / "model" / "id-cache"
    process = start_training(work)
    while process.poll() is None and not any(path.is_file() for path in cache.rglob("*")):
        time.sleep(0.01)
    process.kill()
    process.wait(timeout=60)
    assert any(path.is_file() for path in cache.rglob("*")), "the run ended before it wrote its cache"

    next_run = subprocess.run([sys.executable, str(ROOT / "train.py"), *FLAGS, "--max-steps", "1"], cwd=work,
                              capture_output=True, text=True, timeout=300, check=False)
    assert next_run.returncode == 0, next_run.stderr
    assert not cache.exists()
