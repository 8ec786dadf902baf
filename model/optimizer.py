"""word2vec's plain SGD applied to a whole batch of pairs at once, and the bound on how far one batch moves a row."""

import dataclasses

import tensorflow as tf

# Less than this is no pairs at all (a padding pair, or rounding below a sum of zero): the factor is then 1.
NO_PAIRS = 1e-6


@dataclasses.dataclass(frozen=True)
class RowBounds:
    """How far one batch may move one row of E or W, counted in pairs' worth of gradient.

    word2vec applies its pairs one at a time, so a row hit by many pairs corrects itself as it goes; a batch sums
    all their gradients at once, and for a row that many pairs hit (a frequent word, a chunk of text about one
    topic, a noise word shared by the whole batch) the sum overshoots and training diverges. So each row's
    gradient is scaled down until it counts at most a bound, in pairs' worth:

    - a pair is worth 1 to the row of W of its true context, and to the row of E of its centre (whose gradient
      sums the pair's true term and its noise terms) 1 + negatives terms, counted in units of six terms: one
      true and five noise, the default's, with which the bounds were measured;
    - a noise word is worth `negatives / K` to its row of W for every pair that scores it (K noise words per
      run of pairs), so a noise word shared by a whole batch of 2,048 pairs, weighted 5 / 32, is worth 320;
    - in the softmax objectives a pair is worth its probability p to each row of W.

    A row's true pairs and its noise have separate bounds, 16 and 320 pairs' worth (measured, docs/training.md:
    noise rows learn best at 320 and collapse at 640), but one factor scales its whole gradient, the smaller of
    the two, so that the pull of its true pairs and the push of its noise stay in proportion. The bounds hold at
    the default learning rate and shrink in proportion above it: what diverges is the step, rate x pairs' worth.

    Attributes:
        max_row_updates: the most pairs' worth of true pairs (centre or context) by which one batch moves a row.
        max_noise_row_updates: the most pairs' worth of noise by which one batch moves a row of W.
        learning_rate: the rate up to which the bounds hold as they are; at a rate r above it they are multiplied
            by learning_rate / r.
        terms_per_pair: the terms of a negative-sampling pair (1 + negatives) that count as one pair's worth to
            its centre's row of E.
    """

    max_row_updates: float = 16.0
    max_noise_row_updates: float = 320.0
    learning_rate: float = 0.025
    terms_per_pair: float = 6.0

    def centre_pairs(self, centre_pairs: tf.Tensor, negatives: int) -> tf.Tensor:
        """The pairs' worth of `centre_pairs` negative-sampling pairs to their centre's row of E."""
        return centre_pairs * ((1 + negatives) / self.terms_per_pair)

    def scale(self, true_pairs: tf.Tensor, noise_pairs: tf.Tensor | float, learning_rate: tf.Tensor) -> tf.Tensor:
        """The factor for a row's gradient: 1 while it counts `true_pairs` and `noise_pairs` pairs' worth within
        the bounds, else whatever brings the one further over its bound down to it."""
        at_rate = tf.minimum(1.0, self.learning_rate / learning_rate)
        return tf.minimum(tf.minimum(1.0, at_rate * self.max_row_updates / tf.maximum(true_pairs, NO_PAIRS)),
                          at_rate * self.max_noise_row_updates / tf.maximum(noise_pairs, NO_PAIRS))


DEFAULT_BOUNDS = RowBounds()
DEFAULT_RATE = DEFAULT_BOUNDS.learning_rate  # The rate an objective's bounds assume when it is called without one.


def bounded_rows(variable: tf.Variable, ids: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """`tf.gather(variable, ids)`, whose gradient reaches each row scaled by `scale` (one factor per id)."""
    return scaled_gradient(tf.gather(variable, ids), scale)


@tf.custom_gradient
def scaled_gradient(rows: tf.Tensor, scale: tf.Tensor):
    """`rows` unchanged; the gradient that flows back through them is multiplied by `scale`, row by row."""

    def gradient(upstream: tf.Tensor):
        row_shape = tf.ones([rows.shape.rank - scale.shape.rank], tf.int32)  # Scale the row, not across it.
        return upstream * tf.reshape(scale, tf.concat([tf.shape(scale), row_shape], axis=0)), None

    return tf.identity(rows), gradient


class BatchSGD(tf.Module):
    """Plain SGD on the summed per-pair gradients of a batch: what word2vec applies one pair at a time.

    Only the rows a batch touches are updated (scatter), so a step costs the batch, not the vocabulary; dense
    gradients (the `full` objective's W, which every pair touches) are summed the same way. The objectives have
    already bounded each row's share (`RowBounds`): the optimizer applies what it is given.
    """

    def __init__(self, name: str = "optimizer"):
        super().__init__(name=name)
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")

    def apply(self, gradients: list, variables: list[tf.Variable], learning_rate: tf.Tensor,
              changed_rows=None) -> None:
        """Moves each variable by -learning_rate x its gradient.

        No update is checked for finiteness here: reducing every update value cost 8-23% of a dim-300 step's CPU
        (XLA computes the update a second time for it), so the training step checks its loss instead
        (model/train_step.py). `changed_rows` (a model.replica_exchange.ChangedRows), if given, records which rows
        changed, for replicas that train apart and meet every few steps.
        """
        for gradient, variable in zip(gradients, variables):
            if gradient is None:  # A variable the objective does not use, such as W's bias in negative sampling.
                continue
            if isinstance(gradient, tf.IndexedSlices):
                variable.scatter_sub(tf.IndexedSlices(gradient.values * learning_rate, gradient.indices))
                if changed_rows is not None:
                    changed_rows.mark(variable, gradient.indices)
            else:
                variable.assign_sub(gradient * learning_rate)
                if changed_rows is not None:
                    changed_rows.mark(variable, None)
        self.iterations.assign_add(1)
