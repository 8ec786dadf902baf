"""Where a run's model starts, when it is not a fresh random one: continuing a trained model on new text
(`--update-vocab`, `--keep-vocab`) or starting a new one from pretrained vectors (`--init-vectors`).

`planned_start` does every check and computation first, writing nothing (training/preflight.py calls it among its
other checks); the plan's `write` then writes the starting point in an order that a kill at any moment cannot
leave half-done (training/rounds.py). The training loop then resumes from the checkpoint written, as from any.

A new round (`--update-vocab`):
- counts the new text and adds the counts to the vocabulary's; the new text's words that reach --min-count and
  are not in the vocabulary get ids after the existing ones, so every existing word keeps its id;
- builds the grown network (E, W and W's bias with one more row per new word) and copies the trained rows into it;
  new rows start as a fresh run's do: E uniform in +-0.5/D, W and its bias zero;
- saves it as the round's first checkpoint, at the step count reached so far, with the data position and the words
  done back at zero: the learning rate runs its schedule again over the new text's words x --epochs.
`--keep-vocab` is the same round with no word added.

`--replay FRACTION` also trains the round on that share of the earlier rounds' lines, sampled the same way every
epoch and spread through the new text (`training_lines`); their words count in the learning rate's decay.
"""

import dataclasses
import shutil
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from config import Config, Round, first_round
from data_pipeline.pairs import chunk_ids
from data_pipeline.pretrained import PretrainedRows, pretrained_rows
from data_pipeline.sources import corpus_lines, mixed_lines, sampled_lines
from data_pipeline.vocabulary import UpdatedVocabulary, Vocabulary, checked_words, count_corpus, updated_vocabulary
from errors import UserError, warn
from model.optimizer import BatchSGD
from model.skipgram import SkipGram
from training.checkpoints import Progress, listed_checkpoint_names, restore_checkpoint, training_checkpoint
from training.model_directory import ModelDirectory
from training.rounds import (
    CHECKPOINT_STATE,
    OBSOLETE,
    commit,
    finish_committed_update,
    kill_point,
    now,
    round_flag,
    same_text,
    staging_directory,
)
from training.tensorboard import log_rounds

EPOCH_KEY = "progress/epoch/.ATTRIBUTES/VARIABLE_VALUE"


def embedding_lock(config: Config, vocabulary_size: int) -> tf.Variable | None:
    """Per row of E, the share of its gradient that training applies: 0 for the rows --lock-init-vectors keeps
    fixed, 1 for the others (gensim's `lockf`). None without --lock-init-vectors. Saved in the checkpoint."""
    if not config.training.lock_init_vectors:
        return None
    return tf.Variable(tf.ones([vocabulary_size]), trainable=False, name="E_lock")


@dataclasses.dataclass
class TrainingState:
    """The network, optimizer, progress and lock of one vocabulary size, tied together in a training checkpoint."""

    model: SkipGram
    optimizer: BatchSGD
    progress: Progress
    lock: tf.Variable | None
    checkpoint: tf.train.Checkpoint


def training_state(config: Config, vocabulary_size: int) -> TrainingState:
    """What the training loop builds for `vocabulary_size` words, as a checkpoint can be restored into."""
    model = SkipGram(vocabulary_size, config.model.embedding_dim, seed=config.training.seed, name="skipgram")
    optimizer, progress = BatchSGD(), Progress()
    lock = embedding_lock(config, vocabulary_size)
    return TrainingState(model, optimizer, progress, lock, training_checkpoint(model, optimizer, progress, lock))


