"""The training step on several replicas (tf.distribute): the gradients of every replica's batch, summed
over all replicas, then the same sparse update applied by every replica to its own copy of E and W."""

from collections.abc import Callable

import tensorflow as tf

from data_pipeline.pairs import STEP_INPUTS
from model.optimizer import BatchSGD
from model.skipgram import SkipGram

# What the step sums over all replicas besides the gradients, in this order.
TOTALS = ("loss", "pairs", "words", "next_pairs", "stop")


def make_distributed_train_step(strategy: tf.distribute.Strategy, model: SkipGram, objective: Callable,
                                optimizer: BatchSGD) -> Callable:
    """A compiled step `(batches, next_pairs, stop, learning_rate) -> totals` run on every replica of `strategy`.

    `batches` holds one batch per replica (dicts with data_pipeline.pairs.STEP_INPUTS and `words`, as
    training_batches makes them; a replica whose shard is used up gets one of weight 0), `next_pairs` and
    `stop` one float per replica. The result is the float32 vector of TOTALS summed over all replicas: summed
    loss, pairs, corpus words, the pairs of the replicas' next batches (0: the epoch is over everywhere) and
    how many replicas were asked to stop. The update is that of one batch holding every replica's pairs, so
    all copies of E and W stay identical.
    """
    variables = [model.embeddings, model.context_weights, model.context_bias]

    # The loss and its gradients compile with XLA as in the single-process step; the all-reduce stays outside.
    @tf.function(jit_compile=getattr(objective, "jit_compile", False))
    def loss_and_gradients(batch: dict, learning_rate: tf.Tensor) -> tuple[tf.Tensor, list]:
        with tf.GradientTape() as tape:
            total_loss = tf.reduce_sum(objective(model, batch, learning_rate) * batch["weights"])
        return total_loss, tape.gradient(total_loss, variables)

    def replica_step(batch: dict, next_pairs: tf.Tensor, stop: tf.Tensor, learning_rate: tf.Tensor) -> tf.Tensor:
        total_loss, gradients = loss_and_gradients({key: batch[key] for key in STEP_INPUTS}, learning_rate)
        replica = tf.distribute.get_replica_context()
        # Sparse rows (IndexedSlices) are summed by gathering every replica's rows: the traffic grows with the
        # batch, not with V, and shrinks when each word's rows are summed first. Dense gradients (the `full`
        # objective's W) are all-reduced whole.
        # A variable the objective does not use (W's bias in negative sampling) has no gradient to exchange.
        # Each replica's rows arrive bounded already: the objective bounds each row's share of its own batch
        # (model.optimizer.RowBounds, from the batch's row counts). Across R replicas a row moves at most R x the bound.
        present = [one_row_per_word(gradient) for gradient in gradients if gradient is not None]
        summed = iter(replica.all_reduce(tf.distribute.ReduceOp.SUM, present))
        gradients = [None if gradient is None else next(summed) for gradient in gradients]
        local = tf.stack([total_loss, tf.reduce_sum(batch["weights"]), batch["words"], next_pairs, stop])
        totals = replica.all_reduce(tf.distribute.ReduceOp.SUM, local)
        optimizer.apply(gradients, variables, learning_rate)
        return totals

    @tf.function
    def train_step(batches, next_pairs, stop, learning_rate: tf.Tensor) -> tf.Tensor:
        totals = strategy.run(replica_step, args=(batches, next_pairs, stop, learning_rate))
        return strategy.experimental_local_results(totals)[0]

    return train_step


def one_row_per_word(gradient):
    """Sums the rows of an IndexedSlices gradient that update the same word, so that each word travels once."""
    if not isinstance(gradient, tf.IndexedSlices):
        return gradient
    words, positions = tf.unique(gradient.indices)
    values = tf.math.unsorted_segment_sum(gradient.values, positions, tf.size(words))
    return tf.IndexedSlices(values, words, gradient.dense_shape)


def make_chief_broadcast(strategy: tf.distribute.Strategy, variables: list[tf.Variable]) -> Callable:
    """A function `(fingerprint) -> fingerprints` that gives every replica the values of replica 0 (the chief)
    for `variables`, and returns every replica's int64 `fingerprint` vector, one row per replica, so that
    each worker can check that they all agree on what must be the same (the vocabulary).

    After a resume only the chief has read the checkpoint; this is how the others catch up, without needing
    to see the chief's disk.
    """

    def replica_broadcast(fingerprint: tf.Tensor) -> tf.Tensor:
        replica = tf.distribute.get_replica_context()
        is_first = tf.equal(replica.replica_id_in_sync_group, 0)
        for variable in variables:
            # Summing the chief's value with zeros from everyone else is a broadcast that every collective has.
            # Whole numbers travel as float64, exact up to 2**53.
            value = tf.cast(variable, tf.float64) if variable.dtype.is_integer else variable.read_value()
            value = replica.all_reduce(tf.distribute.ReduceOp.SUM, tf.where(is_first, value, tf.zeros_like(value)))
            variable.assign(tf.cast(value, variable.dtype))
        return replica.all_gather(fingerprint[tf.newaxis], axis=0)

    @tf.function
    def broadcast(fingerprint: tf.Tensor) -> tf.Tensor:
        gathered = strategy.run(replica_broadcast, args=(fingerprint,))
        return strategy.experimental_local_results(gathered)[0]

    return broadcast


def make_replica_sum(strategy: tf.distribute.Strategy) -> Callable:
    """A function summing one float32 scalar per replica over all replicas (every worker gets the sum)."""

    def replica_sum(value: tf.Tensor) -> tf.Tensor:
        # MultiWorkerMirroredStrategy cannot all-reduce a function's input as it is, which has no device yet
        # ("destinations can not be empty"); a copy made inside the replica has one.
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, tf.identity(value))

    @tf.function
    def total(values) -> tf.Tensor:
        return strategy.experimental_local_results(strategy.run(replica_sum, args=(values,)))[0]

    return total
