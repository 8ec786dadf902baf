"""The training run from a config, in one process or on many replicas: vocabulary, network, checkpoints, then
epochs of batches.

One loop for every setting (training/distributed.py says which): a single process is the one-replica case.
With several replicas each trains its own copy of E and W on its own share of the corpus's lines, and they
exchange the rows they changed every `--sync-every` steps inside the compiled loop (training/step_runner.py,
model/replica_exchange.py). The chief (worker 0) writes the model directory; other workers checkpoint into a
temporary directory of their own, as TensorFlow's multi-worker guide recommends, and delete it at the end (or
the next run does, if this one is killed).
"""

import contextlib
import dataclasses
import math
import os
import pathlib

import tensorflow as tf

from config import Config
from data_pipeline.pairs import NOISE_POWER, chunk_ids, training_batches
from data_pipeline.sources import corpus_lines
from data_pipeline.vocabulary import Vocabulary, unigram_probabilities
from errors import UserError
from model.objectives import FullSoftmax, NegativeSampling, SampledSoftmax
from model.optimizer import BatchSGD, RowBounds
from model.replica_exchange import ChangedRows, Collectives, ReplicaExchange
from model.skipgram import SkipGram
from model.train_step import make_train_step
from storage import ScratchDirectory, process_temporary_directory
from training.checkpoints import Progress, finished_run_message, restore_checkpoint, training_checkpoint
from training.continuation import embedding_lock, training_lines
from training.distributed import (
    Distribution,
    agree_with_chief,
    check_workers_support,
    id_cache_for,
    lost_workers_named,
    position_layout,
    token_caches_for,
    worker_vocabulary,
)
from training.evaluation_hooks import BestCheckpoint, EpochEvaluation
from training.guard import DivergenceGuard
from training.interrupts import StopRequest
from training.model_directory import ModelDirectory
from training.preflight import settled_corpus_files
from training.reporting import EpochTotals, ProgressReporter
from training.rounds import record_round_end, round_corpus_words
from training.step_runner import linear_decay, make_step_runner
from training.tensorboard import TrainingLog

WAKE_EVERY = 50  # Python sees the run at least every this many steps, to act on a stop signal.


@dataclasses.dataclass
class TrainingResult:
    model: SkipGram
    vocabulary: Vocabulary
    steps: int
    words_per_second: float
    interrupted_by: str | None = None
    steps_this_run: int = 0  # `steps` counts every step since the run began, resumes included
    already_finished: bool = False  # every epoch was trained before this run: it trained nothing


def corpus_from(config: Config) -> tf.data.Dataset:
    """The corpus's lines; the files are checked against (or, at the start, recorded as) the run's corpus."""
    data = config.data
    files = settled_corpus_files(data)
    return corpus_lines(files, data.tfds_name, data.tfds_split, data.tfds_feature, data.tfds_data_dir)


def objective_for(config: Config, vocabulary: Vocabulary):
    """The objective and the shape of the noise words each batch brings it: (objective, [groups, k])."""
    bounds = RowBounds(config.training.max_row_updates, config.training.max_noise_row_updates)
    if config.training.loss == "negative":
        return NegativeSampling(config.data.negatives, bounds), negative_sampling_noise_shape(config, len(vocabulary))
    if config.training.loss == "sampled":
        noise = unigram_probabilities(vocabulary, NOISE_POWER)
        return SampledSoftmax(noise, bounds), (1, sampled_classes(config, len(vocabulary)))
    if config.training.loss == "full":
        return FullSoftmax(bounds), (1, 1)
    raise UserError(f"unknown --loss {config.training.loss!r}: choose negative, sampled or full")


