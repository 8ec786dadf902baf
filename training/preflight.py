"""Everything that can refuse a training run, checked before the run writes its first byte.

A mistake (a bad flag, an unusable corpus, a model directory from another run or damaged, a resume that would
read other data, a run too big for the memory available) stops the run with one UserError, and a model directory
training cannot write in with one ResourceError; either leaves the model directory exactly as it was. Only when
every check has passed are vocab.tsv and then config.json written; config.json is written last, so a directory
without it holds no run yet.
"""

import fcntl
import logging
import os
import re
import shutil
from collections.abc import Callable

import tensorflow as tf

from cli import stderr_muted
from config import Config, DataConfig
from data_pipeline.corpus_identity import absolute_path, corpus_change, corpus_identity
from data_pipeline.pairs import chunk_ids, training_batches
from data_pipeline.sources import EMBEDDED_CORPUS, corpus_files
from data_pipeline.vocabulary import Vocabulary, build_vocabulary
from errors import ResourceError, UserError, warn
from storage import WriteError, file_system_type, first_missing, shown, unwritable_reason, writing
from training.checkpoints import LAYOUT_KEY, SINGLE_PROCESS, describe_layout, listed_checkpoint_names
from training.continuation import planned_start
from training.memory_estimate import check_counting_memory, check_training_memory
from training.model_directory import ModelDirectory
from training.rounds import CHECKPOINT_STATE, discard_uncommitted_update
from training.tensorboard import RUN_NAME


def prepare_run(config: Config, directory: ModelDirectory, lines: tf.data.Dataset,
                replicas: int = SINGLE_PROCESS, token_cache: str = "",
                count_vocabulary: Callable[[], Vocabulary] | None = None) -> Vocabulary:
    """Checks the config, the directory, the corpus and the memory the run needs, then saves the vocabulary and
    the config; returns the vocabulary. `config.model.vocabulary_size` is filled in. Nothing is written unless
    every check passes. `replicas` is how the loop counts its data position (training/checkpoints.py). A new
    run's vocabulary pass leaves the tokenised corpus in `token_cache` (a temporary file), if given; with
    `count_vocabulary`, a new run's vocabulary is what it returns (several workers count it together)."""
    config.validate()
    check_token_pattern(config.data.token_pattern)
    resuming = check_directory_layout(directory)
    check_writable(directory)
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
        check_counting_memory(data.max_vocab_memory, sum(file["bytes"] for file in data.corpus_files))
        vocabulary = count_vocabulary() if count_vocabulary else build_vocabulary(
            lines, data.token_pattern, data.min_count, data.max_vocab, data.lines_per_chunk, data.max_vocab_memory,
            token_cache=token_cache)
        config.model.vocabulary_size = len(vocabulary)
    if checkpoint:
        check_checkpoint(checkpoint, config)
    if resuming and (config.data.update_vocab or config.data.keep_vocab):  # A new round counts its text too.
        check_counting_memory(config.data.max_vocab_memory, sum(file["bytes"] for file in config.data.corpus_files))
    # A new round on other text, or pretrained vectors: checked here, written last (training/continuation.py).
    start = planned_start(config, directory, lines, vocabulary, checkpoint, resuming)
    trained = start.vocabulary if start else vocabulary
    if checkpoint and not (start and start.new_text):  # A new round starts its data position afresh.
        check_position_layout(checkpoint, config.training.batch_size, replicas)
    check_training_memory(config, len(trained), trained.total_words,
                          id_cache_in_memory=file_system_type(directory.root) in ("tmpfs", "ramfs"))
    if not resuming or (start and start.new_text):
        check_training_pairs(config, lines, trained, token_cache)
    save_run_files(config, directory, vocabulary if not resuming else None, config_too=start is None)
    remove_unfinished_checkpoint_writes(directory)
    discard_uncommitted_update(directory)
    shutil.rmtree(directory.id_cache, ignore_errors=True)  # A killed run's token ids: the lock says it is gone.
    if start:
        return start.write(directory, config)
    return vocabulary


def save_run_files(config: Config, directory: ModelDirectory, vocabulary: Vocabulary | None,
                   config_too: bool = True) -> None:
    """Writes vocab.tsv (when given) and then config.json (unless a new start writes it later). If a write fails (a full disk), a model directory this
    call created is removed again, so that a refused run leaves nothing behind."""
    created = first_missing(directory.root)
    try:
        with writing("the model directory", directory.root):
            directory.root.mkdir(parents=True, exist_ok=True)
        hold_lock(directory)
        if vocabulary is not None:
            vocabulary.save(str(directory.vocabulary_path))
        if config_too:
            directory.save_config(config)
    except WriteError as error:
        if created is not None:
            release_lock(directory)
            shutil.rmtree(created, ignore_errors=True)
        hint = "nothing else was changed: free some space and run the same command again"
        raise WriteError(error.what, error.where, error.reason, hint) from error


