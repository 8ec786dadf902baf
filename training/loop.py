"""The training run from a config: vocabulary, network, checkpoints, then epochs of batches."""

import dataclasses
import math
import os

import tensorflow as tf

from config import Config
from data_pipeline.pairs import NOISE_POWER, chunk_ids, training_batches
from data_pipeline.sources import corpus_lines
from data_pipeline.vocabulary import Vocabulary, unigram_probabilities
from errors import UserError
from model.objectives import FullSoftmax, NegativeSampling, SampledSoftmax
from model.optimizer import BatchSGD, RowBounds
from model.skipgram import SkipGram
from model.train_step import make_train_step
from storage import ScratchDirectory, process_temporary_directory
from training.checkpoints import SINGLE_PROCESS, Progress, finished_run_message, restore_checkpoint, training_checkpoint
from training.continuation import embedding_lock, training_lines
from training.evaluation_hooks import BestCheckpoint, EpochEvaluation
from training.guard import DivergenceGuard
from training.interrupts import StopRequest
from training.model_directory import ModelDirectory
from training.preflight import prepare_run, settled_corpus_files
from training.reporting import EpochTotals, ProgressReporter
from training.rounds import record_round_end, round_corpus_words
from training.step_runner import linear_decay, make_step_runner
from training.tensorboard import TrainingLog


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


