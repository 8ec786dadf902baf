"""Three training objectives over the same E and W, so a checkpoint made with one continues with another.

Each is a small callable: given the model and a batch of (centre, context) pairs with their noise words,
it returns one loss per pair. Summed, their gradients are word2vec's per-pair gradients.
"""

import numpy as np
import tensorflow as tf

from model.skipgram import SkipGram


class NegativeSampling:
    """word2vec's negative sampling: tell each true context word apart from k noise words.

    loss = -log sigmoid(h . w_context) - sum over noise words n of log sigmoid(-h . w_n), with h = E[centre]
    and w the rows of W. As in word2vec, W's bias takes no part (it serves the softmax objectives); with it,
    analogy accuracy on the benchmark corpus fell from 0.203 to 0.198.

    Noise words come as [groups, K]: the batch's pairs in `groups` equal runs, each run scored against its own
    row of K noise words, each weighted negatives / K so that a pair still counts `negatives` noise words.
    [batch, negatives] is word2vec exactly (fresh noise words per pair, gathered row by row); [1, K], the
    default, shares K noise words with the whole batch: one matrix product, and measured better scores.
    """

    jit_compile = True

    def __init__(self, negatives: int):
        self.negatives = negatives

    def __call__(self, model: SkipGram, centres: tf.Tensor, contexts: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        hidden = tf.gather(model.embeddings, centres)
        weights = model.context_weights
        true_logits = tf.reduce_sum(hidden * tf.gather(weights, contexts), axis=-1)
        runs = tf.reshape(hidden, [tf.shape(noise)[0], -1, tf.shape(hidden)[-1]])
        noise_logits = tf.einsum("gpd,gkd->gpk", runs, tf.gather(weights, noise))
        noise_losses = tf.reshape(tf.reduce_sum(tf.nn.softplus(noise_logits), axis=-1), [-1])
        return tf.nn.softplus(-true_logits) + self.negatives / noise.shape[1] * noise_losses


class SampledSoftmax:
    """Sampled softmax: the softmax over the true context word and K noise words shared by the batch,
    corrected by how often the noise distribution q draws each word, which estimates the full softmax."""

    # tf.nn.sampled_softmax_loss removes accidental hits with an op XLA cannot compile.
    jit_compile = False

    def __init__(self, noise_probabilities: np.ndarray):
        self.log_noise_probabilities = tf.constant(np.log(noise_probabilities), tf.float32)

    def __call__(self, model: SkipGram, centres: tf.Tensor, contexts: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        hidden = tf.gather(model.embeddings, centres)
        noise = tf.reshape(noise, [-1])  # One group: [1, K] noise words shared by the batch.
        sampled = tf.cast(tf.size(noise), tf.float32)
        expected = lambda ids: sampled * tf.exp(tf.gather(self.log_noise_probabilities, ids))
        return tf.nn.sampled_softmax_loss(
            weights=model.context_weights,
            biases=model.context_bias,
            labels=tf.cast(contexts[:, None], tf.int64),
            inputs=hidden,
            num_sampled=noise.shape[0] or tf.size(noise),
            num_classes=model.vocabulary_size,
            sampled_values=(tf.cast(noise, tf.int64), expected(contexts)[:, None], expected(noise)),
            remove_accidental_hits=True,
        )


class FullSoftmax:
    """The founding text's objective: exact softmax cross-entropy over all V words through W.

    Its cost is three B x D x V matrix products per batch, so it is bounded by matrix-multiply speed. The
    products run where they are fastest on CPU (measured at B 2048, D 100, V 43k): XLA computes the logits and
    fuses the softmax and its gradient into one pass over them; the two backward products run as plain
    TensorFlow matmuls (oneDNN), a quarter faster than XLA's. A step then costs about what its three products do.
    """

    # The step runs as a plain graph; its softmax part is compiled by XLA inside `softmax_cross_entropy`.
    jit_compile = False

    def __call__(self, model: SkipGram, centres: tf.Tensor, contexts: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        hidden = tf.gather(model.embeddings, centres)
        weights = tf.convert_to_tensor(model.context_weights)
        bias = tf.convert_to_tensor(model.context_bias)
        return softmax_cross_entropy(hidden, weights, bias, contexts)


@tf.custom_gradient
def softmax_cross_entropy(hidden: tf.Tensor, weights: tf.Tensor, bias: tf.Tensor, labels: tf.Tensor):
    """`sparse_softmax_cross_entropy_with_logits(labels, hidden @ weights^T + bias)`, per pair, differentiated
    by hand: the B x V gradient of the logits comes out of the forward pass, and one product gives W's and the
    bias's gradients together (the bias as one more column of W)."""
    losses, logit_gradients = losses_and_logit_gradients(hidden, weights, bias, labels)

    def gradient(upstream: tf.Tensor):
        per_pair = upstream[:, None]
        hidden_and_one = tf.concat([hidden, tf.ones_like(per_pair)], axis=1) * per_pair
        weights_and_bias = tf.matmul(logit_gradients, hidden_and_one, transpose_a=True)
        hidden_gradient = tf.matmul(logit_gradients, weights) * per_pair
        return hidden_gradient, weights_and_bias[:, :-1], weights_and_bias[:, -1], None

    return losses, gradient


@tf.function(jit_compile=True)
def losses_and_logit_gradients(hidden: tf.Tensor, weights: tf.Tensor, bias: tf.Tensor,
                               labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per pair, -log softmax(logits)[label]; and its gradient with respect to the logits, softmax - one_hot."""
    logits = tf.matmul(hidden, weights, transpose_b=True) + bias
    log_normalisers = tf.reduce_logsumexp(logits, axis=1)
    true_logits = tf.gather(logits, labels[:, None], batch_dims=1)[:, 0]
    probabilities = tf.exp(logits - log_normalisers[:, None])
    return log_normalisers - true_logits, probabilities - tf.one_hot(labels, tf.shape(logits)[1])
