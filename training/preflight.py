"""Everything that can refuse a training run, checked before the run writes its first byte.

A mistake (a bad flag, an unusable corpus, a model directory from another run or damaged) stops the run with
one UserError and leaves the model directory exactly as it was. Only when every check has passed are vocab.tsv
and then config.json written; config.json is written last, so a directory without it holds no run yet.
"""

import fcntl
import logging
import os
import shutil

import tensorflow as tf

from cli import stderr_muted
from config import Config
from data_pipeline.pairs import chunk_ids, training_batches
from data_pipeline.vocabulary import Vocabulary, build_vocabulary
from errors import UserError, warn
from training.continuation import planned_start
from training.model_directory import ModelDirectory
from training.rounds import discard_uncommitted_update

CHECKPOINT_STATE = "checkpoint"  # The file in which tf.train.CheckpointManager lists the checkpoints.


def prepare_run(config: Config, directory: ModelDirectory, lines: tf.data.Dataset, token_cache: str = "") -> Vocabulary:
    """Checks the config, the directory and the corpus, then saves the vocabulary and the config; returns the
    vocabulary. `config.model.vocabulary_size` is filled in. Nothing is written unless every check passes.
    A new run's vocabulary pass leaves the tokenised corpus in `token_cache` (a temporary file), if given."""
    config.validate()
    check_token_pattern(config.data.token_pattern)
    resuming = check_directory_layout(directory)
    if directory.root.is_dir():
        hold_lock(directory)
    checkpoint = listed_checkpoint(directory)
    if resuming:
        vocabulary = Vocabulary.load(str(directory.vocabulary_path))
        if len(vocabulary) != config.model.vocabulary_size:
            raise UserError(
                f"{directory.vocabulary_path} holds {len(vocabulary):,} words but {directory.config_path} says "
                f"{config.model.vocabulary_size:,}: they come from different runs; train in a new --model-dir"
            )
    else:
        data = config.data
        vocabulary = build_vocabulary(lines, data.token_pattern, data.min_count, data.max_vocab, data.lines_per_chunk,
                                      data.max_vocab_memory, token_cache=token_cache)
        config.model.vocabulary_size = len(vocabulary)
    if checkpoint:
        check_checkpoint(checkpoint, config)
    # A new round on other text, or pretrained vectors: checked here, written last (training/continuation.py).
    start = planned_start(config, directory, lines, vocabulary, checkpoint, resuming)
    if not resuming or (start and start.new_text):
        check_training_pairs(config, lines, start.vocabulary if start else vocabulary, token_cache)
    directory.root.mkdir(parents=True, exist_ok=True)
    hold_lock(directory)
    if not resuming:
        vocabulary.save(str(directory.vocabulary_path))
    remove_unfinished_checkpoint_writes(directory)
    discard_uncommitted_update(directory)
    if start:
        return start.write(directory, config)
    directory.save_config(config)
    return vocabulary


def remove_unfinished_checkpoint_writes(directory: ModelDirectory) -> None:
    """A checkpoint write killed midway leaves a ckpt-N_temp folder that no listed checkpoint refers to."""
    for folder in directory.checkpoints.glob("ckpt-*_temp"):
        shutil.rmtree(folder, ignore_errors=True)


# Model directories this process has locked, by resolved path: the locks last as long as the process.
HELD_LOCKS: dict[str, int] = {}