def train(config: Config, directory: ModelDirectory, log=print, max_steps: int = 0) -> TrainingResult:
    """Trains (or resumes training) in `directory` until `config.training.epochs` are done, a stop signal,
    or `max_steps` steps in this run (0: no limit; a later run continues from the checkpoint)."""
    lines = corpus_from(config)
    # A new run's vocabulary pass keeps the tokenised corpus (token_cache), so that the first epoch does not
    # tokenise it again. The pass runs before the model directory may be written, so the cache lives in a
    # temporary directory of this process, removed when the run ends (or by the next run, if this one is killed).
    token_dir = process_temporary_directory("word2vec-tokens-")
    token_cache = os.path.join(token_dir.name, "tokens")
    # Checks everything that can refuse the run before writing vocab.tsv and config.json (training/preflight.py).
    vocabulary = prepare_run(config, directory, lines, token_cache=token_cache)
    log(f"vocabulary: {len(vocabulary):,} words, {vocabulary.total_words:,} corpus words in it")
    lines = training_lines(config, lines)  # A round's text, with earlier rounds' lines mixed in by --replay.

    model = SkipGram(len(vocabulary), config.model.embedding_dim, seed=config.training.seed, name="skipgram")
    optimizer, progress = BatchSGD(), Progress()
    lock = embedding_lock(config, len(vocabulary))  # None unless --lock-init-vectors
    checkpoint = training_checkpoint(model, optimizer, progress, lock)
    manager = tf.train.CheckpointManager(checkpoint, str(directory.checkpoints), config.training.checkpoints_to_keep)
    if manager.latest_checkpoint:
        restore_checkpoint(checkpoint, manager.latest_checkpoint)
        if finished := finished_run_message(directory, progress, config.training.epochs):
            log(finished)
            return TrainingResult(model, vocabulary, int(progress.step), 0.0, already_finished=True)
        log(f"resuming from {manager.latest_checkpoint} at step {int(progress.step):,}, epoch {int(progress.epoch) + 1}")
    progress.layout.assign([config.training.batch_size, SINGLE_PROCESS])

    objective, noise_shape = objective_for(config, vocabulary)
    epochs = config.training.epochs
    total_words = epochs * round_corpus_words(config, vocabulary.total_words)  # This round's, when continuing.
    learning_rate = linear_decay(config.training.learning_rate, config.training.min_learning_rate_ratio, total_words)
    run_steps = make_step_runner(make_train_step(model, objective, optimizer, lock), progress, learning_rate)
    reporter = ProgressReporter(total_words, float(progress.words_done))
    start_step = int(progress.step)
    training_log = TrainingLog(directory.logs, vocabulary, config)
    guard = DivergenceGuard(config, str(directory.root), [model.embeddings, model.context_weights, model.context_bias])
    # Issue 16: each epoch's totals from the compiled loop, evaluation scores, --keep-best and --early-stop.
    totals, evaluation = EpochTotals(), EpochEvaluation(config, vocabulary)
    best = BestCheckpoint(config.training, checkpoint, directory.best)
    last_epoch = best.epochs_to_train(int(progress.epoch), epochs, log)

    def save() -> None:
        guard.check_state(int(progress.step), manager.latest_checkpoint)  # Never a checkpoint of non-finite values.
        manager.save(checkpoint_number=int(progress.step))

    # Token ids are the same every epoch: the first epoch writes them to a file cache that later epochs read
    # instead of the corpus. The cache lives in model_dir/id-cache while the run holds the directory's lock, and is
    # removed when the run ends; what a killed run leaves there, the next run removes (training/preflight.py).
    cache_dir = ScratchDirectory(directory.id_cache, "the token-id cache")
    chunks = chunk_ids(lines, vocabulary, config.data.token_pattern, config.data.lines_per_chunk, token_cache)
    chunks = chunks.cache(os.path.join(cache_dir.name, "ids"))

    with token_dir, cache_dir, StopRequest() as stop_request:
        for epoch in range(int(progress.epoch), last_epoch):
            if epoch != int(progress.epoch):
                progress.start_epoch(epoch)
            totals.start(float(progress.words_done))
            batches = training_batches(
                chunks, vocabulary, window_size=config.data.window_size, sample=config.data.sample,
                batch_size=config.training.batch_size, noise_shape=noise_shape,
                seed=config.training.seed, epoch=epoch, start_chunk=int(progress.chunk), start_batch=int(progress.batch),
            )
            iterator, step = iter(batches), int(progress.step)
            while True:
                # Python wakes at the next log line or checkpoint, and at least every 50 steps for signals.
                steps = min(config.training.log_every - step % config.training.log_every,
                            config.training.checkpoint_every - step % config.training.checkpoint_every, 50)
                if max_steps:
                    steps = min(steps, start_step + max_steps - step)
                trained, loss, loss_sum, pairs, finite = run_steps(iterator, tf.constant(steps, tf.int64))
                step += int(trained)
                if not bool(finite):
                    training_log.close()
                    raise guard.step_diverged(step + 1, float(loss), manager.latest_checkpoint)
                totals.add(int(trained), float(loss), float(loss_sum), float(pairs))
                if int(trained) and (step % config.training.log_every == 0 or reporter.due()):
                    words_done = float(progress.words_done)
                    rate = float(learning_rate(words_done))
                    words_per_second = reporter.report(epoch, epochs, step, words_done, float(loss), rate)
                    training_log.scalars(step, loss=float(loss), learning_rate=rate, words_per_second=words_per_second)
                saved_now = bool(int(trained)) and step % config.training.checkpoint_every == 0
                if saved_now:
                    save()
                reached_max_steps = bool(max_steps) and step - start_step >= max_steps
                if reached_max_steps or stop_request:
                    if not saved_now:
                        save()
                    training_log.run_end(step, model.embeddings, totals.last_loss)
                    if stop_request:
                        log(f"stopped by {stop_request.signal_name}: saved step {step:,} in {manager.latest_checkpoint}")
                    training_log.close()
                    return TrainingResult(model, vocabulary, step,
                                          reporter.words_per_second(float(progress.words_done)),
                                          stop_request.signal_name, steps_this_run=step - start_step)
                if int(trained) < steps:
                    break
            figures = {**totals.summary(float(progress.words_done)), **evaluation.scores(model.embeddings)}
            training_log.epoch_end(epoch + 1, int(progress.step), model.embeddings, figures, totals.last_loss)
            reporter.epoch_end(epoch, epochs, int(progress.step), figures)
            if best.after_epoch(epoch + 1, int(progress.step), figures, log):
                last_epoch = epoch + 1
                break
        if int(progress.step) > start_step or not manager.latest_checkpoint:
            progress.start_epoch(last_epoch)
            save()
        record_round_end(directory, config, int(progress.step))
    training_log.close()
    return TrainingResult(model, vocabulary, int(progress.step), reporter.words_per_second(float(progress.words_done)),
                          steps_this_run=int(progress.step) - start_step)