@dataclasses.dataclass
class VectorStart:
    """A new model whose E starts, for the words a vectors file holds, from those vectors."""

    vocabulary: Vocabulary
    rows: PretrainedRows
    path: str
    new_text: bool = False

    def write(self, directory: ModelDirectory, config: Config, log: Callable[[str], None] = print) -> Vocabulary:
        """Saves config.json, then the first checkpoint at step 0. A run killed before that checkpoint is listed
        holds a config and no checkpoint: the next one makes the same start again."""
        directory.save_config(config)
        log(self.rows.coverage(self.vocabulary, self.path)
            + ("; --lock-init-vectors keeps them fixed" if config.training.lock_init_vectors else ""))
        if not len(self.rows.ids):
            warn(f"no word of the vocabulary is in --init-vectors {self.path}: E starts at random, as without it")
        state = training_state(config, len(self.vocabulary))
        ids = tf.constant(self.rows.ids)
        state.model.embeddings.scatter_update(tf.IndexedSlices(tf.constant(self.rows.vectors), ids))
        if state.lock is not None:
            state.lock.scatter_update(tf.IndexedSlices(tf.zeros([len(self.rows.ids)]), ids))
        manager = tf.train.CheckpointManager(state.checkpoint, str(directory.checkpoints),
                                             config.training.checkpoints_to_keep)
        manager.save(checkpoint_number=0)
        return self.vocabulary


@dataclasses.dataclass
class RoundStart:
    """A new round on new text: the vocabulary updated, and the trained checkpoint it continues from."""

    updated: UpdatedVocabulary
    previous: Vocabulary
    checkpoint: str
    replay_words: int = 0
    new_text: bool = True

    @property
    def vocabulary(self) -> Vocabulary:
        return self.updated.vocabulary

    def write(self, directory: ModelDirectory, config: Config, log: Callable[[str], None] = print) -> Vocabulary:
        """Writes the round's vocab.tsv, config.json and first checkpoint into the journal, commits it and moves
        it into place (training/rounds.py); logs the round in TensorBoard's TEXT tab."""
        step = int(tf.train.load_variable(self.checkpoint, "progress/step/.ATTRIBUTES/VARIABLE_VALUE"))
        record = self.record(config, step)
        config.training.rounds.append(record)
        config.model.vocabulary_size = len(self.vocabulary)
        name = f"ckpt-{step}-round{len(config.training.rounds)}"

        staging = staging_directory(directory)
        try:
            staging.mkdir()
            grown_checkpoint(config, self.checkpoint, len(self.previous), len(self.vocabulary),
                             len(config.training.rounds)).write(str(staging / name))
            kill_point("staging")
            self.vocabulary.save(str(staging / "vocab.tsv"))
            (staging / CHECKPOINT_STATE).write_text(checkpoint_state(name), encoding="utf-8")
            previous = listed_checkpoint_names(directory.checkpoints) or []
            (staging / OBSOLETE).write_text("\n".join(previous) + "\n", encoding="utf-8")
            (staging / "config.json").write_text(config.to_json() + "\n", encoding="utf-8")
        except Exception:
            # A write that failed (a full disk): the round never began, and its files would hold the last free bytes.
            shutil.rmtree(staging, ignore_errors=True)
            raise
        commit(directory)
        kill_point("committed")
        finish_committed_update(directory)

        replayed = (f" and {record.replay_words:,} of the earlier rounds' (--replay {record.replay:g})"
                    if record.replay_words else "")
        log(f"round {len(config.training.rounds)} ({record.kind}): {record.words_added:,} words added "
            f"({len(self.previous):,} -> {len(self.vocabulary):,}), {record.corpus_words:,} of the new text's words in "
            f"the vocabulary{replayed}, {record.epochs} epoch(s) from learning rate {record.learning_rate:g}, "
            f"from step {step:,}")
        log_rounds(directory.logs, step, config.training.rounds)
        return self.vocabulary

    def record(self, config: Config, step: int) -> Round:
        """The new round's record; the round it follows is closed at `step`."""
        previous = config.training.rounds[-1]
        if previous.end_step < 0:
            previous.end_step = step
        data, training = config.data, config.training
        return Round(kind=round_flag(data).removeprefix("--"), corpus=list(data.corpus),
                     corpus_files=list(data.corpus_files), tfds_name=data.tfds_name, tfds_split=data.tfds_split,
                     tfds_feature=data.tfds_feature,
                     corpus_words=self.updated.corpus_words, vocabulary_size=len(self.vocabulary),
                     words_added=self.updated.words_added, epochs=training.epochs,
                     learning_rate=training.learning_rate, start_step=step, started=now(),
                     replay=data.replay, replay_words=self.replay_words)


