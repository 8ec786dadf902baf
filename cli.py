"""What every entry point (train.py, export.py, evaluate.py) shares: a quiet TensorFlow start and
one-line errors for user mistakes."""

import os
import sys
from typing import Callable

from errors import UserError


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with stderr muted: TF 2.21 logs CUDA and oneDNN notices from C++ before any
    setting can silence them, and on a CPU machine they only bury the program's own output."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved_stderr, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    sys.stderr.flush()
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        tf.config.list_physical_devices()  # Looks for GPUs now, while the notice about finding none is muted.
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)


def run_entry_point(run: Callable[[], int], debug: bool = False) -> int:
    """Runs an entry point; a UserError becomes one line on stderr and exit code 2 (a traceback with --debug)."""
    try:
        return run()
    except UserError as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
