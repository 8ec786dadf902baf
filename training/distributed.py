"""Where this process stands among the replicas that train together, and what keeps them together.

    --distribute none          one process, one replica (the plain case of the same training loop)
    --distribute multi-worker  MultiWorkerMirroredStrategy: one replica per worker process, the cluster from TF_CONFIG
    --distribute mirrored      MirroredStrategy: one replica per GPU of one machine

training/loop.py trains in all three. This module starts the strategy, makes every worker agree on the
vocabulary and the chief's state before training, and watches the other workers while training runs: a worker
that dies or stops answering makes every other one stop with one line that names it (`PeerWatch`).
"""

import collections
import contextlib
import dataclasses
import functools
import json
import os
import pathlib
import re
import tempfile
import zlib
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from config import Config, DataConfig
from data_pipeline.vocabulary import CorpusCount, Vocabulary, count_corpus, counted_vocabulary, prune_rarest
from errors import LostWorker, UserError
from training.checkpoints import SINGLE_PROCESS
from training.model_directory import ModelDirectory
from training.preflight import prepare_run

DISTRIBUTE_CHOICES = ("auto", "none", "multi-worker", "mirrored")
# A worker that sends no heartbeat to the coordination service (run by the chief) for this long is lost, and so
# is the chief for a worker whose heartbeats it leaves unanswered this long. A worker that dies breaks the next
# exchange at once.
HEARTBEAT_TIMEOUT_SECONDS = 20
LOST_WORKER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
                      tf.errors.CancelledError)


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

    @property
    def single_process(self) -> bool:
        """One process with no tf.distribute strategy (--distribute none, or auto without a cluster)."""
        return self.workers == 1 and not isinstance(
            self.strategy, (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy))

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
    configure_heartbeats(cluster)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    resolver = strategy.cluster_resolver
    if resolver.task_type not in (None, "chief", "worker"):
        raise UserError(f"TF_CONFIG task type {resolver.task_type!r} does not train: use chief or worker")
    worker = 0 if resolver.task_type in (None, "chief") else resolver.task_id + len(cluster.get("chief", []))
    jobs = [(job, index, address) for job in ("chief", "worker") for index, address in enumerate(cluster.get(job, []))]
    return Distribution(strategy, worker, max(task_count, 1), tuple(address for _, _, address in jobs),
                        tuple(f"/job:{job}/replica:0/task:{index}" for job, index, _ in jobs))


def configure_heartbeats(cluster: dict[str, list[str]]) -> None:
    """The coordination service that MultiWorkerMirroredStrategy starts (its leader is the chief), with our
    heartbeat timeout: every worker sends it heartbeats, and a missing one aborts every worker's collectives."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=len(cluster[job]))
            for job in ("chief", "worker") if cluster.get(job)]
    leader = "/job:chief/replica:0/task:0" if cluster.get("chief") else "/job:worker/replica:0/task:0"
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=leader, coordinated_jobs=jobs,
        heartbeat_timeout_in_ms=HEARTBEAT_TIMEOUT_SECONDS * 1000)


def id_cache_for(directory: ModelDirectory, distribution: Distribution) -> pathlib.Path:
    """The chief's token-id cache is model_dir/id-cache, as in one process; another worker's is a fixed folder of
    its own in the temporary directory, which its next run clears if a kill left it behind."""
    if distribution.is_chief:
        return directory.id_cache
    model = zlib.crc32(str(directory.root.resolve()).encode("utf-8"))
    return pathlib.Path(tempfile.gettempdir()) / f"word2vec-ids-{model:08x}-worker-{distribution.worker}"


def position_layout(distribution: Distribution) -> int:
    """How the loop counts its data position (training/checkpoints.py): SINGLE_PROCESS for one replica (chunk and
    batch of the one stream), else the replicas, which step in lockstep through their own streams."""
    return SINGLE_PROCESS if distribution.replicas == 1 else distribution.replicas


def vocabulary_fingerprint(vocabulary: Vocabulary) -> tf.Tensor:
    """Size, corpus words and a checksum of the words: what every worker's vocabulary must share."""
    checksum = zlib.crc32("\n".join(vocabulary.words).encode("utf-8"))
    return tf.constant([len(vocabulary), vocabulary.total_words, checksum], tf.int64)


def check_workers_support(config: Config, distribution: Distribution) -> None:
    """Refuses, in one line and before anything is written, what several workers cannot do yet."""
    if distribution.workers > 1 and config.training.keep_best:
        # Only the chief scores E, so the workers could not agree on when to save or stop.
        raise UserError("--keep-best and --early-stop are not available with several workers yet: train on one "
                        "machine, or evaluate the saved checkpoints with evaluate.py")


