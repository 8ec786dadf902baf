"""Ctrl-C and SIGTERM become a request to stop after the current step, so a checkpoint is saved first."""

import signal
from typing import Self


class StopRequest:
    """While active, SIGINT and SIGTERM set `signal_name` instead of killing the process; a second
    signal of the same kind falls back to the default behaviour, so an impatient user can still stop it."""

    def __init__(self):
        self.signal_name: str | None = None
        self.previous = {}

    def __enter__(self) -> Self:
        for number in (signal.SIGINT, signal.SIGTERM):
            self.previous[number] = signal.signal(number, self.handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def handle(self, number: int, frame) -> None:
        self.signal_name = signal.Signals(number).name
        signal.signal(number, self.previous[number])

    def __bool__(self) -> bool:
        return self.signal_name is not None
