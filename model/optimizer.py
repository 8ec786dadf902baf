"""word2vec's plain SGD, applied to a whole batch of pairs at once, with its linearly decaying learning rate."""

import tensorflow as tf


class BatchSGD(tf.Module):
    """Plain SGD on the summed per-pair gradients of a batch: what word2vec applies one pair at a time.

    Only the rows a batch touches are updated (scatter), so a step costs the batch, not the vocabulary.
    A row hit by many pairs of one batch (a frequent word, or a chunk of text about one topic) would move by
    all their gradients at once, where word2vec's one-at-a-time updates correct themselves as they go; the
    sum overshoots and the loss spikes. So a row's update is scaled down to at most `max_row_updates`
    pairs' worth. Dense gradients (the `full` objective's W, which every pair touches) are averaged instead.
    """

    def __init__(self, max_row_updates: float = 16.0, name: str = "optimizer"):
        super().__init__(name=name)
        self.max_row_updates = max_row_updates
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")

    def apply(self, gradients: list, variables: list[tf.Variable], learning_rate: tf.Tensor,
              pairs: tf.Tensor, changed_rows=None) -> None:
        """Updates `variables`; `changed_rows` (a model.replica_exchange.ChangedRows), if given, records
        which rows changed, for replicas that train apart and meet every few steps."""
        for gradient, variable in zip(gradients, variables):
            if gradient is None:  # A variable the objective does not use, such as W's bias in negative sampling.
                continue
            if isinstance(gradient, tf.IndexedSlices):
                capped = self.capped(gradient, variable)
                variable.scatter_sub(tf.IndexedSlices(capped.values * learning_rate, capped.indices))
                if changed_rows is not None:
                    changed_rows.mark(variable, capped.indices)
            else:
                variable.assign_sub(gradient * (learning_rate / tf.maximum(pairs, 1.0)))
                if changed_rows is not None:
                    changed_rows.mark(variable, None)
        self.iterations.assign_add(1)

    def capped(self, gradient: tf.IndexedSlices, variable: tf.Variable) -> tf.IndexedSlices:
        """The gradient with each row's slices scaled so that together they count at most `max_row_updates`.

        Applying it twice changes nothing more; the distributed step caps each replica's gradient this way
        before summing the rows of each word across replicas."""
        scale = tf.minimum(1.0, self.max_row_updates / self.row_hits(gradient, variable))
        scale = tf.reshape(scale, [-1] + [1] * (gradient.values.shape.rank - 1))
        return tf.IndexedSlices(gradient.values * scale, gradient.indices, gradient.dense_shape)

    @staticmethod
    def row_hits(gradient: tf.IndexedSlices, variable: tf.Variable) -> tf.Tensor:
        """For each slice, how many non-zero slices of the batch update the same row (padding pairs are zero)."""
        nonzero = tf.reshape(gradient.values != 0, [tf.shape(gradient.values)[0], -1])
        live = tf.cast(tf.reduce_any(nonzero, axis=-1), gradient.values.dtype)
        rows = tf.shape(variable, out_type=gradient.indices.dtype)[0]
        hits = tf.math.unsorted_segment_sum(live, gradient.indices, rows)
        return tf.maximum(tf.gather(hits, gradient.indices), 1.0)
