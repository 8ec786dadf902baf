"""The two exception types the entry points print on one line, no traceback: a user's mistake (exit code 2) and a
machine that lacks what the run needs (exit code 1)."""

import sys


class UserError(ValueError):
    """A mistake in the user's input (a path, a flag, a corpus, a model directory) with a message saying the fix."""

    exit_code = 2


class TrainingDiverged(UserError):
    """Training stopped because a loss or a value of E or W stopped being finite (training/guard.py)."""

    exit_code = 3


class ResourceError(Exception):
    """The machine lacks what the run needs (disk space, a writable directory, memory): the message names what
    could not be had, where, and what is left, and says what is intact and how to go on."""


def warn(message: str) -> None:
    """One `warning: ...` line on stderr, for input that is usable but probably not what the user meant."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


class LostWorker(RuntimeError):
    """Another worker of a multi-worker run died or stopped answering; this one stopped without it."""

    def __init__(self, worker: int, address: str | None, resume_step: int | None = None):
        self.worker, self.address, self.resume_step = worker, address, resume_step
        who = f"worker {worker} ({address})" if address else "another worker"
        where = f"from the chief's last checkpoint, step {resume_step:,}" if resume_step else "from the start"
        super().__init__(f"{who} is lost: it died, hangs or cannot be reached. Stop any worker still running, then "
                         f"start every worker again with the same command: training resumes {where}")