def token_caches_for(distribution: Distribution, folder: str) -> dict[int, str]:
    """Where a new run's vocabulary pass keeps the tokenised lines of each stream this process trains, for its
    first epoch (`data_pipeline.pairs.chunk_ids`): one process the whole corpus; each of several workers the
    shards it trains, which are all it counts (`shared_vocabulary`); several replicas of one process none."""
    if distribution.replicas == 1:
        return {0: os.path.join(folder, "tokens")}
    streams = range(distribution.first_replica, distribution.first_replica + distribution.local_replicas)
    return {stream: os.path.join(folder, f"tokens-{stream}") if distribution.workers > 1 else "" for stream in streams}


def worker_vocabulary(config: Config, directory: ModelDirectory, distribution: Distribution,
                      lines: tf.data.Dataset, token_caches: dict[int, str]) -> Vocabulary:
    """One process checks the run, loads or counts the vocabulary and saves it (training/preflight.py; a new
    run's count leaves the tokenised corpus in `token_caches[0]`); several workers share the work
    (`shared_vocabulary`)."""
    if distribution.workers > 1:
        return shared_vocabulary(config, directory, distribution, lines, token_caches)
    token_cache = token_caches[0] if distribution.replicas == 1 else ""
    return prepare_run(config, directory, lines, replicas=position_layout(distribution), token_cache=token_cache)


def shared_vocabulary(config: Config, directory: ModelDirectory, distribution: Distribution,
                      lines: tf.data.Dataset, token_caches: dict[int, str]) -> Vocabulary:
    """The vocabulary of several workers. The chief checks the run and saves the vocabulary (training/preflight.py).
    For a new run each worker counts only the lines it trains on, keeping their tokens in `token_caches`, and
    the workers sum their counts, so every one ends with the vocabulary one process would count (and with the
    same one-line error if the summed corpus is refused). On a resume the chief sends the vocabulary it loaded.

    The chief speaks first: an empty message asks the others to count, else it is the vocabulary."""

    def count() -> Vocabulary:
        data = config.data
        found = shard_count(lines, data, distribution.replicas, token_caches)
        counts = [count_from_bytes(sent) for sent in gathered_bytes(distribution, count_bytes(found))]
        return counted_vocabulary(summed_counts(counts, data.max_vocab_memory), data.min_count, data.max_vocab)

    if not distribution.is_chief:
        sent = gathered_bytes(distribution, b"")[0]
        vocabulary = vocabulary_from_bytes(sent) if sent else count()
        config.model.vocabulary_size = len(vocabulary)
        return vocabulary
    counted = []

    def chief_count() -> Vocabulary:
        gathered_bytes(distribution, b"")
        counted.append(True)
        return count()

    vocabulary = prepare_run(config, directory, lines, replicas=position_layout(distribution),
                             count_vocabulary=chief_count)
    if not counted:
        gathered_bytes(distribution, vocabulary_bytes(vocabulary))
    return vocabulary


def shard_count(lines: tf.data.Dataset, data: DataConfig, replicas: int, token_caches: dict[int, str]) -> CorpusCount:
    """The count of the streams in `token_caches` (stream s is every `replicas`-th line from line s, as training
    reads it), their tokens kept in the caches' files."""
    counts = [count_corpus(lines.shard(replicas, stream), data.token_pattern, data.lines_per_chunk,
                           data.max_vocab_memory, path) for stream, path in token_caches.items()]
    return summed_counts(counts, data.max_vocab_memory)


def summed_counts(counts: list[CorpusCount], max_words_in_memory: int = 0) -> CorpusCount:
    """The counts added up. With `max_words_in_memory` (--max-vocab-memory) the sum is pruned again to that many
    words (`prune_rarest`): each part was pruned on its own lines, so the result is not one process's count of
    the whole corpus, but every worker gets the same one."""
    total = CorpusCount(collections.Counter())
    for found in counts:
        total.words.update(found.words)
        total.bytes += found.bytes
        total.invalid_bytes += found.invalid_bytes
        total.control_bytes += found.control_bytes
    if max_words_in_memory:
        prune_rarest(total.words, max_words_in_memory, 1)
    return total


def count_bytes(found: CorpusCount) -> bytes:
    """`found` as bytes: the word count and the three byte figures, each word's length and count (int64), then
    the words."""
    words = list(found.words)
    head = np.array([len(words), found.bytes, found.invalid_bytes, found.control_bytes], np.int64)
    lengths = np.fromiter(map(len, words), np.int64, len(words))
    counts = np.fromiter(found.words.values(), np.int64, len(words))
    return b"".join([head.tobytes(), lengths.tobytes(), counts.tobytes(), *words])


