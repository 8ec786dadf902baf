"""Three training objectives over the same E and W, so a checkpoint made with one continues with another.

Each is a small callable: given the model, a batch (the dict `data_pipeline.pairs.training_batches` makes:
(centre, context) pairs, their noise words, and how many pairs of the batch touch each row) and the step's
learning rate, it returns one loss per pair. Summed, their gradients are word2vec's per-pair gradients, with each
row's share of the batch bounded as `model.optimizer.RowBounds` says (relative to the learning rate).

A pair's loss is not finite whenever one of its scores is not (NaN, or +-inf), which is how the step checks every
row it reads (model/train_step.py): a non-finite value in a row makes each score that reads the row non-finite,
since inf x 0 and inf - inf are NaN. softplus and logsumexp turn a score of -inf into a finite term (softplus(-inf)
is 0), so the objectives pass their scores through `minus_infinity_as_nan` first, in the forward pass only.
"""

import numpy as np
import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla

from model.optimizer import DEFAULT_BOUNDS, DEFAULT_RATE, RowBounds, bounded_rows
from model.skipgram import SkipGram


class NegativeSampling:
    """word2vec's negative sampling: tell each true context word apart from k noise words.

    loss = -log sigmoid(h . w_context) - sum over noise words n of log sigmoid(-h . w_n), with h = E[centre]
    and w the rows of W. As in word2vec, W's bias takes no part (it serves the softmax objectives); with it,
    analogy accuracy on the benchmark corpus fell from 0.203 to 0.198. As in word2vec, a noise word that is the
    pair's own context word is skipped (it would push the pair's true context away).

    Noise words come as [groups, K]: the batch's pairs in `groups` equal runs, each run scored against its own
    row of K noise words, each weighted negatives / K so that a pair still counts `negatives` noise words.
    [batch, negatives] draws fresh noise words per pair as word2vec does (gathered row by row); [1, K], the
    default, shares K noise words with the whole batch: one matrix product, and measured better scores.

    Args:
        negatives: noise words per pair.
        bounds: how far one batch may move a row.
    """

    jit_compile = True

    def __init__(self, negatives: int, bounds: RowBounds = DEFAULT_BOUNDS):
        self.negatives = negatives
        self.bounds = bounds

    def __call__(self, model: SkipGram, batch: dict, learning_rate: tf.Tensor = DEFAULT_RATE) -> tf.Tensor:
        contexts, noise, bounds = batch["contexts"], batch["noise"], self.bounds
        noise_weight = self.negatives / noise.shape[1]
        centre_pairs = bounds.centre_pairs(batch["centre_pairs"], self.negatives)
        hidden = bounded_rows(model.embeddings, batch["centres"], bounds.scale(centre_pairs, 0.0, learning_rate))
        true_rows = bounded_rows(model.context_weights, contexts, bounds.scale(
            batch["context_pairs"], noise_weight * batch["context_noise_pairs"], learning_rate))
        noise_rows = bounded_rows(model.context_weights, noise, bounds.scale(
            batch["noise_context_pairs"], noise_weight * batch["noise_pairs"], learning_rate))
        true_logits = row_dots(hidden, true_rows)
        groups = tf.shape(noise)[0]
        runs = tf.reshape(hidden, [groups, -1, tf.shape(hidden)[-1]])
        noise_logits = tf.einsum("gpd,gkd->gpk", runs, noise_rows)
        is_noise = tf.reshape(contexts, [groups, -1, 1]) != noise[:, None, :]
        noise_losses = tf.reduce_sum(tf.where(is_noise, softplus(noise_logits), 0.0), axis=-1)
        return softplus(-true_logits) + noise_weight * tf.reshape(noise_losses, [-1])


@tf.custom_gradient
def softplus(logits: tf.Tensor):
    """`tf.nn.softplus`, log(1 + e^x), whose gradient, the sigmoid, reuses the forward pass's exponential: one
    exponential per score where softplus and sigmoid apart take two. At -inf it is NaN, not 0, so that a
    non-finite score shows in its pair's loss."""
    logits = minus_infinity_as_nan(logits)
    exponential = tf.exp(-tf.abs(logits))  # In (0, 1]: never overflows.
    losses = tf.maximum(logits, 0.0) + tf.math.log1p(exponential)

    def gradient(upstream: tf.Tensor) -> tf.Tensor:
        return upstream * tf.where(logits >= 0.0, 1.0, exponential) / (1.0 + exponential)

    return losses, gradient


# XLA on CPU sums more values than this in windows of this many (its tree reduction), not fused with their producer.
SUM_WINDOW = 32