def planned_start(config: Config, directory: ModelDirectory, lines: tf.data.Dataset, vocabulary: Vocabulary,
                  checkpoint: str | None, resuming: bool) -> VectorStart | RoundStart | None:
    """How this run's model starts, once every check has passed; None where the loop starts or resumes as usual.
    Writes nothing; notes the run in `config.training.rounds` (a first round, or the current one's epochs)."""
    if not resuming:
        config.training.rounds = [first_round(config, now())]
    current = config.training.rounds[-1] if config.training.rounds else None
    if current is None:  # A config made in Python for a directory trained before rounds were recorded.
        config.training.rounds = [current := first_round(config)]
    if current.kind == "new":  # A first round's vocabulary is all its own corpus's.
        current.corpus_words, current.vocabulary_size = vocabulary.total_words, len(vocabulary)
        current.words_added = len(vocabulary)
    if config.training.init_vectors and checkpoint is None:
        rows = pretrained_rows(config.training.init_vectors, vocabulary, config.model.embedding_dim)
        update_current_round(current, config)
        return VectorStart(vocabulary, rows, config.training.init_vectors)
    if not starts_new_round(config, current, checkpoint):
        check_resumed_replay(config, current)
        update_current_round(current, config)
        return None
    data = config.data
    counts = checked_words(count_corpus(lines, data.token_pattern, data.lines_per_chunk, data.max_vocab_memory))
    updated = updated_vocabulary(vocabulary, counts, data.min_count, data.max_vocab, add_words=data.update_vocab)
    if not updated.corpus_words:
        hint = "; --keep-vocab ignores new words: --update-vocab adds them" if data.keep_vocab else ""
        raise UserError(f"the corpus has no word of the model's vocabulary, so {round_flag(data)} has nothing to "
                        f"train on{hint}")
    replay_words = counted_replay_words(config, updated.vocabulary) if data.replay else 0
    epoch = int(tf.train.load_variable(checkpoint, EPOCH_KEY))
    if epoch < current.epochs:
        warn(f"round {len(config.training.rounds)} stopped at epoch {epoch + 1} of {current.epochs}; the new round "
             "continues from there")
    return RoundStart(updated, vocabulary, checkpoint, replay_words)


def replayed_lines(config: Config, round_number: int) -> tf.data.Dataset:
    """The share `--replay` of the lines of every round before round `round_number` (counted from 1), one
    round's after another's, each sampled by its own seed; refuses in one line when a round's text is gone."""
    fraction = config.data.replay if round_number > len(config.training.rounds) else \
        config.training.rounds[round_number - 1].replay
    parts = []
    for number, earlier in enumerate(config.training.rounds[:round_number - 1], start=1):
        try:
            lines = corpus_lines(earlier.corpus, earlier.tfds_name, earlier.tfds_split, earlier.tfds_feature,
                                 config.data.tfds_data_dir)
        except UserError as error:
            raise UserError(f"--replay {fraction:g} trains round {round_number} on earlier rounds' text too, but round "
                            f"{number}'s cannot be read ({error}): restore it where it was, or start the round "
                            "without --replay") from None
        parts.append(sampled_lines(lines, fraction, (config.training.seed, round_number * 1024 + number)))
    replayed = parts[0]
    for part in parts[1:]:
        replayed = replayed.concatenate(part)
    return replayed


def counted_replay_words(config: Config, vocabulary: Vocabulary) -> int:
    """The words of a new round's replayed lines that are in `vocabulary`: one pass over the sample."""
    data = config.data
    chunks = chunk_ids(replayed_lines(config, len(config.training.rounds) + 1), vocabulary, data.token_pattern,
                       data.lines_per_chunk)
    words = int(chunks.reduce(tf.constant(0, tf.int64),
                              lambda total, ids: total + tf.size(ids.flat_values, out_type=tf.int64)))
    if not words:
        warn(f"--replay {data.replay:g} kept no word of the earlier rounds' text: the round trains on the new text "
             "only")
    return words


