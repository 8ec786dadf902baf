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
    analogy accuracy on the benchmark corpus fell from 0.203 to 0.198. Noise words come per pair ([b, k]) or
    shared by the whole batch ([K]); shared ones are weighted k / K so each pair still counts k on average.
    """

    jit_compile = True

    def __init__(self, negatives: int):
        self.negatives = negatives

    def __call__(self, model: SkipGram, centres: tf.Tensor, contexts: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        hidden = tf.gather(model.embeddings, centres)
        weights = model.context_weights
        true_logits = tf.reduce_sum(hidden * tf.gather(weights, contexts), axis=-1)
        if noise.shape.rank == 2:
            noise_logits = tf.einsum("bd,bkd->bk", hidden, tf.gather(weights, noise))
            noise_weight = 1.0
        else:
            noise_logits = tf.matmul(hidden, tf.gather(weights, noise), transpose_b=True)
            noise_weight = self.negatives / tf.cast(tf.size(noise), tf.float32)
        return tf.nn.softplus(-true_logits) + noise_weight * tf.reduce_sum(tf.nn.softplus(noise_logits), axis=-1)


class SampledSoftmax:
    """Sampled softmax: the softmax over the true context word and K noise words shared by the batch,
    corrected by how often the noise distribution q draws each word, which estimates the full softmax."""

    # tf.nn.sampled_softmax_loss removes accidental hits with an op XLA cannot compile.
    jit_compile = False

    def __init__(self, noise_probabilities: np.ndarray):
        self.log_noise_probabilities = tf.constant(np.log(noise_probabilities), tf.float32)

    def __call__(self, model: SkipGram, centres: tf.Tensor, contexts: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        hidden = tf.gather(model.embeddings, centres)
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

    Its cost grows with V x D per pair (three V x D matrix products per batch): exact, and bounded by
    matrix-multiply speed.
    """

    jit_compile = True

    def __call__(self, model: SkipGram, centres: tf.Tensor, contexts: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        hidden = tf.gather(model.embeddings, centres)
        logits = tf.matmul(hidden, model.context_weights, transpose_b=True) + model.context_bias
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=contexts, logits=logits)