@tf.custom_gradient
def row_dots(rows: tf.Tensor, other_rows: tf.Tensor):
    """[B] dot products of each row of `rows` [B, D] with the same row of `other_rows`: `tf.reduce_sum(rows *
    other_rows, axis=-1)`, summed in two stages of at most SUM_WINDOW values where D allows it.

    Summed at once, XLA on CPU rewrites a sum over more than 32 values into windowed partial sums that its fusion
    does not join to the product, so the [B, D] product was written out and read back (a fifth of a dim-100 step's
    compiled time). Here each row is summed first across D / C blocks of C columns (C the largest divisor of D up to
    32), the product fused into that sum, then across its C partial sums; an optimization barrier keeps XLA from
    joining the two sums again. Only the order of the additions changes. The gradient is the one of the product."""
    width = rows.shape[-1]
    columns = max((count for count in range(1, SUM_WINDOW + 1) if width and width % count == 0), default=1)
    if width is None or width <= SUM_WINDOW or width // columns > SUM_WINDOW:
        dots = tf.reduce_sum(rows * other_rows, axis=-1)
    else:
        blocks = tf.reshape(rows * other_rows, [-1, width // columns, columns])
        dots = tf.reduce_sum(xla.optimization_barrier(tf.reduce_sum(blocks, axis=1))[0], axis=-1)

    def gradient(upstream: tf.Tensor):
        return upstream[:, None] * other_rows, upstream[:, None] * rows

    return dots, gradient


def minus_infinity_as_nan(values: tf.Tensor) -> tf.Tensor:
    """`values` with -inf made NaN: what a loss that would turn a score of -inf into a finite term needs, so that
    every non-finite score shows in the loss. Applied where no gradient flows (inside a custom gradient), or where
    its gradient, 1 at every finite value, is the one wanted."""
    return tf.where(values == -np.inf, np.nan, values)


class SampledSoftmax:
    """Sampled softmax: the softmax over the true context word and K noise words shared by the batch,
    corrected by how often the noise distribution q draws each word, which estimates the full softmax.

    Written out rather than `tf.nn.sampled_softmax_loss` (whose removal of accidental hits XLA cannot compile)
    so that the step compiles with XLA and each sampled row's share is bounded by the probability mass the
    batch gives it. As there, a sampled word that is a pair's own context word is left out of its softmax.

    Args:
        noise_probabilities: q, the probability of drawing each word as a noise word.
        bounds: how far one batch may move a row.
    """

    jit_compile = True

    def __init__(self, noise_probabilities: np.ndarray, bounds: RowBounds = DEFAULT_BOUNDS):
        self.log_noise_probabilities = tf.constant(np.log(noise_probabilities), tf.float32)
        self.bounds = bounds

    def __call__(self, model: SkipGram, batch: dict, learning_rate: tf.Tensor = DEFAULT_RATE) -> tf.Tensor:
        contexts = batch["contexts"]
        sampled = tf.reshape(batch["noise"], [-1])  # One group: [1, K] noise words shared by the batch.
        hidden = bounded_rows(model.embeddings, batch["centres"],
                              self.bounds.scale(batch["centre_pairs"], 0.0, learning_rate))
        logits = bounded_sampled_logits(hidden, model.context_weights, model.context_bias, contexts, sampled,
                                        batch, self.bounds, learning_rate)
        # Subtracting log(K q(word)), the expected draws of each word, makes the sampled softmax estimate the full one.
        log_expected = lambda ids: tf.math.log(float(sampled.shape[0])) + tf.gather(self.log_noise_probabilities, ids)
        true_logits = logits[:, 0] - log_expected(contexts)
        noise_logits = logits[:, 1:] - log_expected(sampled)
        noise_logits = tf.where(contexts[:, None] == sampled[None, :], ACCIDENTAL_HIT_LOGIT, noise_logits)
        logits = minus_infinity_as_nan(tf.concat([true_logits[:, None], noise_logits], axis=1))
        return tf.reduce_logsumexp(logits, axis=1) - true_logits


# A sampled word that is the pair's own context word gets this logit: a probability of 0 and no gradient.
ACCIDENTAL_HIT_LOGIT = -1e30


def bounded_sampled_logits(hidden: tf.Tensor, weights: tf.Variable, bias: tf.Variable, contexts: tf.Tensor,
                           sampled: tf.Tensor, batch: dict, bounds: RowBounds, learning_rate: tf.Tensor) -> tf.Tensor:
    """[B, 1 + K] logits `hidden . W[word] + bias[word]`: each pair's context word, then the K sampled words; their
    gradient reaches each row of W (and its bias) bounded by its true pairs and by the probability mass the batch
    puts on it as a sampled word (a pair is worth its probability p to a sampled row)."""

    @tf.custom_gradient
    def logits(hidden: tf.Tensor, true_rows: tf.Tensor, true_bias: tf.Tensor, rows: tf.Tensor, row_bias: tf.Tensor):
        true_logits = tf.reduce_sum(hidden * true_rows, axis=1) + true_bias
        noise_logits = tf.matmul(hidden, rows, transpose_b=True) + row_bias

        def gradient(upstream: tf.Tensor):
            true_upstream, noise_upstream = upstream[:, 0], upstream[:, 1:]
            # noise_upstream[i, k] = weight_i x p_ik: pair i's worth to sampled column k; a word drawn twice adds both.
            mass = tf.reduce_sum(noise_upstream, axis=0)
            same_word = lambda ids: tf.cast(ids[:, None] == sampled[None, :], mass.dtype)
            true_scale = bounds.scale(batch["context_pairs"], tf.linalg.matvec(same_word(contexts), mass), learning_rate)
            noise_scale = bounds.scale(tf.reshape(batch["noise_context_pairs"], [-1]),
                                       tf.linalg.matvec(same_word(sampled), mass), learning_rate)
            hidden_gradient = true_upstream[:, None] * true_rows + tf.matmul(noise_upstream, rows)
            true_upstream *= true_scale
            rows_gradient = tf.matmul(noise_upstream, hidden, transpose_a=True) * noise_scale[:, None]
            return (hidden_gradient, true_upstream[:, None] * hidden, true_upstream, rows_gradient, mass * noise_scale)

        return tf.concat([true_logits[:, None], noise_logits], axis=1), gradient

    return logits(hidden, tf.gather(weights, contexts), tf.gather(bias, contexts), tf.gather(weights, sampled),
                  tf.gather(bias, sampled))


class FullSoftmax:
    """The founding text's objective: exact softmax cross-entropy over all V words through W.

    Its cost is three B x D x V matrix products per batch, so it is bounded by matrix-multiply speed. The
    products run where they are fastest on CPU (measured at B 2048, D 100, V 43k): XLA computes the logits and
    fuses the softmax and its gradient into one pass over them; the two backward products run as plain
    TensorFlow matmuls (oneDNN), a quarter faster than XLA's. A step then costs about what its three products do.

    Every pair touches every row of W, by its probability p: W's gradient is summed over the batch (word2vec's
    rule, as for the sparse rows) and each row's share bounded, its true pairs and its probability mass apart.

    Args:
        bounds: how far one batch may move a row.
    """

    # The step runs as a plain graph; its softmax part is compiled by XLA inside `softmax_cross_entropy`.
    jit_compile = False

    def __init__(self, bounds: RowBounds = DEFAULT_BOUNDS):
        self.bounds = bounds

    def __call__(self, model: SkipGram, batch: dict, learning_rate: tf.Tensor = DEFAULT_RATE) -> tf.Tensor:
        hidden = bounded_rows(model.embeddings, batch["centres"],
                              self.bounds.scale(batch["centre_pairs"], 0.0, learning_rate))
        weights = tf.convert_to_tensor(model.context_weights)
        bias = tf.convert_to_tensor(model.context_bias)
        return softmax_cross_entropy(hidden, weights, bias, batch["contexts"], self.bounds, learning_rate)


def softmax_cross_entropy(hidden: tf.Tensor, weights: tf.Tensor, bias: tf.Tensor, labels: tf.Tensor,
                          bounds: RowBounds = DEFAULT_BOUNDS, learning_rate: tf.Tensor = DEFAULT_RATE) -> tf.Tensor:
    """`sparse_softmax_cross_entropy_with_logits(labels, hidden @ weights^T + bias)`, per pair, differentiated
    by hand: the B x V gradient of the logits comes out of the forward pass, and one product gives W's and the
    bias's gradients together (the bias as one more column of W), each row's share bounded by `bounds`."""

    @tf.custom_gradient
    def losses(hidden: tf.Tensor, weights: tf.Tensor, bias: tf.Tensor):
        per_pair_losses, logit_gradients = losses_and_logit_gradients(hidden, weights, bias, labels)

        def gradient(upstream: tf.Tensor):
            per_pair = upstream[:, None]
            hidden_and_one = tf.concat([hidden, tf.ones_like(per_pair)], axis=1) * per_pair
            # (softmax - one_hot)^T [h, 1]: every pair's probabilities less its true word, per row of W.
            weights_and_bias = tf.matmul(logit_gradients, hidden_and_one, transpose_a=True)
            # Each row's true pairs, and its probability mass: the bias column of the product is the mass less them.
            true_pairs = tf.math.unsorted_segment_sum(upstream, labels, tf.shape(weights)[0])
            bounded = weights_and_bias * bounds.scale(true_pairs, weights_and_bias[:, -1] + true_pairs,
                                                      learning_rate)[:, None]
            hidden_gradient = tf.matmul(logit_gradients, weights) * per_pair
            return hidden_gradient, bounded[:, :-1], bounded[:, -1]

        return per_pair_losses, gradient

    return losses(hidden, weights, bias)


@tf.function(jit_compile=True)
def losses_and_logit_gradients(hidden: tf.Tensor, weights: tf.Tensor, bias: tf.Tensor,
                               labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per pair, -log softmax(logits)[label]; and its gradient with respect to the logits, softmax - one_hot."""
    logits = tf.matmul(hidden, weights, transpose_b=True) + bias
    log_normalisers = tf.reduce_logsumexp(minus_infinity_as_nan(logits), axis=1)
    true_logits = tf.gather(logits, labels[:, None], batch_dims=1)[:, 0]
    probabilities = tf.exp(logits - log_normalisers[:, None])
    return log_normalisers - true_logits, probabilities - tf.one_hot(labels, tf.shape(logits)[1])