def check_resumed_replay(config: Config, current: Round) -> None:
    """A resumed round replays what it started with: another --replay is refused, and so is earlier text
    that is no longer there (read before anything is written)."""
    if config.data.replay and config.data.replay != current.replay:
        raise UserError(f"round {len(config.training.rounds)} was started with --replay {current.replay:g}: resume "
                        f"it with that value or without --replay")
    if current.replay_words:
        replayed_lines(config, len(config.training.rounds))


def training_lines(config: Config, lines: tf.data.Dataset) -> tf.data.Dataset:
    """What the current round trains on: its text, with the earlier rounds' replayed lines (--replay) spread
    through it in proportion to their words, in the same order every epoch and on resume."""
    current = config.training.rounds[-1] if config.training.rounds else None
    if current is None or not current.replay_words:
        return lines
    share = current.replay_words / (current.corpus_words + current.replay_words)
    round_number = len(config.training.rounds)
    seed = (config.training.seed * 1024 + round_number) % (2**31 - 1)
    return mixed_lines(lines, replayed_lines(config, round_number), share, seed)


def starts_new_round(config: Config, current: Round, checkpoint: str | None) -> bool:
    """--update-vocab or --keep-vocab starts a round, except on the current round's own text while that round is
    unfinished: the same command run again after an interruption resumes it."""
    if not (config.data.update_vocab or config.data.keep_vocab):
        return False
    if checkpoint is None:
        raise UserError(f"{round_flag(config.data)} continues a trained model, but this --model-dir holds no "
                        "checkpoint yet: train it first")
    return not same_text(current, config.data) or int(tf.train.load_variable(checkpoint, EPOCH_KEY)) >= current.epochs


def update_current_round(current: Round, config: Config) -> None:
    """The current round's record follows the run's epochs and rate; a round given more epochs is open again."""
    if config.training.epochs > current.epochs and current.end_step >= 0:
        current.end_step, current.finished = -1, ""
    current.epochs, current.learning_rate = config.training.epochs, config.training.learning_rate


def grown_checkpoint(config: Config, path: str, old_size: int, new_size: int, round_number: int) -> tf.train.Checkpoint:
    """The checkpoint at `path` (of `old_size` words) in a network of `new_size` words: the trained rows copied,
    new rows of E drawn as a fresh run draws them, new rows of W, its bias and the optimizer's per-word state zero,
    new rows of the lock 1 (they train). The step count and the optimizer carry on; the data position and words
    done start again at zero for the new round."""
    old, new = training_state(config, old_size), training_state(config, new_size)
    restore_checkpoint(old.checkpoint, path)
    added = new_size - old_size
    limit = 0.5 / config.model.embedding_dim
    fresh = np.random.default_rng([config.training.seed, round_number]).uniform(
        -limit, limit, (added, config.model.embedding_dim)).astype(np.float32)
    new.model.embeddings.assign(np.concatenate([old.model.embeddings.numpy(), fresh]))
    pairs = [(old.model.context_weights, new.model.context_weights), (old.model.context_bias, new.model.context_bias),
             *zip(old.optimizer.variables, new.optimizer.variables)]
    if old.lock is not None:
        new.lock.assign(np.concatenate([old.lock.numpy(), np.ones(added, np.float32)]))
    for source, target in pairs:
        value = source.numpy()
        if value.shape != tuple(target.shape):  # A per-word variable: one zero row per new word.
            value = np.concatenate([value, np.zeros((added, *value.shape[1:]), value.dtype)])
        target.assign(value)
    for source, target in zip(old.progress.variables, new.progress.variables):
        target.assign(source)
    new.progress.start_epoch(0)
    new.progress.words_done.assign(0.0)
    new.checkpoint.save_counter.assign(old.checkpoint.save_counter)
    return new.checkpoint


def checkpoint_state(name: str) -> str:
    """The checkpoint list (tf.train.CheckpointManager's text format) naming `name` as the only checkpoint."""
    stamp = time.time()
    return (f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n'
            f"all_model_checkpoint_timestamps: {stamp}\nlast_preserved_timestamp: {stamp}\n")
