"""Plain SGD with word2vec's linearly decaying learning rate, applied to whole batches of sparse rows."""

import tensorflow as tf


class RowMeanSGD(tf.Module):
    """SGD in which each row moves by the learning rate times the *mean* of its gradients in the batch.

    word2vec applies one pair's gradient at a time. In a batch of thousands of pairs a frequent word's row
    receives hundreds of gradients at once; summed, they overshoot and training diverges at word2vec's
    learning rate. Averaging per row keeps a rare word's update exactly word2vec's and bounds a frequent one's.
    Dense gradients (the `full` objective's W) are averaged over the batch.
    """

    def __init__(self, name: str = "optimizer"):
        super().__init__(name=name)
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")

    def apply(self, gradients: list, variables: list[tf.Variable], learning_rate: tf.Tensor,
              batch_size: tf.Tensor) -> None:
        for gradient, variable in zip(gradients, variables):
            if isinstance(gradient, tf.IndexedSlices):
                rows = tf.shape(variable, out_type=gradient.indices.dtype)[0]
                ones = tf.ones_like(gradient.indices, dtype=gradient.values.dtype)
                counts = tf.math.unsorted_segment_sum(ones, gradient.indices, rows)
                scale = learning_rate / tf.gather(counts, gradient.indices)
                scale = tf.reshape(scale, [-1] + [1] * (gradient.values.shape.rank - 1))
                variable.scatter_sub(tf.IndexedSlices(gradient.values * scale, gradient.indices))
            else:
                variable.assign_sub(gradient * (learning_rate / tf.cast(batch_size, gradient.dtype)))
        self.iterations.assign_add(1)
