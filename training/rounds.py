"""Rounds of training in one model directory, and the journal that makes starting a round all-or-nothing.

A model directory trains in rounds: the first trains a new model on its corpus; each later one, started with
`--update-vocab` or `--keep-vocab`, continues it on other text (training/continuation.py). config.json records
every round (config.Round); the step count runs on across them, while the data position and the words done in
the checkpoint count from the start of the current round.

Starting a round changes three files that must agree: vocab.tsv, config.json and the list of checkpoints (the
round's first checkpoint, with E and W grown to the new vocabulary). They are written into a journal first:

    model_dir/update.staging/     being written; a run that finds it discards it (the update never happened)
    model_dir/update.committed/   complete: renamed from update.staging in one step, the commit point

and moved into place from `update.committed`. A process killed at any moment leaves either the old files
(plus a staging folder that the next run removes) or a committed journal, which the next run, export or
evaluation finishes moving into place before it reads anything. Nothing here imports TensorFlow, so train.py can
finish a journal before its flags are checked against config.json.
"""

import datetime
import os
import pathlib
import shutil
import signal

from config import CORPUS_FIELDS, Config, DataConfig, Round
from errors import UserError
from training.model_directory import ModelDirectory

STAGING = "update.staging"
COMMITTED = "update.committed"
CHECKPOINT_STATE = "checkpoint"  # The file in which tf.train.CheckpointManager lists the checkpoints.
OBSOLETE = "obsolete.txt"  # In the journal: the previous round's checkpoints, deleted once the new one is listed.
# For the interruption tests: the name of a point in starting a round at which the process SIGKILLs itself.
KILL_AT_VARIABLE = "WORD2VEC_KILL_AT"


def now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def kill_point(name: str) -> None:
    """SIGKILLs this process here when the environment names this point: a real kill at an exact moment, which a
    signal sent from outside could only hit by chance."""
    if os.environ.get(KILL_AT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def staging_directory(directory: ModelDirectory) -> pathlib.Path:
    return directory.root / STAGING


def committed_directory(directory: ModelDirectory) -> pathlib.Path:
    return directory.root / COMMITTED


def commit(directory: ModelDirectory) -> None:
    """The commit point of a round's start: one rename makes the complete journal the one to finish."""
    os.rename(staging_directory(directory), committed_directory(directory))


def move_if_present(source: pathlib.Path, target: pathlib.Path) -> None:
    """Moves `source` over `target` in one step; a source already moved (by an earlier, killed pass) is skipped."""
    try:
        os.replace(source, target)
    except FileNotFoundError:
        pass


def finish_committed_update(directory: ModelDirectory) -> bool:
    """Moves a committed journal's files into place, if there is one; returns whether there was.

    Every step can be repeated, so a pass killed midway is completed by the next one, and two processes doing it
    at once leave the same result. The previous round's checkpoints go last, once the new one is listed."""
    journal = committed_directory(directory)
    if not journal.is_dir():
        return False
    for path in sorted(journal.glob("ckpt-*")):
        move_if_present(path, directory.checkpoints / path.name)
    move_if_present(journal / "vocab.tsv", directory.vocabulary_path)
    kill_point("moving")
    move_if_present(journal / CHECKPOINT_STATE, directory.checkpoints / CHECKPOINT_STATE)
    move_if_present(journal / "config.json", directory.config_path)
    obsolete = journal / OBSOLETE
    if obsolete.exists():
        for prefix in obsolete.read_text(encoding="utf-8").split():
            for path in directory.checkpoints.glob(f"{prefix}.*"):
                path.unlink(missing_ok=True)
    shutil.rmtree(journal, ignore_errors=True)
    return True


def discard_uncommitted_update(directory: ModelDirectory) -> None:
    """Removes a journal that was never committed (a run killed while starting a round): the round never began.
    Call it only while holding the directory's lock, so that no live run is writing that journal."""
    shutil.rmtree(staging_directory(directory), ignore_errors=True)


def has_checkpoint(directory: ModelDirectory) -> bool:
    return (directory.checkpoints / CHECKPOINT_STATE).exists()


def same_text(current: Round, data: DataConfig) -> bool:
    """Whether `data` names the text the round trains on. Where both recorded their files (DataConfig.corpus_files),
    their content decides: the same files moved elsewhere are the same text, and a file overwritten in place (a
    daily file) is new text. Otherwise the corpus as given, the TFDS set and its split and feature."""
    if current.corpus_files and data.corpus_files:
        content = lambda files: [(file["bytes"], file["fingerprint"]) for file in files]
        return content(current.corpus_files) == content(data.corpus_files)
    absolute = lambda corpus: [pattern if "://" in pattern else os.path.abspath(pattern) for pattern in corpus]
    return absolute(current.corpus) == absolute(data.corpus) and all(
        getattr(current, name) == getattr(data, name) for name in CORPUS_FIELDS if name != "corpus")


def round_flag(data: DataConfig) -> str:
    return "--update-vocab" if data.update_vocab else "--keep-vocab"


def check_request(directory: ModelDirectory, saved: Config | None, requested: Config) -> None:
    """Refuses, before anything is read, what continuing or initialising a model cannot do here: a round on a
    directory with no trained model, vectors for a model that is already trained, both at once."""
    data, training = requested.data, requested.training
    if data.update_vocab or data.keep_vocab:
        flag = round_flag(data)
        if training.init_vectors:
            raise UserError(f"--init-vectors starts a new model and {flag} continues a trained one: give one of them")
        if saved is None or not has_checkpoint(directory):
            what = "no trained model" if saved is None else "no checkpoint yet"
            raise UserError(f"{flag} continues a trained model, but --model-dir {directory.root} holds {what}: "
                            f"train it first (without {flag}), or give the --model-dir of a trained model")
    if training.init_vectors and saved is not None and training.init_vectors != saved.training.init_vectors:
        raise UserError(f"--init-vectors starts a new model, but --model-dir {directory.root} already holds one; "
                        "give a new --model-dir")


def check_single_process(config: Config) -> None:
    """Refuses to start a round, start from vectors, or train a continued or locked model on several workers or
    devices: training/distributed.py counts and trains the first round only."""
    data, training = config.data, config.training
    if data.update_vocab or data.keep_vocab or training.init_vectors or len(training.rounds) > 1:
        what = round_flag(data) if data.update_vocab or data.keep_vocab else "--init-vectors" \
            if training.init_vectors else "a model continued with --update-vocab or --keep-vocab"
        raise UserError(f"{what} trains in one process: use --distribute none (and unset TF_CONFIG)")


def round_corpus_words(config: Config, total_words: int) -> int:
    """The words one epoch of the current round trains on: the vocabulary's own total (`total_words`) in a
    first round, the new text's words in the vocabulary in a later one, plus those of the lines it replays."""
    rounds = config.training.rounds
    return rounds[-1].corpus_words + rounds[-1].replay_words if rounds and rounds[-1].kind != "new" else total_words


def record_round_end(directory: ModelDirectory, config: Config, step: int) -> None:
    """Notes in config.json that the current round has trained all its epochs, at `step` (once)."""
    current = config.training.rounds[-1] if config.training.rounds else None
    if current is None or current.end_step >= 0:
        return
    current.end_step, current.finished = step, now()
    directory.save_config(config)
