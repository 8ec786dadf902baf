"""What a training run says when the machine fails it midway: a disk that fills up or turns read-only, an
allocation that fails. One line naming what could not be written (or allocated), where, and what is left there,
and what is intact: the latest listed checkpoint, from which the same command resumes once there is room."""

import contextlib
import re
from collections.abc import Iterator

from errors import ResourceError, UserError
from memory import out_of_memory_line
from storage import WriteError, failed_write, shown
from training.checkpoints import latest_listed_checkpoint
from training.model_directory import ModelDirectory
from training.preflight import remove_unfinished_checkpoint_writes

TRAINING_MEMORY_HINT = "lower --batch-size or --dim, or keep fewer words (--max-vocab, --min-count)"


def what_is_intact(directory: ModelDirectory, reason: str) -> str:
    """The latest listed checkpoint, which a failed write never touches, and how to go on from it."""
    fix = "free some space" if "space" in reason or "quota" in reason or "too large" in reason else \
        "make it writable"
    latest = latest_listed_checkpoint(str(directory.checkpoints))
    if latest is None:
        return f"no checkpoint had been saved yet: {fix} and run the same command again to start afresh"
    step = re.search(r"ckpt-(\d+)$", latest)
    at = f" (step {int(step.group(1)):,})" if step else ""
    return f"checkpoint {shown(latest)}{at} is intact: {fix} and run the same command to resume from it"


@contextlib.contextmanager
def explained_failures(directory: ModelDirectory) -> Iterator[None]:
    """Turns a write that fails for lack of space or permission anywhere in a training run, and an allocation that
    fails for lack of memory, into a one-line ResourceError. A checkpoint cut short is removed at once: on a full
    disk it holds the last free bytes."""
    try:
        yield
    except WriteError as error:
        if error.hint:
            raise
        raise WriteError(error.what, error.where, error.reason, what_is_intact(directory, error.reason)) from error
    except (UserError, ResourceError):
        raise
    except Exception as error:
        failure = failed_write(error)
        if failure:
            path, reason = failure
            remove_unfinished_checkpoint_writes(directory)
            what, where = directory.artifact_at(path)
            raise WriteError(what, where, reason, what_is_intact(directory, reason)) from error
        out_of_memory = out_of_memory_line(error, TRAINING_MEMORY_HINT)
        if out_of_memory:
            raise ResourceError(out_of_memory) from error
        raise
