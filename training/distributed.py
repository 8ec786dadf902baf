"""Training on several workers or devices with tf.distribute, beside the single-process loop of training/loop.py.

    MultiWorkerMirroredStrategy  one replica per worker process, the cluster read from TF_CONFIG
    MirroredStrategy             one replica per GPU of one machine

Both run the same code: every replica reads its own shard of the corpus's lines, every step sums all replicas'
gradients and applies the same update to every copy of E and W, so the run is one run with a global batch of
(replicas x --batch-size) pairs. The chief (worker 0) writes the model directory: vocabulary, config,
checkpoints and TensorBoard logs; the other workers checkpoint into a temporary directory of their own, as
TensorFlow's multi-worker guide recommends, and delete it at the end.
"""

import contextlib
import dataclasses
import json
import os
import pathlib
import tempfile
import zlib

import numpy as np
import tensorflow as tf

from config import Config
from data_pipeline.pairs import chunk_ids, training_batches
from data_pipeline.vocabulary import Vocabulary, build_vocabulary
from errors import UserError
from model.distributed_step import TOTALS, make_chief_broadcast, make_distributed_train_step, make_replica_sum
from model.optimizer import BatchSGD
from model.skipgram import SkipGram
from training.checkpoints import Progress, training_checkpoint
from training.interrupts import StopRequest
from training.loop import TrainingResult, corpus_from, learning_rate, objective_for, vocabulary_for
from training.model_directory import ModelDirectory
from training.reporting import ProgressReporter
from training.tensorboard import TrainingLog

DISTRIBUTE_CHOICES = ("auto", "none", "multi-worker", "mirrored")


@dataclasses.dataclass(frozen=True)
class Distribution:
    """A tf.distribute strategy and where this process stands in it.

    Attributes:
        strategy: MultiWorkerMirroredStrategy or MirroredStrategy.
        worker: this worker's index, 0 for the chief (TF_CONFIG's `chief` task, else worker 0).
        workers: how many worker processes train together.
    """

    strategy: tf.distribute.Strategy
    worker: int = 0
    workers: int = 1

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    @property
    def local_replicas(self) -> int:
        return len(self.strategy.extended.worker_devices)

    @property
    def is_chief(self) -> bool:
        return self.worker == 0

    def describe(self) -> str:
        name = type(self.strategy).__name__
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


def distribution_for(mode: str) -> Distribution | None:
    """The strategy that `--distribute` asks for, or None for the plain single-process loop.

    `auto` is multi-worker when TF_CONFIG lists more than one chief or worker task, else none. Call this
    before any other TensorFlow operation: MultiWorkerMirroredStrategy must start the cluster first.
    """
    if mode not in DISTRIBUTE_CHOICES:
        raise UserError(f"unknown --distribute {mode!r}: choose one of {', '.join(DISTRIBUTE_CHOICES)}")
    cluster = cluster_tasks(os.environ.get("TF_CONFIG", ""))
    task_count = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    if mode == "none" or (mode == "auto" and task_count <= 1):
        return None
    if mode == "mirrored":
        return Distribution(tf.distribute.MirroredStrategy())
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    resolver = strategy.cluster_resolver
    if resolver.task_type not in (None, "chief", "worker"):
        raise UserError(f"TF_CONFIG task type {resolver.task_type!r} does not train: use chief or worker")
    worker = 0 if resolver.task_type in (None, "chief") else resolver.task_id + len(cluster.get("chief", []))
    return Distribution(strategy, worker, max(task_count, 1))


def vocabulary_fingerprint(vocabulary: Vocabulary) -> tf.Tensor:
    """Size, corpus words and a checksum of the words: what every worker's vocabulary must share."""
    checksum = zlib.crc32("\n".join(vocabulary.words).encode("utf-8"))
    return tf.constant([len(vocabulary), vocabulary.total_words, checksum], tf.int64)


def empty_batch(noise_per_pair: int, noise_per_batch: int) -> dict:
    """What a replica trains on once its shard is used up while others still have batches: no pairs at all."""
    noise = tf.zeros([0, noise_per_pair] if noise_per_pair else [noise_per_batch], tf.int32)
    return {"centres": tf.zeros([0], tf.int32), "contexts": tf.zeros([0], tf.int32), "noise": noise,
            "words": tf.constant(0.0)}


def pair_count(batch: dict) -> tf.Tensor:
    return tf.cast(tf.size(batch["centres"]), tf.float32)


