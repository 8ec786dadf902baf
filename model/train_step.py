"""One training step: the objective's loss over a batch, its gradients, and the optimizer's sparse update."""

from collections.abc import Callable

import tensorflow as tf

from model.optimizer import BatchSGD
from model.skipgram import SkipGram


def make_train_step(model: SkipGram, objective: Callable, optimizer: BatchSGD) -> Callable:
    """A compiled step `(centres, contexts, weights, noise, learning_rate, with_loss=True) -> mean loss` that
    updates E and W.

    With `with_loss=False` the step returns 0 instead of the loss: the gradients need the sigmoid of each score,
    not its softplus, so XLA then leaves the per-pair losses out altogether (16% of the step at dim 100 and 27% at
    dim 300, measured). The loop reads the loss only every few dozen steps (training/step_runner.py). Each value of
    `with_loss` is its own compiled step.

    Objectives that XLA can compile (`objective.jit_compile`) are fused into one kernel sequence per step:
    measured about twice as fast as the plain graph for negative sampling on CPU. XLA compiles once per
    input shape, which is why every batch has the same size (padding pairs carry weight 0).
    """
    variables = [model.embeddings, model.context_weights, model.context_bias]

    @tf.function(jit_compile=getattr(objective, "jit_compile", False), reduce_retracing=True)
    def train_step(centres: tf.Tensor, contexts: tf.Tensor, weights: tf.Tensor, noise: tf.Tensor,
                   learning_rate: tf.Tensor, with_loss: bool = True) -> tf.Tensor:
        with tf.GradientTape() as tape:
            losses = objective(model, centres, contexts, noise) * weights
            # Summed, not averaged: each pair contributes word2vec's own gradient to the rows it touches.
            total = tf.reduce_sum(losses)
        gradients = tape.gradient(total, variables)
        pairs = tf.reduce_sum(weights)
        optimizer.apply(gradients, variables, learning_rate, pairs)
        return total / tf.maximum(pairs, 1.0) if with_loss else tf.zeros([])

    return train_step