def negative_sampling_noise_shape(config: Config, vocabulary_size: int) -> tuple[int, int]:
    """[groups, K] noise words per batch for negative sampling: [batch, negatives] with --shared-noise-words 0
    (fresh ones per pair), else [1, K] shared by the batch, K at least --shared-noise-words and enough that one
    noise word stands for at most `max_noise_row_updates` pairs' worth (batch x negatives / K): 32 at the
    defaults, 96 with --negatives 15. With fewer, every centre word of the batch is pushed by the same few
    noise words, and the vectors collapse (gcide, --negatives 15 and 32 noise words: analogy 0.071, not 0.224)."""
    data, training = config.data, config.training
    if not data.shared_noise_words:
        return training.batch_size, data.negatives
    needed = math.ceil(training.batch_size * data.negatives / training.max_noise_row_updates)
    return 1, min(max(data.shared_noise_words, needed), vocabulary_size)


# The default's 2,048 pairs share 256 sampled words: about 8 pairs per word.
PAIRS_PER_SAMPLED_WORD = 8


def sampled_classes(config: Config, vocabulary_size: int) -> int:
    """The words the sampled softmax draws per batch: at least `sampled_classes`, and one per 8 pairs of the
    batch. Its rare sampled words take most of each pair's probability (their importance weights are large), so
    with fewer the batch's pairs all pull the same few rows and E at once: at 8,192 pairs and 256 words the loss
    rose instead of falling (tests/test_stability.py)."""
    needed = math.ceil(config.training.batch_size / PAIRS_PER_SAMPLED_WORD)
    return min(max(config.training.sampled_classes, needed), vocabulary_size)


def number(variable: tf.Variable) -> int | float:
    """A scalar variable's value; int() and float() refuse a MirroredVariable."""
    return variable.numpy().item()


def crossed(before: int, after: int, every: int) -> bool:
    """Whether the steps from `before` to `after` reached a multiple of `every`."""
    return after // every > before // every


def steps_to_wake(step: int, config: Config, replicas: int, stop_at: int) -> int:
    """Steps until Python should next see the run: the next log line or checkpoint, at most WAKE_EVERY steps,
    and not past `stop_at` (--max-steps; 0: none). Replicas meet when Python wakes, so with several replicas
    the wake moves on to the next multiple of --sync-every: the meetings fall on the same steps in a run
    resumed from a checkpoint as in one never interrupted."""
    training = config.training
    steps = min(training.log_every - step % training.log_every,
                training.checkpoint_every - step % training.checkpoint_every, WAKE_EVERY)
    if replicas > 1:
        steps += -(step + steps) % training.sync_every
    if stop_at:
        steps = min(steps, stop_at - step)
    return steps


