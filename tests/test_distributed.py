"""Training on two workers (MultiWorkerMirroredStrategy, configured by TF_CONFIG on loopback ports) and on two
devices of one process (MirroredStrategy): one run shared out, as good as a single worker's.

Two workers on one 2-core machine prove correctness, not speed.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, TOPIC_LINES, run_script, tiny_flags

from benchmarks.train_runs import free_ports
from errors import UserError
from training.distributed import cluster_tasks, distribution_for

# A run long enough for the two topics to separate: every pair kept (no subsampling), 8 dimensions, 6 epochs,
# and a learning rate that is stable for batches of both 64 and 128 pairs on a 19-word vocabulary.
EPOCHS = 6
LEARNING_FLAGS = ("--sample", "0", "--dim", "8", "--epochs", str(EPOCHS), "--learning-rate", "0.05")
ROYAL_WORDS = ["king", "queen", "kingdom", "royal", "castle", "rule", "old", "sit"]
GARDEN_WORDS = ["cat", "dog", "garden", "play", "green", "sleep", "warm"]


def start_worker(index: int, ports: list[int], flags: list[str]) -> subprocess.Popen:
    tf_config = {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]}, "task": {"type": "worker", "index": index}}
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *flags], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "TF_CONFIG": json.dumps(tf_config)})


def latest_embeddings(model_dir: pathlib.Path) -> np.ndarray:
    return tf.train.load_variable(tf.train.latest_checkpoint(str(model_dir / "checkpoints")), "E/.ATTRIBUTES/VARIABLE_VALUE")


def topic_separation(model_dir: pathlib.Path) -> float:
    """Mean cosine of two words of the same topic minus mean cosine of two words of different topics.

    Each topic's words only ever meet each other, so training pulls them into two groups (the separation
    grows towards 2); E's random start gives about 0.
    """
    words = [row.split("\t")[0] for row in (model_dir / "vocab.tsv").read_text().splitlines()[1:]]
    vectors = latest_embeddings(model_dir)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = {word: index for index, word in enumerate(words)}

    def mean_cosine(first: list[str], second: list[str]) -> float:
        return float(np.mean([vectors[ids[a]] @ vectors[ids[b]] for a in first for b in second if a != b]))

    within = (mean_cosine(ROYAL_WORDS, ROYAL_WORDS) + mean_cosine(GARDEN_WORDS, GARDEN_WORDS)) / 2
    return within - mean_cosine(ROYAL_WORDS, GARDEN_WORDS)


def trained_steps(output: str) -> int:
    return int(next(line for line in output.splitlines() if line.startswith("trained ")).split()[1].replace(",", ""))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The tiny corpus trained by one process and by two workers, at the same time."""
    root = tmp_path_factory.mktemp("distributed")
    corpus = root / "tiny.txt"
    corpus.write_text("\n".join(TOPIC_LINES * 25) + "\n", encoding="utf-8")
    ports = free_ports(2)
    workers = [start_worker(index, ports, tiny_flags(corpus, root / "two-workers", *LEARNING_FLAGS)) for index in (0, 1)]
    single = run_script("train.py", *tiny_flags(corpus, root / "one-worker", *LEARNING_FLAGS))
    outputs = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=240)
        outputs.append((worker.returncode, stdout, stderr))
    return {"root": root, "corpus": corpus, "single": single, "workers": outputs}


@pytest.mark.slow
def test_two_workers_finish_with_identical_copies_and_the_chief_checkpoint_restores(runs):
    from model.optimizer import BatchSGD
    from model.skipgram import SkipGram
    from training.checkpoints import Progress, training_checkpoint

    for returncode, stdout, stderr in runs["workers"]:
        assert returncode == 0, stderr[-3000:]
        assert "worker" in stdout and "2 replicas in all" in stdout
    # Every step applies the same summed update on both workers, so their E (and its neighbours) are the same.
    king_lines = [next(line for line in stdout.splitlines() if line.startswith("king: "))
                  for _, stdout, _ in runs["workers"]]
    assert king_lines[0] == king_lines[1]
    # The chief's checkpoint holds the whole state, which restores into a fresh model.
    model_dir = runs["root"] / "two-workers"
    model, progress = SkipGram(19, 8, name="skipgram"), Progress()
    checkpoint = training_checkpoint(model, BatchSGD(), progress)
    checkpoint.restore(tf.train.latest_checkpoint(str(model_dir / "checkpoints"))).assert_consumed()
    assert int(progress.epoch) == EPOCHS and int(progress.step) == trained_steps(runs["workers"][0][1])
    np.testing.assert_array_equal(model.embeddings.numpy(), latest_embeddings(model_dir))
    # The chief also wrote the TensorBoard run.
    assert (model_dir / "logs" / "train").is_dir()


@pytest.mark.slow
def test_two_workers_learn_as_well_as_one_in_half_the_steps(runs):
    assert runs["single"].returncode == 0, runs["single"].stderr
    one, two = topic_separation(runs["root"] / "one-worker"), topic_separation(runs["root"] / "two-workers")
    # Measured: 0.634 one worker, 0.577 two (the two-worker run takes half as many steps of twice the pairs).
    # E's random start gives about 0.
    assert one > 0.4 and abs(two - one) < 0.15, (one, two)
    # Each worker trains on its half of the lines, so a step covers twice the pairs of a one-worker step.
    single_steps, worker_steps = trained_steps(runs["single"].stdout), trained_steps(runs["workers"][0][1])
    assert 0.4 * single_steps < worker_steps < 0.6 * single_steps, (single_steps, worker_steps)


# train.py's flags and multi-worker loop, on a MirroredStrategy over two logical CPUs: this machine has no GPUs,
# and `--distribute mirrored` (MirroredStrategy() over all GPUs) would make a single replica here.
MIRRORED_RUN = """
import pathlib, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import train
from training.distributed import Distribution
from training.loop import train as train_loop
from training.model_directory import ModelDirectory
flags = train.flag_parser().parse_args(sys.argv[1:])
config, _ = train.requested_config(flags)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
train_loop(config, ModelDirectory(pathlib.Path(flags.model_dir)), Distribution(strategy))
"""


@pytest.mark.slow
def test_mirrored_strategy_on_two_devices_trains_exactly_as_two_workers(runs, tmp_path):
    # The same code path on one machine with two devices (here two logical CPUs standing in for two GPUs):
    # replica r reads the same shard with the same seeds as worker r did, so E comes out the same.
    model_dir = tmp_path / "mirrored"
    result = subprocess.run([sys.executable, "-c", MIRRORED_RUN, *tiny_flags(runs["corpus"], model_dir, *LEARNING_FLAGS)],
                            cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MirroredStrategy: worker 0 of 1, 2 replicas in all" in result.stdout
    np.testing.assert_allclose(latest_embeddings(model_dir), latest_embeddings(runs["root"] / "two-workers"), atol=1e-6)


def test_without_tf_config_auto_trains_in_one_process(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribution_for("auto").replicas == 1


def test_a_tf_config_with_parameter_servers_is_refused():
    tf_config = {"cluster": {"worker": ["a:1", "b:1"], "ps": ["c:1"]}, "task": {"type": "worker", "index": 0}}
    with pytest.raises(UserError, match="ParameterServerStrategy"):
        cluster_tasks(json.dumps(tf_config))


def test_a_tf_config_that_is_not_json_is_a_clear_error():
    with pytest.raises(UserError, match="TF_CONFIG is not valid JSON"):
        cluster_tasks("{cluster: worker}")
