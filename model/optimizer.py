"""word2vec's plain SGD, applied to a whole batch of pairs at once, with its linearly decaying learning rate."""

import tensorflow as tf


class BatchSGD(tf.Module):
    """Plain SGD on the summed per-pair gradients of a batch: what word2vec applies one pair at a time.

    Only the rows a batch touches are updated (scatter), so a step costs the batch, not the vocabulary.
    Dense gradients (the `full` objective's W, which every pair touches) are averaged over the batch.
    Summed updates of a row hit by many pairs of one batch can overshoot where word2vec's one-at-a-time
    updates would correct themselves: measured fine at the default 4096 pairs per batch; for batches far
    larger, lower the learning rate.
    """

    def __init__(self, name: str = "optimizer"):
        super().__init__(name=name)
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")

    def apply(self, gradients: list, variables: list[tf.Variable], learning_rate: tf.Tensor,
              pairs: tf.Tensor) -> None:
        for gradient, variable in zip(gradients, variables):
            if gradient is None:  # A variable the objective does not use, such as W's bias in negative sampling.
                continue
            if isinstance(gradient, tf.IndexedSlices):
                variable.scatter_sub(tf.IndexedSlices(gradient.values * learning_rate, gradient.indices))
            else:
                variable.assign_sub(gradient * (learning_rate / tf.maximum(pairs, 1.0)))
        self.iterations.assign_add(1)
