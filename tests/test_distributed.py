"""Training on two workers (MultiWorkerMirroredStrategy, configured by TF_CONFIG on loopback ports) and on two
devices of one process (MirroredStrategy): one run shared out, as good as a single worker's.

Two workers on one 2-core machine prove correctness, not speed.
"""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, TOPIC_LINES, run_script, start_worker, tiny_flags

from benchmarks.train_runs import free_ports
from errors import UserError
from training.distributed import cluster_tasks, distribution_for

# A run long enough for the two topics to separate: every pair kept (no subsampling), 8 dimensions, 6 epochs,
# and a learning rate that is stable for batches of both 64 and 128 pairs on a 19-word vocabulary. Every step
# changes every row of this vocabulary, so the two workers meet every 8 steps (separation with two workers,
# measured: 0.573 meeting after every step, 0.554 every 8, 0.382 every 32; one worker 0.627).
EPOCHS = 6
LEARNING_FLAGS = ("--sample", "0", "--dim", "8", "--epochs", str(EPOCHS), "--learning-rate", "0.05", "--sync-every", "8")
ROYAL_WORDS = ["king", "queen", "kingdom", "royal", "castle", "rule", "old", "sit"]
GARDEN_WORDS = ["cat", "dog", "garden", "play", "green", "sleep", "warm"]


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
    # Measured: 0.627 one worker, 0.554 two (the two-worker run takes half as many steps of twice the pairs).
    # E's random start gives about 0.
    assert one > 0.4 and abs(two - one) < 0.15, (one, two)
    # Each worker trains on its half of the lines, so a step covers twice the pairs of a one-worker step.
    single_steps, worker_steps = trained_steps(runs["single"].stdout), trained_steps(runs["workers"][0][1])
    assert 0.4 * single_steps < worker_steps < 0.6 * single_steps, (single_steps, worker_steps)


