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