def train(config: Config, directory: ModelDirectory, distribution: Distribution | None = None, log=print,
          max_steps: int = 0) -> TrainingResult:
    """Trains (or resumes training) in `directory` until `config.training.epochs` are done, a stop signal to
    any worker, or `max_steps` steps in this run (0: no limit; a later run continues from the checkpoint)."""
    distribution = distribution or Distribution()
    check_workers_support(config, distribution)
    strategy, replicas = distribution.strategy, distribution.replicas
    saved = {"step": None}  # the step of the last checkpoint, for the message if another worker is lost
    with contextlib.ExitStack() as cleanup, lost_workers_named(distribution, saved):
        lines = corpus_from(config)
        # A new run's vocabulary pass keeps the tokenised lines of each stream this process trains (one process:
        # the whole corpus; a worker: its shards, all it counts), so that the first epoch does not tokenise them
        # again. They live in a temporary directory of this process, removed when the run ends (or by the next
        # run, if this one is killed).
        token_dir = cleanup.enter_context(process_temporary_directory("word2vec-tokens-"))
        token_caches = token_caches_for(distribution, token_dir)
        # The chief checks everything that can refuse the run before writing vocab.tsv and config.json.
        vocabulary = worker_vocabulary(config, directory, distribution, lines, token_caches)
        if replicas > 1:
            log(distribution.describe())  # Once the checks have passed: a refused run prints its one line only.
        log(f"vocabulary: {len(vocabulary):,} words, {vocabulary.total_words:,} corpus words in it")
        lines = training_lines(config, lines)  # A round's text, with earlier rounds' lines mixed in by --replay.

        with strategy.scope():
            model = SkipGram(len(vocabulary), config.model.embedding_dim, seed=config.training.seed, name="skipgram")
            optimizer, progress = BatchSGD(), Progress()
            lock = embedding_lock(config, len(vocabulary))  # None unless --lock-init-vectors
            variables = [model.embeddings, model.context_weights, model.context_bias]
            changed_rows = ChangedRows(variables) if replicas > 1 else None
            exchange = ReplicaExchange(strategy, Collectives(replicas), changed_rows)
        checkpoint = training_checkpoint(model, optimizer, progress, lock)
        checkpoints = directory.checkpoints if distribution.is_chief else pathlib.Path(
            cleanup.enter_context(process_temporary_directory("word2vec-worker-checkpoints-")))
        manager = tf.train.CheckpointManager(checkpoint, str(checkpoints), config.training.checkpoints_to_keep)
        if manager.latest_checkpoint:
            restore_checkpoint(checkpoint, manager.latest_checkpoint)
            saved["step"] = number(progress.step)
        agree_with_chief(distribution, [*variables, *optimizer.variables, *progress.variables,
                                        *([lock] if lock is not None else [])], vocabulary)
        if finished := finished_run_message(directory, progress, config.training.epochs):
            log(finished)
            return TrainingResult(model, vocabulary, number(progress.step), 0.0, already_finished=True)
        if changed_rows is not None:
            changed_rows.start()
        if number(progress.step):
            source = manager.latest_checkpoint if distribution.is_chief else "the chief's checkpoint"
            log(f"resuming from {source} at step {number(progress.step):,}, epoch {number(progress.epoch) + 1}")
        progress.layout.assign([config.training.batch_size, position_layout(distribution)])

        objective, noise_shape = objective_for(config, vocabulary)
        epochs = config.training.epochs
        total_words = epochs * round_corpus_words(config, vocabulary.total_words)  # This round's, when continuing.
        learning_rate = linear_decay(config.training.learning_rate, config.training.min_learning_rate_ratio, total_words)
        train_step = make_train_step(model, objective, optimizer, embedding_lock=lock, changed_rows=changed_rows)
        run_steps = make_step_runner(strategy, train_step, progress, learning_rate, exchange,
                                     config.training.sync_every, distribution.first_replica)
        reporter = ProgressReporter(total_words, number(progress.words_done))
        start_step = number(progress.step)
        stop_at = start_step + max_steps if max_steps else 0
        training_log = TrainingLog(directory.logs, vocabulary, config) if distribution.is_chief else None

        guard = DivergenceGuard(config, str(directory.root), variables)
        # Each epoch's totals from the compiled loop; the chief scores E at each epoch end (--eval-*), and
        # --keep-best / --early-stop follow those scores.
        totals = EpochTotals()
        evaluation = EpochEvaluation(config, vocabulary) if distribution.is_chief else None
        best = BestCheckpoint(config.training, checkpoint, directory.best)
        last_epoch = best.epochs_to_train(number(progress.epoch), epochs, log)

        def save() -> None:
            guard.check_state(number(progress.step), manager.latest_checkpoint)  # Never a checkpoint of non-finite values.
            manager.save(checkpoint_number=number(progress.step))
            saved["step"] = number(progress.step)

        exchanged = {"rows": 0.0, "steps": 0}

        def finish(interrupted_by: str | None = None, run_end: bool = True) -> TrainingResult:
            """The result; the chief's TensorBoard log gets E as it stands (unless an epoch end just did)."""
            if training_log:
                if run_end:
                    training_log.run_end(number(progress.step), model.embeddings, totals.last_loss)
                training_log.close()
            words_per_second = reporter.words_per_second(number(progress.words_done))
            if replicas > 1:
                rows_per_step = exchanged["rows"] / max(exchanged["steps"], 1)
                log(f"{words_per_second:,.0f} words/s over {replicas} replicas, {words_per_second / replicas:,.0f} "
                    f"per replica; {rows_per_step:,.0f} changed rows exchanged per step")
            return TrainingResult(model, vocabulary, number(progress.step), words_per_second, interrupted_by,
                                  number(progress.step) - start_step)

        # Replica r of R reads every R-th line from line r. Token ids are the same every epoch: the first epoch
        # writes them to a file cache that later epochs read instead of the corpus. The chief's cache lives in
        # model_dir/id-cache while the run holds the directory's lock, and is removed when the run ends; what a
        # killed run leaves there, the next run removes (training/preflight.py, training/distributed.py).
        cache_dir = cleanup.enter_context(ScratchDirectory(id_cache_for(directory, distribution), "the token-id cache"))
        streams = range(distribution.first_replica, distribution.first_replica + distribution.local_replicas)
        chunks = {stream: chunk_ids(lines.shard(replicas, stream) if replicas > 1 else lines, vocabulary,
                                    config.data.token_pattern, config.data.lines_per_chunk, token_caches[stream]).cache(
                                        os.path.join(cache_dir, f"ids-{stream}")) for stream in streams}

        def replica_batches(stream: int, epoch: int) -> tf.data.Dataset:
            """One epoch of replica `stream`'s batches, from where the checkpoint left off."""
            position = {"start_chunk": number(progress.chunk), "start_batch": number(progress.batch)} \
                if replicas == 1 else {}
            batches = training_batches(
                chunks[stream], vocabulary, window_size=config.data.window_size, sample=config.data.sample,
                batch_size=config.training.batch_size, noise_shape=noise_shape, seed=config.training.seed,
                epoch=epoch, stream=stream, **position)
            # Several replicas step in lockstep, so the batches done in this epoch locate each one's position.
            return batches if replicas == 1 else batches.skip(number(progress.batch))

        stop_request = cleanup.enter_context(StopRequest())
        for epoch in range(number(progress.epoch), last_epoch):
            if epoch != number(progress.epoch):
                progress.start_epoch(epoch)
            totals.start(number(progress.words_done))
            iterators = [iter(replica_batches(stream, epoch)) for stream in streams]
            while True:
                before = number(progress.step)
                trained = run_steps(iterators, steps_to_wake(before, config, replicas, stop_at),
                                    bool(stop_request))
                if trained.stopped:
                    # A signal to any worker stops them all after the same step, each with a checkpoint.
                    save()
                    log(f"stopped by {stop_request.signal_name or 'a signal to another worker'}: saved "
                        f"step {number(progress.step):,} in {manager.latest_checkpoint}")
                    return finish(stop_request.signal_name or "SIGTERM")
                step = number(progress.step)
                if trained.diverged:
                    if training_log:
                        training_log.close()
                    raise guard.step_diverged(step + 1, trained.last_loss, manager.latest_checkpoint)
                totals.add(trained.steps, trained.last_loss, trained.loss_sum, trained.pairs)
                exchanged["rows"] += trained.rows_exchanged
                exchanged["steps"] += trained.steps
                if trained.steps and (crossed(before, step, config.training.log_every) or reporter.due()):
                    words_done = number(progress.words_done)
                    rate = float(learning_rate(words_done))
                    words_per_second = reporter.report(epoch, epochs, step, words_done, trained.loss, rate)
                    if training_log:
                        training_log.scalars(step, loss=trained.loss, learning_rate=rate,
                                             words_per_second=words_per_second)
                saved_now = crossed(before, step, config.training.checkpoint_every)
                if saved_now:
                    save()
                if stop_at and step >= stop_at:
                    if not saved_now:
                        save()
                    return finish()
                if trained.epoch_over:
                    break
            step = number(progress.step)
            figures = {**totals.summary(number(progress.words_done)),
                       **(evaluation.scores(model.embeddings) if evaluation else {})}
            if training_log:
                training_log.epoch_end(epoch + 1, step, model.embeddings, figures, totals.last_loss)
            reporter.epoch_end(epoch, epochs, step, figures)
            if best.after_epoch(epoch + 1, step, figures, log):
                last_epoch = epoch + 1
                break
        if number(progress.step) > start_step or not manager.latest_checkpoint:
            progress.start_epoch(last_epoch)
            save()
        if distribution.is_chief:
            record_round_end(directory, config, number(progress.step))
        return finish(run_end=False)