def logged_scalars(model_dir: pathlib.Path, tag: str) -> dict[int, float]:
    """The TensorBoard scalar `tag` of a run, by step, from its event files."""
    scalars = {}
    for events in sorted((model_dir / "logs" / "train").glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                if value.tag == tag:
                    scalars[event.step] = float(tf.make_ndarray(value.tensor))
    return scalars


@pytest.mark.slow
def test_two_workers_train_the_full_softmax_stop_at_max_steps_and_log_to_tensorboard(tmp_path):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("\n".join(TOPIC_LINES * 25) + "\n", encoding="utf-8")
    ports, model_dir = free_ports(2), tmp_path / "full"
    flags = tiny_flags(corpus, model_dir, "--loss", "full", "--sample", "0", "--epochs", "3", "--sync-every", "4",
                       "--log-every", "4")
    workers = [start_worker(index, ports, [*flags, "--max-steps", "12"]) for index in (0, 1)]
    outputs = [worker.communicate(timeout=240) for worker in workers]
    for worker, (stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
        assert "trained 12 steps" in stdout, stdout[-1000:]
    # The full objective updates W whole; the workers add up their changes of it at each meeting, so both end with the same model.
    king_lines = [next(line for line in stdout.splitlines() if line.startswith("king: ")) for stdout, _ in outputs]
    assert king_lines[0] == king_lines[1]
    checkpoint = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    assert tf.train.load_variable(checkpoint, "progress/step/.ATTRIBUTES/VARIABLE_VALUE") == 12
    # The chief logged the loss of the whole cluster every 4 steps; the full softmax starts near ln(19 words).
    loss = logged_scalars(model_dir, "loss")
    assert sorted(loss) == [4, 8, 12], loss
    assert all(0 < value < 1.2 * np.log(19) for value in loss.values()), loss
    # A later run of both workers continues from the chief's checkpoint to the end of the 3 epochs.
    workers = [start_worker(index, ports, flags) for index in (0, 1)]
    outputs = [worker.communicate(timeout=240) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs[0][1][-3000:]
    assert "resuming from" in outputs[0][0] and "at step 12" in outputs[0][0]
    checkpoint = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    assert tf.train.load_variable(checkpoint, "progress/epoch/.ATTRIBUTES/VARIABLE_VALUE") == 3


def run_two_workers(corpus: pathlib.Path, model_dir: pathlib.Path, *extra: str) -> list[tuple[int, str, str]]:
    """Both workers' (exit code, stdout, stderr) of one run of train.py on loopback."""
    ports = free_ports(2)
    workers = [start_worker(index, ports, tiny_flags(corpus, model_dir, *extra)) for index in (0, 1)]
    outputs = [worker.communicate(timeout=180) for worker in workers]
    return [(worker.returncode, stdout, stderr) for worker, (stdout, stderr) in zip(workers, outputs)]


def test_two_workers_count_only_their_own_lines_and_sum_to_the_vocabulary_of_one_process(tmp_path):
    # Worker r counts lines r, r + 2, ... (the lines it trains on). `both<k>` is on one line of each worker's,
    # `one<i>` on one line only: with --min-count 2 only summed counts keep the first and drop the second.
    # `even` and `odd`, each on one worker's lines only, tie (ties are alphabetical), and `left` (3 on worker 0's
    # lines) and `right` (1 and 2) tie in the sum as well, `café` is not ASCII.
    lines = [f"the king both{i // 2} one{i} {'even' if i % 2 == 0 else 'odd'} queen" for i in range(40)]
    lines[0] += " left left right café"
    lines[2] += " left"
    lines[3] += " right right café"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    flags = ("--min-count", "2", "--max-steps", "2")
    single = run_script("train.py", *tiny_flags(corpus, tmp_path / "one", *flags))
    assert single.returncode == 0, single.stderr[-3000:]
    outputs = run_two_workers(corpus, tmp_path / "two", *flags)
    for returncode, stdout, stderr in outputs:
        assert returncode == 0, stderr[-3000:]
    expected = (tmp_path / "one" / "vocab.tsv").read_bytes()
    assert (tmp_path / "two" / "vocab.tsv").read_bytes() == expected
    assert b"both19\t2\n" in expected and b"one0\t" not in expected and b"even\t20\nodd\t20\n" in expected
    assert b"left\t3\nright\t3\n" in expected and "café\t2\n".encode() in expected
    # The other worker's vocabulary is the chief's too (training refuses to start unless every worker's matches).
    vocabulary_lines = [next(line for line in stdout.splitlines() if line.startswith("vocabulary: "))
                        for _, stdout, _ in outputs]
    assert vocabulary_lines[0] == vocabulary_lines[1] == next(
        line for line in single.stdout.splitlines() if line.startswith("vocabulary: "))


def test_counts_and_vocabularies_cross_the_collectives_as_bytes_unchanged_and_sum_as_one_count():
    import collections

    from data_pipeline.vocabulary import CorpusCount, Vocabulary
    from training.distributed import (
        count_bytes,
        count_from_bytes,
        summed_counts,
        vocabulary_bytes,
        vocabulary_from_bytes,
    )

    first = CorpusCount(collections.Counter({b"the": 5, "caf\u00e9".encode(): 2, b"a\tb": 1}), 100, 3, 1)
    second = CorpusCount(collections.Counter({b"the": 4, b"x": 1}), 20, 0, 2)
    for found in (first, second, CorpusCount(collections.Counter())):
        again = count_from_bytes(count_bytes(found))
        assert again == found and list(again.words) == list(found.words)
    assert summed_counts([first, second]) == CorpusCount(
        collections.Counter({b"the": 9, "caf\u00e9".encode(): 2, b"a\tb": 1, b"x": 1}), 120, 3, 3)
    # --max-vocab-memory 2: the sum is pruned as one count would be (every word of the lowest counts goes).
    assert summed_counts([first, second], 2).words == {b"the": 9, "caf\u00e9".encode(): 2}
    vocabulary = Vocabulary(("the", "caf\u00e9", "x"), (9, 2, 1))
    assert vocabulary_from_bytes(vocabulary_bytes(vocabulary)) == vocabulary


def half_binary_corpus(path: pathlib.Path) -> pathlib.Path:
    """Text on worker 0's lines, random bytes on worker 1's: half of the corpus is not text."""
    junk = np.random.default_rng(0).integers(0, 256, size=(20, 200), dtype=np.uint8)
    junk[junk == ord("\n")] = 0
    text = [line.encode() for line in TOPIC_LINES * 5]
    path.write_bytes(b"".join(line + b"\n" + bytes(row) + b"\n" for line, row in zip(text, junk)))
    return path


@pytest.mark.parametrize("case, expected", [
    ("half binary", "error: the corpus is not UTF-8 text: "),
    ("no words", "error: the corpus has no words: "),
    # "the" occurs 200 times in the corpus, 100 on each worker's lines.
    ("min-count", "error: --min-count 1000 leaves no words: the most frequent of 19 words occurs 200 times"),
])
def test_a_corpus_refused_by_the_summed_counts_stops_every_worker_with_its_one_line(tmp_path, case, expected):
    # Each worker counts half of the lines, but refuses or accepts the whole corpus: none trains alone or waits.
    corpus, extra = tmp_path / "corpus.txt", ()
    if case == "half binary":
        half_binary_corpus(corpus)  # Worker 0's lines alone would pass.
    elif case == "no words":
        corpus.write_text("\n".join(["..."] * 7 + ["   "]) + "\n", encoding="utf-8")
    else:
        corpus.write_text("\n".join(TOPIC_LINES * 25) + "\n", encoding="utf-8")
        extra = ("--min-count", "1000")
    for returncode, _, stderr in run_two_workers(corpus, tmp_path / "model", *extra):
        assert returncode == 2 and stderr.strip().splitlines()[-1].startswith(expected), stderr[-3000:]
    assert not (tmp_path / "model").exists()


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


# Two replicas (MirroredStrategy over two logical CPUs) change rows of a 5 x 2 variable and meet: each row ends as
# its value at the last meeting plus every replica's change, on both replicas.
EXCHANGE_RUN = """
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from model.replica_exchange import ChangedRows, Collectives, ReplicaExchange
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    variable = tf.Variable(tf.zeros([5, 2]))
    changed = ChangedRows([variable])
    exchange = ReplicaExchange(strategy, Collectives(2), changed)
changed.start()

@tf.function
def change_and_meet(first_rows, first_change, second_rows, second_change):
    def change():
        first = tf.distribute.get_replica_context().replica_id_in_sync_group == 0
        rows, change = tf.where(first, first_rows, second_rows), tf.where(first, first_change, second_change)
        variable.scatter_add(tf.IndexedSlices(tf.fill([2, 2], change), rows))
        changed.mark(variable, rows)
        return tf.cast(tf.stack([tf.where(first, 1.0, 2.0)]), tf.float64)

    everyone, rows_exchanged = exchange.meet(strategy.run(change))
    return [tf.convert_to_tensor(copy) for copy in strategy.experimental_local_results(variable)], everyone, rows_exchanged

results = [change_and_meet(tf.constant([1, 2]), 1.0, tf.constant([2, 4]), 10.0),
           change_and_meet(tf.constant([0, 0]), 0.5, tf.constant([4, 4]), -2.0)]
print(json.dumps([[[copy.numpy().tolist() for copy in copies], everyone.numpy().tolist(), float(rows)]
                  for copies, everyone, rows in results]))
"""


def test_replicas_that_meet_add_up_every_replicas_changes_on_every_replica():
    result = subprocess.run([sys.executable, "-c", EXCHANGE_RUN], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    (first_copies, first_everyone, first_rows), (second_copies, _, second_rows) = json.loads(result.stdout.splitlines()[-1])
    # First meeting: replica 0 moved rows 1 and 2 by +1, replica 1 rows 2 and 4 by +10. Row 2 gets both: 11.
    assert first_copies[0] == first_copies[1] == [[0, 0], [1, 1], [11, 11], [0, 0], [10, 10]]
    # Each replica brought its own totals, and both learn both. Four changed rows travelled, two from each.
    assert first_everyone == [[1.0], [2.0]] and first_rows == 4
    # Second meeting: only the rows changed since the first travel. Row 0 is changed twice by replica 0 in one
    # scatter (+0.5 twice), row 4 twice by replica 1 (-2 twice): one row from each.
    assert second_copies[0] == second_copies[1] == [[1, 1], [1, 1], [11, 11], [0, 0], [6, 6]] and second_rows == 2


def test_python_wakes_at_log_lines_checkpoints_and_meetings():
    from config import Config
    from training.loop import steps_to_wake

    config = Config()
    config.training.log_every, config.training.checkpoint_every, config.training.sync_every = 200, 2000, 256
    # One replica: every 50 steps at most, up to the next log line or checkpoint.
    assert steps_to_wake(0, config, replicas=1, stop_at=0) == 50
    assert steps_to_wake(190, config, replicas=1, stop_at=0) == 10
    # Several: on to the next meeting (a multiple of --sync-every), so resumed runs meet on the same steps ...
    assert steps_to_wake(0, config, replicas=2, stop_at=0) == 256
    assert steps_to_wake(300, config, replicas=2, stop_at=0) == 212
    # ... but never past --max-steps.
    assert steps_to_wake(256, config, replicas=2, stop_at=300) == 44


def test_the_lost_worker_is_read_from_each_way_tensorflow_reports_it():
    from training.distributed import Distribution, lost_worker

    tasks = ("/job:worker/replica:0/task:0", "/job:worker/replica:0/task:1", "/job:worker/replica:0/task:2")
    cluster = Distribution(workers=3, addresses=("a:1", "b:1", "c:1"), tasks=tasks)
    unhealthy = ("Collective ops is aborted by: Error reported from /job:worker/task:0: The following tasks are "
                 "unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:2\nThe tasks have crashed.")
    reset = ("recvmsg:Connection reset by peer\nAdditional GRPC error information from remote target "
             "/job:worker/replica:0/task:1 while calling /tensorflow.WorkerService/RecvBuf")
    leader = "Collective ops is aborted by: Deadline Exceeded\n\nRPC: /tensorflow.CoordinationService/Heartbeat"
    assert lost_worker(cluster, tf.errors.UnavailableError(None, None, unhealthy)) == 2
    assert lost_worker(cluster, tf.errors.UnavailableError(None, None, reset)) == 1
    assert lost_worker(cluster, tf.errors.DeadlineExceededError(None, None, leader)) == 0
    assert lost_worker(cluster, tf.errors.UnavailableError(None, None, "socket closed")) == -1
    # Errors that are not about a peer pass through, and one process has no peers.
    assert lost_worker(cluster, tf.errors.InvalidArgumentError(None, None, unhealthy)) is None
    assert lost_worker(Distribution(), tf.errors.UnavailableError(None, None, reset)) is None
