"""What every entry point (train.py, export.py, evaluate.py) shares: a quiet TensorFlow start, and one-line errors
for user mistakes and for what the machine lacks (disk space, a writable directory, memory)."""

import argparse
import atexit
import contextlib
import os
import pathlib
import sys
import textwrap
from collections.abc import Callable

from errors import LostWorker, ResourceError, UserError
from memory import out_of_memory_line
from storage import failed_write, write_failure_line


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with stderr muted: TF 2.21 logs CUDA and oneDNN notices from C++ before any
    setting can silence them, and on a CPU machine they only bury the program's own output."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with stderr_muted():
        import tensorflow as tf

        tf.config.list_physical_devices()  # Looks for GPUs now, while the notice about finding none is muted.


@contextlib.contextmanager
def stderr_muted():
    """Silences file descriptor 2 itself, which also mutes what C++ libraries (TF, RE2) print."""
    saved_stderr, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    sys.stderr.flush()
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)


def native_stderr_to(path: pathlib.Path) -> None:
    """From now on, what C++ libraries write to file descriptor 2 goes to `path`, which is removed at exit if
    nothing was; Python's sys.stderr (one-line errors, tracebacks) keeps the terminal. Not undone: TensorFlow's
    threads may still log while the process exits."""
    sys.stderr.flush()
    terminal = os.dup(2)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 2)
    os.close(log)
    sys.stderr = os.fdopen(terminal, "w", buffering=1)
    atexit.register(lambda: path.exists() and path.stat().st_size == 0 and path.unlink())


class FlagParser(argparse.ArgumentParser):
    """argparse with the house error format (a bad or unknown flag is one `error: ...` line and exit code 2,
    instead of a usage block followed by the message) and each flag's default shown in --help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", FlagHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


class FlagHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """--help as the README's flag tables show it: each flag's meaning, then its default; the description
    (a module docstring with examples) keeps its line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        default = shown_default(action)
        if not default or action.nargs == 0:
            return action.help or ""
        if action.required:
            return f"{action.help} (required)"
        return f"{action.help} (default: {default.replace('%', '%%')})"

    def _split_lines(self, text: str, width: int) -> list[str]:
        # A long default (the token pattern) stays whole on its line, so it can be copied from --help.
        return textwrap.wrap(" ".join(text.split()), width, break_long_words=False, break_on_hyphens=False)


def shown_default(action: argparse.Action) -> str:
    """A flag's default as a user reads it: `shown_default` when the flag sets one (for defaults that are not a
    plain value, like the embedded corpus), else the value itself; "required", "off" for a switch, "" for none."""
    if getattr(action, "shown_default", None) is not None:
        return action.shown_default
    if action.required:
        return "required"
    if action.nargs == 0:
        return "off"
    return "" if action.default is argparse.SUPPRESS else value_text(action.default)


def value_text(value) -> str:
    """A default value as text: lists space-separated, large whole numbers with thousands separators."""
    if value is None or value == "":
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def run_entry_point(run: Callable[[], int], debug: bool = False,
                    out_of_memory_hint: str = "free memory, or run it on a machine with more") -> int:
    """Runs an entry point; a UserError becomes one line on stderr and exit code 2, or 3 for training that
    diverged (a traceback with --debug).

    What the machine lacks is one line and exit code 1: a ResourceError, and any write refused for lack of space
    or permission or allocation that failed for lack of memory that reaches here without one; so is any other
    file-system failure, and a lost worker of a multi-worker run. Ctrl-C outside the training loop (which saves a
    checkpoint itself) is one line and exit code 130.
    """
    try:
        return run()
    except KeyboardInterrupt:
        if debug:
            raise
        print("error: interrupted by Ctrl-C; whatever was saved before is intact", file=sys.stderr)
        return 130
    except Exception as error:
        line, exit_code = one_line_for(error, out_of_memory_hint)
        if debug or line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return exit_code


def one_line_for(error: Exception, out_of_memory_hint: str) -> tuple[str | None, int]:
    """The line and exit code an error gets on the way out; (None, 0) for a bug, which keeps its traceback."""
    if isinstance(error, UserError):
        return str(error), error.exit_code
    if isinstance(error, (ResourceError, LostWorker)):
        return str(error), 1
    failure = failed_write(error)
    if failure:
        return write_failure_line("", failure[0], failure[1]), 1
    out_of_memory = out_of_memory_line(error, out_of_memory_hint)
    if out_of_memory:
        return out_of_memory, 1
    if isinstance(error, OSError):
        return str(error), 1
    return None, 0
