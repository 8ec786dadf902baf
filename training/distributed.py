"""Where this process stands among the replicas that train together, and what keeps them together.

    --distribute none          one process, one replica (the plain case of the same training loop)
    --distribute multi-worker  MultiWorkerMirroredStrategy: one replica per worker process, the cluster from TF_CONFIG
    --distribute mirrored      MirroredStrategy: one replica per GPU of one machine

training/loop.py trains in all three. This module starts the strategy, makes every worker agree on the
vocabulary and the chief's state before training, and watches the other workers while training runs: a worker
that dies or stops answering makes every other one stop with one line that names it (`PeerWatch`).
"""

import dataclasses
import json
import os
import threading
import zlib
from typing import Self

import tensorflow as tf

from config import Config
from data_pipeline.vocabulary import Vocabulary, build_vocabulary
from errors import LostWorker, UserError
from training.model_directory import ModelDirectory
from training.preflight import prepare_run

DISTRIBUTE_CHOICES = ("auto", "none", "multi-worker", "mirrored")
# How often each worker asks every other one whether it is alive, how long an answer may take, and how many
# unanswered questions in a row make a worker lost: a worker that hangs is noticed within
# CHECK_EVERY_SECONDS + CHECK_ATTEMPTS x CHECK_TIMEOUT_SECONDS (20 s); one that dies, at the next exchange.
CHECK_EVERY_SECONDS = 5.0
CHECK_TIMEOUT_SECONDS = 5.0
CHECK_ATTEMPTS = 3


@dataclasses.dataclass(frozen=True)
class Distribution:
    """A tf.distribute strategy and where this process stands in it.

    Attributes:
        strategy: the default strategy (one process, one replica), MultiWorkerMirroredStrategy or MirroredStrategy.
        worker: this worker's index, 0 for the chief (TF_CONFIG's `chief` task, else worker 0).
        workers: how many worker processes train together.
        addresses: every worker's address, in worker order (empty for one process).
        tasks: every worker's TensorFlow task name, in worker order, as the health check takes it.
    """

    strategy: tf.distribute.Strategy = dataclasses.field(default_factory=tf.distribute.get_strategy)
    worker: int = 0
    workers: int = 1
    addresses: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    @property
    def local_replicas(self) -> int:
        return self.replicas // self.workers

    @property
    def first_replica(self) -> int:
        """The replica number of this worker's first replica; replica r reads stream r of the corpus."""
        return self.worker * self.local_replicas

    @property
    def is_chief(self) -> bool:
        return self.worker == 0

    def describe(self) -> str:
        multi_worker = isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
        name = "MultiWorkerMirroredStrategy" if multi_worker else type(self.strategy).__name__
        return f"{name}: worker {self.worker} of {self.workers}, {self.replicas} replicas in all"


def cluster_tasks(tf_config: str) -> dict[str, list[str]]:
    """The cluster of a TF_CONFIG value (JSON), checked for what this trainer can run."""
    try:
        cluster = json.loads(tf_config).get("cluster", {}) if tf_config else {}
    except (ValueError, AttributeError):
        raise UserError("TF_CONFIG is not valid JSON: see the README's multi-worker section for its form") from None
    if cluster.get("ps"):
        raise UserError("TF_CONFIG has parameter servers (ps): Keras 3 cannot train with ParameterServerStrategy; "
                        "give every machine a worker task (MultiWorkerMirroredStrategy)")
    return cluster


def distribution_for(mode: str) -> Distribution:
    """The replicas that `--distribute` asks for; one process, one replica for `none`.

    `auto` is multi-worker when TF_CONFIG lists more than one chief or worker task, else none. Call this
    before any other TensorFlow operation: MultiWorkerMirroredStrategy must start the cluster first.
    """
    if mode not in DISTRIBUTE_CHOICES:
        raise UserError(f"unknown --distribute {mode!r}: choose one of {', '.join(DISTRIBUTE_CHOICES)}")
    cluster = cluster_tasks(os.environ.get("TF_CONFIG", ""))
    task_count = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    if mode == "none" or (mode == "auto" and task_count <= 1):
        return Distribution()
    if mode == "mirrored":
        return Distribution(tf.distribute.MirroredStrategy())
    # The strategy's own health check logs a warning per unanswered check and then aborts the collectives
    # without saying which worker is lost to the code that catches the error; PeerWatch does both in one line.
    from tensorflow.python.distribute import collective_all_reduce_strategy

    collective_all_reduce_strategy.CollectiveAllReduceExtended._enable_check_health = False
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    resolver = strategy.cluster_resolver
    if resolver.task_type not in (None, "chief", "worker"):
        raise UserError(f"TF_CONFIG task type {resolver.task_type!r} does not train: use chief or worker")
    worker = 0 if resolver.task_type in (None, "chief") else resolver.task_id + len(cluster.get("chief", []))
    jobs = [(job, index, address) for job in ("chief", "worker") for index, address in enumerate(cluster.get(job, []))]
    return Distribution(strategy, worker, max(task_count, 1), tuple(address for _, _, address in jobs),
                        tuple(f"/job:{job}/replica:0/task:{index}" for job, index, _ in jobs))