def count_from_bytes(data: bytes) -> CorpusCount:
    """The CorpusCount that `count_bytes` wrote, its words in the same order."""
    size, corpus_bytes, invalid, control = np.frombuffer(data, np.int64, 4).tolist()
    lengths = np.frombuffer(data, np.int64, size, 32)
    counts = np.frombuffer(data, np.int64, size, 32 + 8 * size).tolist()
    ends = (np.cumsum(lengths) + 32 + 16 * size).tolist()
    words = [data[end - length:end] for end, length in zip(ends, lengths.tolist())]
    return CorpusCount(collections.Counter(dict(zip(words, counts))), corpus_bytes, invalid, control)


def vocabulary_bytes(vocabulary: Vocabulary) -> bytes:
    words = [word.encode("utf-8") for word in vocabulary.words]
    return count_bytes(CorpusCount(collections.Counter(dict(zip(words, vocabulary.counts)))))


def vocabulary_from_bytes(data: bytes) -> Vocabulary:
    words = count_from_bytes(data).words
    return Vocabulary(tuple(word.decode("utf-8") for word in words), tuple(words.values()))


def gathered_bytes(distribution: Distribution, payload: bytes) -> list[bytes]:
    """Every worker's `payload`, in worker order, gathered over the strategy's collectives (a worker's first
    replica sends it). Every worker must call this at the same point, as for any collective."""
    # The collectives carry no bytes, nor (without crashing) vectors of length 0: 8 bytes more, at least.
    words = np.frombuffer(payload + bytes(8 - len(payload) % 8), np.int64)
    sizes, data = gather_function(distribution)(tf.constant(len(payload), tf.int64), tf.constant(words))
    sizes, data = sizes.numpy().tolist(), data.numpy().tobytes()
    starts = np.cumsum([0] + [(size // 8 + 1) * 8 for size in sizes]).tolist()
    return [data[start:start + size] for start, size in zip(starts, sizes)][::distribution.local_replicas]


@functools.cache
def gather_function(distribution: Distribution) -> Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """A compiled all-gather of int64 vectors of any length with a size each: (the sizes, the vectors joined)."""
    strategy, local_replicas = distribution.strategy, distribution.local_replicas

    def replica_gather(size: tf.Tensor, data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        replica = tf.distribute.get_replica_context()
        sends = tf.equal(replica.replica_id_in_sync_group % local_replicas, 0)
        data = data[:tf.where(sends, tf.size(data), 1)]
        size = tf.where(sends, size, 0)
        # all_gather pads the replicas' vectors to the longest and removes the padding again.
        return replica.all_gather(size[tf.newaxis], axis=0), replica.all_gather(data, axis=0)

    @tf.function(input_signature=[tf.TensorSpec([], tf.int64), tf.TensorSpec([None], tf.int64)])
    def gather(size: tf.Tensor, data: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        sizes, gathered = strategy.run(replica_gather, args=(size, data))
        return strategy.experimental_local_results(sizes)[0], strategy.experimental_local_results(gathered)[0]

    return gather


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


def lost_worker(distribution: Distribution, error: tf.errors.OpError) -> int | None:
    """The worker that `error` says is lost (-1: some worker), or None if it is about something else.

    TensorFlow names it in one of three ways: the coordination service lists the tasks that stopped sending
    heartbeats; a collective whose peer died fails on the connection to that peer; and when the chief (which
    runs the coordination service) stops answering, the others' heartbeats to it time out.
    """
    if distribution.workers == 1 or not isinstance(error, LOST_WORKER_ERRORS):
        return None
    message = str(error)
    named = re.search(r"unhealthy[^\n]*\n(/job:\w+/replica:\d+/task:\d+)", message) or \
        re.search(r"remote target (/job:\w+/replica:\d+/task:\d+)", message)
    if named and named.group(1) in distribution.tasks:
        return distribution.tasks.index(named.group(1))
    if "CoordinationService" in message:
        return 0
    return -1


@contextlib.contextmanager
def lost_workers_named(distribution: Distribution, saved: dict):
    """Turns the TensorFlow error of a lost worker (a page of gRPC and collective messages) into one
    LostWorker error naming it; `saved["step"]` is the step of the last checkpoint, where training resumes."""
    try:
        yield
    except tf.errors.OpError as error:
        worker = lost_worker(distribution, error)
        if worker is None:
            raise
        address = distribution.addresses[worker] if worker >= 0 else None
        raise LostWorker(worker, address, saved.get("step")) from None
