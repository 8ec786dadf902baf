"""word2vec's plain SGD, applied to a whole batch of pairs at once, with its linearly decaying learning rate."""

import tensorflow as tf


class BatchSGD(tf.Module):
    """Plain SGD on the summed per-pair gradients of a batch: what word2vec applies one pair at a time.

    Only the rows a batch touches are updated (scatter), so a step costs the batch, not the vocabulary.
    Summed updates for a row hit many times in one batch (a very frequent word in a very large batch)
    overshoot where word2vec's sequential updates would have corrected themselves, so a row's update is
    scaled down to at most `max_row_updates` pairs' worth. Dense gradients (the `full` objective's W)
    are averaged over the batch instead.
    """

    def __init__(self, max_row_updates: float = 64.0, name: str = "optimizer"):
        super().__init__(name=name)
        self.max_row_updates = max_row_updates
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")

    def apply(self, gradients: list, variables: list[tf.Variable], learning_rate: tf.Tensor,
              batch_size: tf.Tensor) -> None:
        for gradient, variable in zip(gradients, variables):
            if isinstance(gradient, tf.IndexedSlices):
                rows = tf.shape(variable, out_type=gradient.indices.dtype)[0]
                ones = tf.ones_like(gradient.indices, dtype=gradient.values.dtype)
                hits = tf.gather(tf.math.unsorted_segment_sum(ones, gradient.indices, rows), gradient.indices)
                scale = learning_rate * tf.minimum(1.0, self.max_row_updates / hits)
                scale = tf.reshape(scale, [-1] + [1] * (gradient.values.shape.rank - 1))
                variable.scatter_sub(tf.IndexedSlices(gradient.values * scale, gradient.indices))
            else:
                variable.assign_sub(gradient * (learning_rate / tf.cast(batch_size, gradient.dtype)))
        self.iterations.assign_add(1)