def hold_lock(directory: ModelDirectory) -> None:
    """Locks the model directory for the life of this process, so that a second run on it stops instead of
    interleaving its checkpoints with the first one's. The kernel drops the lock when the process ends, even by
    SIGKILL, so no stale lock is ever left behind."""
    key = str(directory.root.resolve())
    if key in HELD_LOCKS:
        return
    descriptor = os.open(key, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise UserError(f"another run is training in --model-dir {directory.root}: wait for it to finish, "
                        "or choose another --model-dir") from None
    HELD_LOCKS[key] = descriptor


def check_token_pattern(token_pattern: str) -> None:
    """Refuses a separator pattern RE2 cannot compile, instead of failing deep inside the pipeline."""
    try:
        with stderr_muted():  # RE2 prints its own complaint from C++.
            tf.strings.regex_replace(tf.constant(["a b"]), token_pattern, " ")
    except tf.errors.InvalidArgumentError as error:
        reason = error.message.split("error: ")[-1].split(" [Op:")[0]
        raise UserError(f"--token-pattern {token_pattern!r} is not a valid RE2 regular expression: {reason}") from None


def check_directory_layout(directory: ModelDirectory) -> bool:
    """Whether the directory holds a saved run to resume; refuses one that is not a directory or is incomplete."""
    if directory.root.exists() and not directory.root.is_dir():
        raise UserError(f"--model-dir {str(directory.root)!r} is a file, not a directory: choose another --model-dir")
    has_checkpoints = directory.checkpoints.is_dir() and any(directory.checkpoints.iterdir())
    if not directory.config_path.exists():
        if has_checkpoints:
            raise UserError(
                f"{directory.root} holds checkpoints but no config.json, so they cannot be resumed safely; "
                "restore config.json from a backup, or train in a new --model-dir"
            )
        return False  # A vocab.tsv alone is left over from a run stopped before it started training: rebuilt.
    if not directory.vocabulary_path.exists():
        raise UserError(
            f"{directory.root} holds config.json but no vocab.tsv: restore it from a backup, "
            "or train in a new --model-dir"
        )
    return True


def listed_checkpoint(directory: ModelDirectory) -> str | None:
    """The checkpoint training resumes from, as tf.train.CheckpointManager will find it.

    CheckpointManager silently starts afresh when the list of checkpoints is missing or unreadable, which would
    overwrite the trained state; here that is an error. The one exception: a single checkpoint and no list is a
    first save killed before it was listed, and starting afresh loses no more than --checkpoint-every steps.
    """
    state = directory.checkpoints / CHECKPOINT_STATE
    if not state.exists():
        unlisted = list(directory.checkpoints.glob("ckpt-*.index"))
        if len(unlisted) > 1:
            raise UserError(
                f"{directory.checkpoints} holds {len(unlisted)} checkpoints but not the file {CHECKPOINT_STATE!r} "
                "that lists them; restore it from a backup, or train in a new --model-dir"
            )
        return None
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)  # get_checkpoint_state logs a warning for a damaged file, then returns None.
    try:
        listed = tf.train.get_checkpoint_state(str(directory.checkpoints))
    except ValueError:
        listed = None
    finally:
        tf_logger.setLevel(level)
    if listed is None:
        raise UserError(f"{state} is damaged; restore it from a backup, or train in a new --model-dir")
    return listed.model_checkpoint_path


def check_checkpoint(path: str, config: Config) -> None:
    """Reads every tensor of the checkpoint (each is checksummed) and compares E, W and W's bias with the config."""
    try:
        reader = tf.train.load_checkpoint(path)
        shapes = reader.get_variable_to_shape_map()
        for name in shapes:
            reader.get_tensor(name)
    except Exception as error:  # noqa: BLE001 - a damaged checkpoint raises OpError, ValueError or IndexError.
        reason = str(getattr(error, "message", error)).splitlines()[0]
        raise UserError(
            f"checkpoint {path} cannot be read ({reason}); restore the model directory from a backup, "
            "or train in a new --model-dir"
        ) from None
    vocabulary_size, dim = config.model.vocabulary_size, config.model.embedding_dim
    expected = {"E": [vocabulary_size, dim], "W": [vocabulary_size, dim], "W_bias": [vocabulary_size]}
    if config.training.lock_init_vectors:
        expected["E_lock"] = [vocabulary_size]
    for variable, shape in expected.items():
        found = shapes.get(f"{variable}/.ATTRIBUTES/VARIABLE_VALUE")
        if found != shape:
            raise UserError(
                f"checkpoint {path} holds {variable} of shape {found}, but config.json and vocab.tsv make {shape}: "
                "it comes from another run; train in a new --model-dir"
            )


def check_training_pairs(config: Config, lines: tf.data.Dataset, vocabulary: Vocabulary, token_cache: str = "") -> None:
    """Refuses a corpus that yields no (centre, context) pair in the first epoch; warns about one shorter than
    the window. Builds only the first batch, so a usable corpus costs one chunk of lines."""
    data = config.data
    batches = training_batches(
        chunk_ids(lines, vocabulary, data.token_pattern, data.lines_per_chunk, token_cache), vocabulary,
        window_size=data.window_size, sample=data.sample, batch_size=config.training.batch_size,
        seed=config.training.seed,
    )
    if not any(True for _ in batches.take(1)):
        subsampling = (f", or --sample 0 to keep every word of a tiny corpus (--sample {data.sample:g} drops "
                       "frequent ones)")
        raise UserError(
            "the corpus gives no training pairs: no line holds two vocabulary words near each other; give more text "
            f"with several words per line, or a lower --min-count{subsampling if data.sample > 0 else ''}"
        )
    if vocabulary.total_words <= data.window_size:
        warn(
            f"the corpus has only {vocabulary.total_words} words in the vocabulary, no more than --window "
            f"{data.window_size}: every word is within reach of every other, so there is little to learn"
        )
