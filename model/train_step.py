"""One training step: the objective's loss over a batch, its gradients, and the optimizer's sparse update."""

from typing import Callable

import tensorflow as tf

from model.optimizer import BatchSGD
from model.skipgram import SkipGram


def make_train_step(model: SkipGram, objective: Callable, optimizer: BatchSGD) -> Callable:
    """A compiled step `(centres, contexts, noise, learning_rate) -> mean loss` that updates E and W."""
    variables = [model.embeddings, model.context_weights, model.context_bias]

    @tf.function(reduce_retracing=True)
    def train_step(centres: tf.Tensor, contexts: tf.Tensor, noise: tf.Tensor, learning_rate: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            losses = objective(model, centres, contexts, noise)
            # Summed, not averaged: each pair contributes word2vec's own gradient; the optimizer sums them per row, as word2vec would.
            total = tf.reduce_sum(losses)
        gradients = tape.gradient(total, variables)
        optimizer.apply(gradients, variables, learning_rate, tf.size(centres))
        return tf.reduce_mean(losses)

    return train_step
