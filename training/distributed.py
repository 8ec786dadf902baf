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
import math
import os
import pathlib
import tempfile
import zlib

import tensorflow as tf

from config import Config
from data_pipeline.pairs import STEP_INPUTS as PAIR_INPUTS
from data_pipeline.pairs import chunk_ids, training_batches
from data_pipeline.vocabulary import Vocabulary, build_vocabulary
from errors import UserError
from model.distributed_step import TOTALS, make_chief_broadcast, make_distributed_train_step, make_replica_sum
from model.optimizer import BatchSGD
from model.skipgram import SkipGram
from training.checkpoints import Progress, training_checkpoint
from training.evaluation_hooks import BestCheckpoint, EpochEvaluation
from training.guard import DivergenceGuard
from training.interrupts import StopRequest
from training.loop import TrainingResult, corpus_from, objective_for
from training.model_directory import ModelDirectory
from training.preflight import prepare_run
from training.reporting import EpochTotals, ProgressReporter
from training.rounds import record_round_end
from training.step_runner import linear_decay
from training.tensorboard import TrainingLog

DISTRIBUTE_CHOICES = ("auto", "none", "multi-worker", "mirrored")
STEP_INPUTS = (*PAIR_INPUTS, "words")  # what each replica's batch gives the step


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


def empty_batch(batch_size: int, noise_shape: tuple[int, int]) -> dict:
    """What a replica trains on once its shard is used up while others still have batches: padding only."""
    pairs = {name: tf.zeros([batch_size]) for name in ("weights", "centre_pairs", "context_pairs", "context_noise_pairs")}
    noise = {name: tf.zeros(noise_shape) for name in ("noise_pairs", "noise_context_pairs")}
    return {"centres": tf.zeros([batch_size], tf.int32), "contexts": tf.zeros([batch_size], tf.int32),
            "noise": tf.zeros(noise_shape, tf.int32), **pairs, **noise, "words": tf.constant(0.0)}


def pair_count(batch: dict) -> tf.Tensor:
    return tf.reduce_sum(batch["weights"])


def number(variable: tf.Variable) -> float:
    """A scalar variable's value; int() and float() refuse a MirroredVariable."""
    return variable.numpy().item()


def worker_vocabulary(config: Config, directory: ModelDirectory, distribution: Distribution,
                      lines: tf.data.Dataset) -> Vocabulary:
    """The chief loads or counts and saves the vocabulary; other workers load the chief's file when they see
    it (a shared disk), else count the corpus themselves and keep the result in memory."""
    if distribution.is_chief:
        return prepare_run(config, directory, lines)
    if directory.vocabulary_path.exists():
        return Vocabulary.load(str(directory.vocabulary_path))
    data = config.data
    return build_vocabulary(lines, data.token_pattern, data.min_count, data.max_vocab, data.lines_per_chunk,
                            data.max_vocab_memory)


