"""Many training steps per Python call: the batches, the learning rate and the progress all stay in the graph."""

from collections.abc import Callable

import tensorflow as tf

from data_pipeline.pairs import STEP_INPUTS
from training.checkpoints import Progress


def linear_decay(start: float, floor_ratio: float, total_words: float) -> Callable[[tf.Tensor], tf.Tensor]:
    """word2vec's learning rate: from `start` down linearly with the share of words read, floored at
    `floor_ratio * start`."""

    def rate(words_done: tf.Tensor) -> tf.Tensor:
        remaining = 1.0 - tf.cast(words_done, tf.float32) / max(total_words, 1.0)
        return start * tf.maximum(floor_ratio, remaining)

    return rate


def make_step_runner(train_step: Callable, progress: Progress, learning_rate: Callable) -> Callable:
    """A compiled `(iterator, steps) -> (steps trained, last loss, summed loss, pairs, finite)` that trains on up
    to `steps` batches.

    A Python loop around each step costs about as much as the step itself at word2vec's batch sizes;
    here the loop is a graph loop, and Python only sees the run every few dozen steps. Each step's mean loss,
    weighted by its pairs, is summed in the loop too, so that an epoch's mean loss counts every step, logged or not.
    A step whose loss or updates are not finite ends the run at once (`finite` False, `loss` its loss); it is not
    counted as trained, nor in the sums.
    """

    @tf.function
    def run(iterator: tf.data.Iterator,
            steps: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        trained = tf.constant(0, tf.int64)
        loss, finite = tf.constant(float("nan")), tf.constant(True)
        loss_sum, pairs = tf.constant(0.0, tf.float64), tf.constant(0.0, tf.float64)
        for _ in tf.range(steps):
            next_batch = iterator.get_next_as_optional()
            if not next_batch.has_value():
                break
            batch = next_batch.get_value()
            loss, finite = train_step({key: batch[key] for key in STEP_INPUTS}, learning_rate(progress.words_done))
            if not finite:
                break
            progress.advance(batch["words"], batch["chunk"], batch["batch"])
            trained += 1
            batch_pairs = tf.cast(tf.reduce_sum(batch["weights"]), tf.float64)
            loss_sum += tf.cast(loss, tf.float64) * batch_pairs
            pairs += batch_pairs
        return trained, loss, loss_sum, pairs, finite

    return run
