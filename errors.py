"""The one exception type for user mistakes: the entry points print its message on one line, no traceback."""

import sys


class UserError(ValueError):
    """A mistake in the user's input (a path, a flag, a corpus, a model directory) with a message saying the fix."""

    exit_code = 2


class TrainingDiverged(UserError):
    """Training stopped because a loss or a value of E or W stopped being finite (training/guard.py)."""

    exit_code = 3


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