def train_distributed(config: Config, directory: ModelDirectory, distribution: Distribution, log=print,
                      max_steps: int = 0) -> TrainingResult:
    """Trains (or resumes) like training.loop.train, on every replica of `distribution` together, until
    `config.training.epochs` are done, a stop signal to any worker, or `max_steps` steps in this run (0: no limit)."""
    strategy = distribution.strategy
    if distribution.workers > 1 and config.training.keep_best:
        # Only the chief scores E, so the workers could not agree on when to save or stop.
        raise UserError("--keep-best and --early-stop are not available with several workers yet: train on one "
                        "machine, or evaluate the saved checkpoints with evaluate.py")
    log(distribution.describe())
    with contextlib.ExitStack() as cleanup:
        lines = corpus_from(config)
        vocabulary = worker_vocabulary(config, directory, distribution, lines)
        config.model.vocabulary_size = len(vocabulary)
        if distribution.is_chief:
            directory.save_config(config)
        log(f"vocabulary: {len(vocabulary):,} words, {vocabulary.total_words:,} corpus words in it")

        with strategy.scope():
            model = SkipGram(len(vocabulary), config.model.embedding_dim, seed=config.training.seed, name="skipgram")
            optimizer, progress = BatchSGD(), Progress()
        checkpoint = training_checkpoint(model, optimizer, progress)
        # Worker 0 owns the model directory; the others checkpoint into a temporary one, deleted at the end.
        checkpoints = directory.checkpoints if distribution.is_chief else pathlib.Path(
            cleanup.enter_context(tempfile.TemporaryDirectory(prefix="word2vec-worker-")))
        manager = tf.train.CheckpointManager(checkpoint, str(checkpoints), config.training.checkpoints_to_keep)
        if manager.latest_checkpoint:
            checkpoint.restore(manager.latest_checkpoint).assert_consumed()
        state = [model.embeddings, model.context_weights, model.context_bias, *optimizer.variables,
                 *progress.variables]
        fingerprints = make_chief_broadcast(strategy, state)(vocabulary_fingerprint(vocabulary)).numpy()
        if not (fingerprints == fingerprints[0]).all():
            raise UserError("the workers' vocabularies differ: every worker must read the same corpus with the same "
                            f"flags (size, corpus words, checksum per replica: {fingerprints.tolist()})")
        if number(progress.step):
            log(f"resuming at step {number(progress.step):,}, epoch {number(progress.epoch) + 1}")

        objective, noise_shape = objective_for(config, vocabulary)
        train_step = make_distributed_train_step(strategy, model, objective, optimizer)
        replica_sum = make_replica_sum(strategy)
        epochs, total_words = config.training.epochs, config.training.epochs * vocabulary.total_words
        learning_rate = linear_decay(config.training.learning_rate, config.training.min_learning_rate_ratio, total_words)
        reporter = ProgressReporter(total_words, number(progress.words_done))
        start_step = number(progress.step)
        training_log = TrainingLog(directory.logs, vocabulary, config) if distribution.is_chief else None
        epoch_totals = EpochTotals()
        evaluation = EpochEvaluation(config, vocabulary) if distribution.is_chief else None
        best = BestCheckpoint(config.training, checkpoint, directory.best)
        last_epoch = best.epochs_to_train(number(progress.epoch), epochs, log)

        # Replica r of R reads every R-th line from line r, so the shards are as even as lines can be; its
        # token ids are cached on disk after the first epoch, as in the single-process loop.
        first = distribution.worker * distribution.local_replicas
        streams = range(first, first + distribution.local_replicas)
        cache_dir = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="word2vec-ids-"))
        chunks = {stream: chunk_ids(lines.shard(distribution.replicas, stream), vocabulary, config.data.token_pattern,
                                    config.data.lines_per_chunk).cache(os.path.join(cache_dir, f"ids-{stream}"))
                  for stream in streams}
        nothing = empty_batch(config.training.batch_size, noise_shape)
        stop_request = cleanup.enter_context(StopRequest())

        def per_replica(values: list):
            """This worker's values, one per local replica, as the per-replica input of a strategy.run."""
            return strategy.experimental_distribute_values_from_function(
                lambda context: values[context.replica_id_in_sync_group - first])

        guard = DivergenceGuard(config, str(directory.root), [model.embeddings, model.context_weights,
                                                              model.context_bias])

        def save() -> None:
            guard.check_state(number(progress.step), manager.latest_checkpoint)
            manager.save(checkpoint_number=number(progress.step))

        for epoch in range(number(progress.epoch), last_epoch):
            if epoch != number(progress.epoch):
                progress.start_epoch(epoch)
            epoch_totals.start(number(progress.words_done))
            # Replicas step in lockstep, so the steps done in this epoch locate every replica's position.
            done_in_epoch = number(progress.batch)
            iterators = [iter(training_batches(
                chunks[stream], vocabulary, window_size=config.data.window_size, sample=config.data.sample,
                batch_size=config.training.batch_size, noise_shape=noise_shape,
                seed=config.training.seed, epoch=epoch, stream=stream).skip(done_in_epoch)) for stream in streams]
            batches = [next(iterator, nothing) for iterator in iterators]
            # Each step also sums the pairs of every replica's next batch: all workers learn together, with no
            # extra round trip, that the epoch is over everywhere. This sum starts the epoch.
            pending = float(replica_sum(per_replica([pair_count(batch) for batch in batches])))
            words_done = number(progress.words_done)
            while pending > 0:
                upcoming = [next(iterator, nothing) for iterator in iterators]
                rate = float(learning_rate(words_done))
                inputs = [{key: batch[key] for key in STEP_INPUTS} for batch in batches]
                stop = [tf.constant(float(bool(stop_request)))] * len(iterators)
                result = train_step(per_replica(inputs), per_replica([pair_count(batch) for batch in upcoming]),
                                    per_replica(stop), tf.constant(rate, tf.float32))
                totals = dict(zip(TOTALS, result.numpy().tolist()))
                batches, pending = upcoming, totals["next_pairs"]
                loss = totals["loss"] / max(totals["pairs"], 1.0)
                if not math.isfinite(loss):
                    raise guard.step_diverged(number(progress.step) + 1, loss, manager.latest_checkpoint)
                epoch_totals.add(1, loss, totals["loss"], totals["pairs"])
                words_done += totals["words"]
                done_in_epoch += 1
                progress.step.assign_add(1)
                progress.words_done.assign(words_done)
                progress.batch.assign(done_in_epoch)
                step = number(progress.step)
                if step % config.training.log_every == 0 or reporter.due():
                    words_per_second = reporter.report(epoch, epochs, step, words_done, loss, rate)
                    if training_log:
                        training_log.scalars(step, loss=loss, learning_rate=rate, words_per_second=words_per_second)
                if step % config.training.checkpoint_every == 0:
                    save()
                # A signal to any worker stops them all after the same step, each with a checkpoint.
                if totals["stop"] or (max_steps and step - start_step >= max_steps):
                    save()
                    if training_log:
                        training_log.run_end(step, model.embeddings, epoch_totals.last_loss)
                        training_log.close()
                    interrupted_by = None
                    if totals["stop"]:
                        interrupted_by = stop_request.signal_name or "SIGTERM"
                        log(f"stopped by {stop_request.signal_name or 'a signal to another worker'}: saved step "
                            f"{step:,} in {manager.latest_checkpoint}")
                    return TrainingResult(model, vocabulary, step, reporter.words_per_second(words_done),
                                          interrupted_by, step - start_step)
            figures = {**epoch_totals.summary(number(progress.words_done)),
                       **(evaluation.scores(model.embeddings) if evaluation else {})}
            if training_log:
                training_log.epoch_end(epoch + 1, number(progress.step), model.embeddings, figures,
                                       epoch_totals.last_loss)
            reporter.epoch_end(epoch, epochs, number(progress.step), figures)
            if best.after_epoch(epoch + 1, number(progress.step), figures, log):
                last_epoch = epoch + 1
                break
        if number(progress.step) > start_step or not manager.latest_checkpoint:
            progress.start_epoch(last_epoch)
            save()
        if distribution.is_chief:
            record_round_end(directory, config, number(progress.step))
        if training_log:
            training_log.close()
        words_per_second = reporter.words_per_second(number(progress.words_done))
        if distribution.workers > 1:
            log(f"{words_per_second:,.0f} words/s over {distribution.workers} workers, "
                f"{words_per_second / distribution.workers:,.0f} per worker")
        return TrainingResult(model, vocabulary, number(progress.step), words_per_second,
                              steps_this_run=number(progress.step) - start_step)