def vocabulary_fingerprint(vocabulary: Vocabulary) -> tf.Tensor:
    """Size, corpus words and a checksum of the words: what every worker's vocabulary must share."""
    checksum = zlib.crc32("\n".join(vocabulary.words).encode("utf-8"))
    return tf.constant([len(vocabulary), vocabulary.total_words, checksum], tf.int64)


def worker_vocabulary(config: Config, directory: ModelDirectory, distribution: Distribution,
                      lines: tf.data.Dataset) -> Vocabulary:
    """The chief checks the run, loads or counts the vocabulary and saves it (training/preflight.py); other
    workers load the chief's file when they see it (a shared disk), else count the corpus themselves and keep
    the result in memory."""
    if distribution.is_chief:
        return prepare_run(config, directory, lines)
    if directory.vocabulary_path.exists():
        vocabulary = Vocabulary.load(str(directory.vocabulary_path))
    else:
        data = config.data
        vocabulary = build_vocabulary(lines, data.token_pattern, data.min_count, data.max_vocab, data.lines_per_chunk,
                                      data.max_vocab_memory)
    config.model.vocabulary_size = len(vocabulary)
    return vocabulary


def agree_with_chief(distribution: Distribution, state: list[tf.Variable], vocabulary: Vocabulary) -> None:
    """Gives every replica the chief's values of `state` (after a resume only the chief has read the
    checkpoint, so only the chief needs the model directory), and refuses to train unless every worker has
    the same vocabulary."""
    if distribution.replicas == 1:
        return
    strategy = distribution.strategy

    def replica_broadcast(fingerprint: tf.Tensor) -> tf.Tensor:
        replica = tf.distribute.get_replica_context()
        is_first = tf.equal(replica.replica_id_in_sync_group, 0)
        for variable in state:
            # Summing the chief's value with zeros from everyone else is a broadcast that every collective has.
            # Whole numbers travel as float64, exact up to 2**53.
            value = tf.cast(variable, tf.float64) if variable.dtype.is_integer else variable.read_value()
            value = replica.all_reduce(tf.distribute.ReduceOp.SUM, tf.where(is_first, value, tf.zeros_like(value)))
            variable.assign(tf.cast(value, variable.dtype))
        return replica.all_gather(fingerprint[tf.newaxis], axis=0)

    @tf.function
    def broadcast(fingerprint: tf.Tensor) -> tf.Tensor:
        return strategy.experimental_local_results(strategy.run(replica_broadcast, args=(fingerprint,)))[0]

    fingerprints = broadcast(vocabulary_fingerprint(vocabulary)).numpy()
    if not (fingerprints == fingerprints[0]).all():
        raise UserError("the workers' vocabularies differ: every worker must read the same corpus with the same "
                        f"flags (size, corpus words, checksum per replica: {fingerprints.tolist()})")


class PeerWatch:
    """While active, asks every other worker every CHECK_EVERY_SECONDS whether it is alive, and turns a lost
    worker into one LostWorker error instead of a hang or a page of gRPC traceback.

    A worker that dies breaks the next collective at once; one that hangs (a stopped process, a machine that
    froze, a network that drops packets while the connection stays open) leaves the others waiting in their
    next collective. So a thread checks each peer (an RPC its gRPC server answers without Python) and, when
    one misses CHECK_ATTEMPTS answers in a row, aborts this worker's collectives. On leaving, a TensorFlow
    error becomes LostWorker if some peer is lost; any other error passes through unchanged.
    """

    def __init__(self, distribution: Distribution):
        self.distribution = distribution
        self.lost: int | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.watch, name="peer-watch", daemon=True)

    @property
    def peers(self) -> list[int]:
        return [worker for worker in range(len(self.distribution.tasks)) if worker != self.distribution.worker]

    def answers(self, worker: int, timeout_seconds: float) -> bool:
        from tensorflow.python.eager import context

        try:
            context.context().check_collective_ops_peer_health(self.distribution.tasks[worker],
                                                                timeout_in_ms=int(timeout_seconds * 1000))
            return True
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.FailedPreconditionError,
                tf.errors.AbortedError, tf.errors.CancelledError):
            return False

    def watch(self) -> None:
        from tensorflow.python.eager import context

        while not self.stopping.wait(CHECK_EVERY_SECONDS):
            for worker in self.peers:
                if any(self.answers(worker, CHECK_TIMEOUT_SECONDS) for _ in range(CHECK_ATTEMPTS)):
                    continue
                if self.stopping.is_set():
                    return
                self.lost = worker
                context.context().abort_collective_ops(tf.errors.UNAVAILABLE, f"worker {worker} is lost")
                return

    def lost_worker(self) -> int | None:
        """The worker found lost by the thread, or now: a worker that died refuses the question at once."""
        if self.lost is not None:
            return self.lost
        return next((worker for worker in self.peers if not self.answers(worker, CHECK_TIMEOUT_SECONDS)), None)

    def __enter__(self) -> Self:
        if self.peers:
            self.thread.start()
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self.stopping.set()
        if isinstance(exc, tf.errors.OpError):
            lost = self.lost_worker()
            if lost is not None:
                raise LostWorker(lost, self.distribution.addresses[lost]) from None
