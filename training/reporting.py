"""Progress lines on the console: loss, learning rate, words/s and the time left."""

import sys
import time


def duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


class ProgressReporter:
    """Prints one line every `every_seconds` and measures words/s since the previous line."""

    def __init__(self, total_words: float, words_done: float, every_seconds: float = 5.0, stream=sys.stdout):
        self.total_words = total_words
        self.every_seconds = every_seconds
        self.stream = stream
        self.last_time = self.start_time = time.monotonic()
        self.last_words = self.start_words = words_done

    def due(self) -> bool:
        return time.monotonic() - self.last_time >= self.every_seconds

    def report(self, epoch: int, epochs: int, step: int, words_done: float, loss: float, learning_rate: float) -> float:
        """Prints a line and returns the words/s since the last one."""
        now = time.monotonic()
        words_per_second = (words_done - self.last_words) / max(now - self.last_time, 1e-9)
        overall = (words_done - self.start_words) / max(now - self.start_time, 1e-9)
        left = (self.total_words - words_done) / overall if overall > 0 else 0.0
        percent = 100.0 * words_done / self.total_words if self.total_words else 100.0
        print(
            f"epoch {epoch + 1}/{epochs}  step {step:,}  {percent:5.1f}%  loss {loss:.4f}  "
            f"lr {learning_rate:.5f}  {words_per_second:,.0f} words/s  {duration(left)} left",
            file=self.stream,
            flush=True,
        )
        self.last_time, self.last_words = now, words_done
        return words_per_second

    def words_per_second(self, words_done: float) -> float:
        """The average rate over the whole run so far."""
        return (words_done - self.start_words) / max(time.monotonic() - self.start_time, 1e-9)
