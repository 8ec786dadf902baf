"""One training step: the objective's loss over a batch, its gradients, and the optimizer's sparse update."""

from collections.abc import Callable

import tensorflow as tf

from model.optimizer import BatchSGD
from model.skipgram import SkipGram


def make_train_step(model: SkipGram, objective: Callable, optimizer: BatchSGD,
                    embedding_lock: tf.Variable | None = None, changed_rows=None) -> Callable:
    """A compiled step `(batch, learning_rate) -> mean loss` that updates E and W.

    `batch` holds the tensors of data_pipeline.pairs.STEP_INPUTS. A loss that is not finite means training must
    stop (training/step_runner.py, training/guard.py). That checks every row the step reads, and so every row it
    updates: each pair's loss is non-finite whenever one of its scores is (model/objectives.py), and a non-finite
    value in a row the step reads (the centre's row of E, the context's and the noise words' rows of W) makes the
    scores that read it non-finite. Each update is those rows times factors in [0, 1] and the learning rate, so from
    finite rows an update can only be non-finite by overflowing (rows of ~1e37): that is caught at the next step that
    reads the row, and always by the check of the whole state before every checkpoint (training/guard.py). Checking
    every update instead cost 8-23% of a dim-300 step's CPU (docs/training.md); the loss is one number.

    The training loop reads every step's loss, since its epoch mean counts every step (training/step_runner.py);
    the loss costs 10-17% of a step (dims 300 and 100), less since negative sampling's softplus shares its
    exponential with its gradient (model.objectives.softplus).

    Objectives that XLA can compile (`objective.jit_compile`) are fused into one kernel sequence per step:
    measured about twice as fast as the plain graph for negative sampling on CPU. XLA compiles once per
    input shape, which is why every batch has the same size (padding pairs carry weight 0).

    `embedding_lock`, one factor per row of E (0: fixed, 1: trains), scales E's gradient rows, as gensim's
    `lockf` does. `changed_rows` (model.replica_exchange.ChangedRows) records the rows each step updates, when
    several replicas train apart and exchange them.
    """
    variables = [model.embeddings, model.context_weights, model.context_bias]

    @tf.function(jit_compile=getattr(objective, "jit_compile", False), reduce_retracing=True, autograph=False)
    def train_step(batch: dict, learning_rate: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            losses = objective(model, batch, learning_rate) * batch["weights"]
            # Summed, not averaged: each pair contributes word2vec's own gradient to the rows it touches.
            total = tf.reduce_sum(losses)
        gradients = tape.gradient(total, variables)
        if embedding_lock is not None:
            gradients[0] = locked(gradients[0], embedding_lock)
        optimizer.apply(gradients, variables, learning_rate, changed_rows)
        # A padding pair's loss is multiplied by its weight 0, which keeps a NaN or inf (0 x inf is NaN): its rows
        # are checked too.
        return total / tf.maximum(tf.reduce_sum(batch["weights"]), 1.0)

    return train_step


def locked(gradient: tf.Tensor | tf.IndexedSlices, factors: tf.Variable) -> tf.Tensor | tf.IndexedSlices:
    """E's gradient with each row scaled by its factor; E is gathered by the objectives, so its gradient comes as
    row slices, and only the batch's rows are scaled."""
    if isinstance(gradient, tf.IndexedSlices):
        scale = tf.gather(factors, gradient.indices)[:, None]
        return tf.IndexedSlices(gradient.values * scale, gradient.indices, gradient.dense_shape)
    return gradient * factors[:, None]
