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

    def epoch_end(self, epoch: int, epochs: int, step: int, figures: dict[str, float]) -> None:
        """Prints the epoch's closing line: its figures (mean loss, words/s, evaluation scores) at `step`."""
        print(f"epoch {epoch + 1}/{epochs} done at step {step:,}: {epoch_figures_text(figures)}", file=self.stream,
              flush=True)


def epoch_figures_text(figures: dict[str, float]) -> str:
    """The figures of an epoch as the progress line shows them, e.g. `mean loss 2.8312, 402,113 words/s;
    analogy 0.1234, wordsim353 0.5012 (scored in 0.4 s)`."""
    parts = []
    if "epoch/mean_loss" in figures:
        parts.append(f"mean loss {figures['epoch/mean_loss']:.4f}")
    if "epoch/words_per_second" in figures:
        parts.append(f"{figures['epoch/words_per_second']:,.0f} words/s")
    text = ", ".join(parts) or "no steps trained in this run"
    scores = [f"{name.removeprefix('eval/')} {value:.4f}" for name, value in figures.items() if name.startswith("eval/")]
    if scores:
        text += f"; {', '.join(scores)} (scored in {figures.get('epoch/evaluation_seconds', 0.0):.1f} s)"
    return text


class EpochTotals:
    """An epoch's running totals as the compiled loop hands them over: steps, pairs and their summed loss, and
    the words and seconds since the epoch (or this run) began. Evaluation at the epoch's end is not timed."""

    def __init__(self):
        self.last_loss: float | None = None
        self.start(0.0)

    def start(self, words_done: float) -> None:
        """Starts an epoch (or resumes one) with `words_done` corpus words trained on so far."""
        self.steps, self.loss_sum, self.pairs = 0, 0.0, 0.0
        self.start_time, self.start_words = time.monotonic(), words_done

    def add(self, steps: int, last_loss: float, loss_sum: float, pairs: float) -> None:
        """Counts `steps` trained steps whose losses, each weighted by its pairs, sum to `loss_sum`."""
        if steps:
            self.steps, self.loss_sum, self.pairs = self.steps + steps, self.loss_sum + loss_sum, self.pairs + pairs
            self.last_loss = last_loss

    def summary(self, words_done: float) -> dict[str, float]:
        """`epoch/mean_loss` (per pair, over every step of the epoch in this run) and `epoch/words_per_second`,
        each only when this run trained in the epoch (a run resumed at its very end trained nothing in it)."""
        figures = {}
        if self.pairs > 0:
            figures["epoch/mean_loss"] = self.loss_sum / self.pairs
        if words_done > self.start_words:
            figures["epoch/words_per_second"] = (words_done - self.start_words) / max(
                time.monotonic() - self.start_time, 1e-9)
        return figures