def check_writable(directory: ModelDirectory) -> None:
    """Refuses, in one line and before anything is read or written, a model directory that training cannot write
    in: on a read-only file system, or without permission. Reading it (export.py, evaluate.py) still works."""
    places = [place for place in (directory.root, directory.checkpoints, directory.logs, directory.logs / RUN_NAME,
                                  directory.best) if place.is_dir()]
    if not places:  # A new model directory: its nearest existing parent must take it.
        places = [next(parent for parent in directory.root.absolute().parents if parent.exists())]
    for place in places:
        reason = unwritable_reason(place)
        if reason is None:
            continue
        which = f"--model-dir {shown(directory.root)}" + (f" ({shown(place)})" if place != directory.root else "")
        if not directory.root.exists():
            which = f"--model-dir {shown(directory.root)} cannot be created: {shown(place)}"
        raise ResourceError(
            f"{which} {reason}: training writes its checkpoints and logs there; export.py and evaluate.py can still "
            "read a model directory there, and to train further, copy it somewhere writable and pass that --model-dir"
        )


def settled_corpus_files(data: DataConfig) -> list[str]:
    """The corpus files to read, checked against the corpus the run in the model directory trained on, whose
    identity (absolute paths, sizes, fingerprints) is then recorded in `data.corpus_files`; empty for TFDS.

    Patterns in `data.corpus` are made absolute first, so that a resume from another directory reads the same
    files. The same content moved elsewhere is the same corpus; anything else is refused, saying what changed (the
    saved vocabulary and data position belong to the old corpus), unless --update-vocab or --keep-vocab makes it
    the text of a new round (training/continuation.py).
    """
    if data.tfds_data_dir:
        data.tfds_data_dir = absolute_path(data.tfds_data_dir)
    if data.tfds_name:
        data.corpus_files = []
        return []
    data.corpus = [absolute_path(pattern) for pattern in data.corpus]
    files = corpus_files(data.corpus) if data.corpus else [str(EMBEDDED_CORPUS)]
    current = corpus_identity(files)
    new_round = data.update_vocab or data.keep_vocab
    change = corpus_change(data.corpus_files, current) if data.corpus_files and not new_round else None
    if change:
        raise UserError(
            f"the corpus is not the one this run trained on: {change}; its vocabulary and data position belong to "
            "the files listed as corpus_files in config.json: add --update-vocab to continue training on it and add "
            "its new words, or --keep-vocab to continue with the vocabulary unchanged; or give --corpus those files, "
            "or train in a new --model-dir"
        )
    data.corpus_files = current
    return files


def remove_unfinished_checkpoint_writes(directory: ModelDirectory) -> None:
    """A checkpoint write killed midway (or failed on a full disk) leaves what no listed checkpoint refers to: a
    ckpt-N_temp folder (best-N_temp for --keep-best's), or, cut short while TensorFlow wrote the index last (in
    place, not renamed), ckpt-N.data and a torn ckpt-N.index. The list itself is written only after both."""
    for folder in [*directory.checkpoints.glob("ckpt-*_temp"), *directory.best.glob("best-*_temp")]:
        shutil.rmtree(folder, ignore_errors=True)
    for folder in [directory.checkpoints, directory.best]:
        listed = listed_checkpoint_names(folder)
        if listed is None:  # No list to go by: a first save killed before it was listed is overwritten instead.
            continue
        for path in folder.glob("*-*"):
            name = re.fullmatch(r"(.+)\.(index|data-\d+-of-\d+)", path.name)
            if name and name.group(1) not in listed:
                path.unlink(missing_ok=True)


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


def release_lock(directory: ModelDirectory) -> None:
    """Lets go of the directory's lock before this process ends (a refused run that removes the directory)."""
    descriptor = HELD_LOCKS.pop(str(directory.root.resolve()), None)
    if descriptor is not None:
        os.close(descriptor)


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


def check_position_layout(path: str, batch_size: int, replicas: int) -> None:
    """Refuses to resume inside an epoch with another batch size or another loop than the position was counted in:
    it would land elsewhere in the data, skipping or repeating pairs. At an epoch's start any layout reads it right.
    """
    reader = tf.train.load_checkpoint(path)
    if not reader.has_tensor(LAYOUT_KEY):
        return  # Written before positions recorded their layout.
    saved_batch_size, saved_replicas = (int(value) for value in reader.get_tensor(LAYOUT_KEY))
    position = {name: int(reader.get_tensor(f"progress/{name}/.ATTRIBUTES/VARIABLE_VALUE"))
                for name in ("epoch", "chunk", "batch")}
    at_epoch_start = position["chunk"] == 0 and position["batch"] == 0
    if at_epoch_start or saved_batch_size == 0 or (saved_batch_size, saved_replicas) == (batch_size, replicas):
        return
    epoch = position["epoch"] + 1
    same = []
    if saved_batch_size != batch_size:
        same.append(f"--batch-size {saved_batch_size}")
    if saved_replicas != replicas:
        same.append("--distribute none (and no TF_CONFIG)" if saved_replicas == SINGLE_PROCESS
                    else f"the --distribute and TF_CONFIG it had ({saved_replicas} replicas)")
    raise UserError(
        f"checkpoint {shown(path)} stopped inside epoch {epoch}, at a data position counted in "
        f"{describe_layout(saved_batch_size, saved_replicas)}; this run trains {describe_layout(batch_size, replicas)} "
        f"and would read it as another place in the data: resume with {' and '.join(same)}, or finish epoch {epoch} "
        f"that way (with --epochs {epoch}) and change it after"
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
