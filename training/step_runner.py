"""Many training steps per Python call: the batches, the learning rate and the progress all stay in the graph."""

from collections.abc import Callable

import tensorflow as tf

from training.checkpoints import Progress


def linear_decay(start: float, floor_ratio: float, total_words: float) -> Callable[[tf.Tensor], tf.Tensor]:
    """word2vec's learning rate: from `start` down linearly with the share of words read, floored at
    `floor_ratio * start`."""

    def rate(words_done: tf.Tensor) -> tf.Tensor:
        remaining = 1.0 - tf.cast(words_done, tf.float32) / max(total_words, 1.0)
        return start * tf.maximum(floor_ratio, remaining)

    return rate


def make_step_runner(train_step: Callable, progress: Progress, learning_rate: Callable) -> Callable:
    """A compiled `(iterator, steps) -> (steps trained, last loss)` that trains on up to `steps` batches; the loss
    is the last step's, or the first step's if the batches ran out before the last.

    A Python loop around each step costs about as much as the step itself at word2vec's batch sizes;
    here the loop is a graph loop, and Python only sees the run every few dozen steps.
    """

    @tf.function
    def run(iterator: tf.data.Iterator, steps: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        trained = tf.constant(0, tf.int64)
        loss = tf.constant(float("nan"))
        for _ in tf.range(steps):
            next_batch = iterator.get_next_as_optional()
            if not next_batch.has_value():
                break
            batch = next_batch.get_value()
            inputs = (batch["centres"], batch["contexts"], batch["weights"], batch["noise"],
                      learning_rate(progress.words_done))
            # The loss is read only at the end of a run of steps: the other steps skip computing it. The first
            # step computes it too, so that a run cut short by the end of an epoch still has a recent loss.
            if trained == 0 or trained == steps - 1:
                loss = train_step(*inputs, with_loss=True)
            else:
                train_step(*inputs, with_loss=False)
            progress.advance(batch["words"], batch["chunk"], batch["batch"])
            trained += 1
        return trained, loss

    return run
