"""The one exception type for user mistakes: the entry points print its message on one line, no traceback."""


class UserError(ValueError):
    """A mistake in the user's input (a path, a flag, a corpus, a model directory) with a message saying the fix."""