def train_distributed(config: Config, directory: ModelDirectory, distribution: Distribution,
                      log=print) -> TrainingResult:
    """Trains (or resumes) like training.loop.train, on every replica of `distribution` together."""
    strategy = distribution.strategy
    log(distribution.describe())
    with contextlib.ExitStack() as cleanup:
        # Worker 0 owns the model directory; the others keep their checkpoints in a temporary one.
        own = directory if distribution.is_chief else ModelDirectory(
            pathlib.Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="word2vec-worker-"))))
        lines = corpus_from(config)
        if distribution.is_chief:
            vocabulary = vocabulary_for(config, directory, lines)
        elif directory.vocabulary_path.exists():
            vocabulary = Vocabulary.load(str(directory.vocabulary_path))
        else:
            vocabulary = build_vocabulary(lines, config.data.token_pattern, config.data.min_count,
                                          config.data.max_vocab, config.data.lines_per_chunk,
                                          config.data.max_vocab_memory)
        config.model.vocabulary_size = len(vocabulary)
        if distribution.is_chief:
            directory.save_config(config)
        log(f"vocabulary: {len(vocabulary):,} words, {vocabulary.total_words:,} corpus words in it")

        with strategy.scope():
            model = SkipGram(len(vocabulary), config.model.embedding_dim, seed=config.training.seed, name="skipgram")
            optimizer, progress = BatchSGD(), Progress()
        checkpoint = training_checkpoint(model, optimizer, progress)
        manager = tf.train.CheckpointManager(checkpoint, str(own.checkpoints), config.training.checkpoints_to_keep)
        if manager.latest_checkpoint:
            checkpoint.restore(manager.latest_checkpoint).assert_consumed()
        state = [model.embeddings, model.context_weights, model.context_bias, *optimizer.variables,
                 *progress.variables]
        fingerprints = make_chief_broadcast(strategy, state)(vocabulary_fingerprint(vocabulary)).numpy()
        if not (fingerprints == fingerprints[0]).all():
            raise UserError("the workers' vocabularies differ: every worker must read the same corpus with the same "
                            f"flags (size, corpus words, checksum per replica: {fingerprints.tolist()})")
        if int(progress.step.numpy()):
            log(f"resuming at step {int(progress.step.numpy()):,}, epoch {int(progress.epoch.numpy()) + 1}")

        objective, noise_per_pair, noise_per_batch = objective_for(config, vocabulary)
        train_step = make_distributed_train_step(strategy, model, objective, optimizer)
        epochs, total_words = config.training.epochs, config.training.epochs * vocabulary.total_words
        reporter = ProgressReporter(total_words, float(progress.words_done.numpy()))
        start_step = int(progress.step.numpy())
        training_log = TrainingLog(directory.logs, vocabulary, config, float(progress.words_done.numpy())) \
            if distribution.is_chief else None

        # Replica r of R reads every R-th line, from line r: the shards are as even as lines can be.
        first = distribution.worker * distribution.local_replicas
        streams = range(first, first + distribution.local_replicas)
        cache_dir = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="word2vec-ids-"))
        chunks = {stream: chunk_ids(lines.shard(distribution.replicas, stream), vocabulary, config.data.token_pattern,
                                    config.data.lines_per_chunk).cache(os.path.join(cache_dir, f"ids-{stream}"))
                  for stream in streams}
        nothing = empty_batch(noise_per_pair, noise_per_batch)
        replica_sum = make_replica_sum(strategy)
        stop_request = cleanup.enter_context(StopRequest())

        def per_replica(values: list):
            return strategy.experimental_distribute_values_from_function(
                lambda context: values[context.replica_id_in_sync_group - first])

        def save() -> None:
            manager.save(checkpoint_number=int(progress.step.numpy()))

        for epoch in range(int(progress.epoch.numpy()), epochs):
            if epoch != int(progress.epoch.numpy()):
                progress.start_epoch(epoch)
            # Every replica steps in lockstep, so the steps done in this epoch locate every replica's position.
            done_in_epoch = int(progress.batch.numpy())
            iterators = [iter(training_batches(
                chunks[stream], vocabulary, window_size=config.data.window_size, sample=config.data.sample,
                batch_size=config.training.batch_size, noise_per_pair=noise_per_pair, noise_per_batch=noise_per_batch,
                seed=config.training.seed, epoch=epoch, stream=stream).skip(done_in_epoch)) for stream in streams]
            batches = [next(iterator, nothing) for iterator in iterators]
            # A step on no pairs at all is never run (TF's all-gather of rows fails when every replica has none):
            # each step also sums the pairs of the replicas' next batches, and this sum starts the epoch.
            pending = float(replica_sum(per_replica([pair_count(batch) for batch in batches])))
            words_done = float(progress.words_done.numpy())
            while pending > 0:
                upcoming = [next(iterator, nothing) for iterator in iterators]
                rate = learning_rate(config, words_done, total_words)
                stop = [tf.constant(float(bool(stop_request)))] * len(iterators)
                inputs = [{key: batch[key] for key in ("centres", "contexts", "noise", "words")} for batch in batches]
                result = train_step(per_replica(inputs), per_replica([pair_count(batch) for batch in upcoming]),
                                    per_replica(stop), tf.constant(rate, tf.float32))
                totals = dict(zip(TOTALS, result.numpy().tolist()))
                batches, pending = upcoming, totals["next_pairs"]
                loss = totals["loss"] / max(totals["pairs"], 1.0)
                words_done += totals["words"]
                done_in_epoch += 1
                progress.step.assign_add(1)
                progress.words_done.assign(words_done)
                progress.batch.assign(done_in_epoch)
                step = int(progress.step.numpy())
                if step % config.training.log_every == 0 or reporter.due():
                    words_per_second = reporter.report(epoch, epochs, step, words_done, loss, rate)
                    if training_log:
                        training_log.scalars(step, loss=loss, learning_rate=rate, words_per_second=words_per_second)
                if step % config.training.checkpoint_every == 0:
                    save()
                if totals["stop"]:
                    save()
                    if training_log:
                        training_log.snapshot(step, model.embeddings)
                        training_log.close()
                    stopped_by = stop_request.signal_name or "a stop request on another worker"
                    log(f"stopped by {stopped_by}: saved step {step:,} in {manager.latest_checkpoint}")
                    return TrainingResult(model, vocabulary, step, reporter.words_per_second(words_done),
                                          stop_request.signal_name or "SIGTERM")
            if training_log:
                training_log.epoch_end(epoch + 1, int(progress.step.numpy()), float(progress.words_done.numpy()), model.embeddings)
        if int(progress.step.numpy()) > start_step or not manager.latest_checkpoint:
            progress.start_epoch(epochs)
            save()
        if training_log:
            training_log.close()
        words_per_second = reporter.words_per_second(float(progress.words_done.numpy()))
        log(f"{words_per_second:,.0f} words/s over {distribution.workers} workers: "
            f"{words_per_second / distribution.workers:,.0f} words/s per worker")
        return TrainingResult(model, vocabulary, int(progress.step.numpy()), words_per_second)
