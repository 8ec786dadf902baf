"""The one exception type for user mistakes: the entry points print its message on one line, no traceback."""

import sys


class UserError(ValueError):
    """A mistake in the user's input (a path, a flag, a corpus, a model directory) with a message saying the fix."""


def warn(message: str) -> None:
    """One `warning: ...` line on stderr, for input that is usable but probably not what the user meant."""
    print(f"warning: {message}", file=sys.stderr, flush=True)
