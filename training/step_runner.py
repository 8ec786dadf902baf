"""Many training steps per Python call, on one replica or many: the batches, the learning rate, the progress and
the replicas' meetings all stay in the graph."""

import dataclasses
from collections.abc import Callable

import tensorflow as tf

from data_pipeline.pairs import STEP_INPUTS
from model.replica_exchange import ReplicaExchange
from training.checkpoints import Progress

# What each replica brings to a meeting, in this order: its local steps, summed loss, pairs and corpus words
# since the last meeting, where it stands (the chunk and batch of its last step), whether it was asked to stop,
# whether its last step was not finite, and its last step's loss.
LOCAL = ("steps", "loss", "pairs", "words", "chunk", "batch", "stop", "diverged", "last_loss")
# What one call returns, in this order; each meeting's figures add up, but for the last loss, which is replaced.
SUMMARY = ("steps", "loss", "pairs", "words", "stop", "epoch_over", "rows_exchanged", "diverged", "last_loss")
LAST_LOSS = SUMMARY.index("last_loss")


def linear_decay(start: float, floor_ratio: float, total_words: float) -> Callable[[tf.Tensor], tf.Tensor]:
    """word2vec's learning rate: from `start` down linearly with the share of words read, floored at
    `floor_ratio * start`."""

    def rate(words_done: tf.Tensor) -> tf.Tensor:
        remaining = 1.0 - tf.cast(words_done, tf.float32) / max(total_words, 1.0)
        return start * tf.maximum(floor_ratio, remaining)

    return rate


@dataclasses.dataclass(frozen=True)
class Trained:
    """What one call of the step runner did, over all replicas."""

    steps: int  # steps taken (a step is one batch on every replica that still had one)
    loss: float  # mean loss per pair over those steps (nan if none)
    pairs: float  # the pairs (summed weights) of those steps on all replicas
    words: float  # corpus words read by all replicas
    stopped: bool  # some replica was asked to stop: no step was taken
    epoch_over: bool  # every replica's batches ran out
    rows_exchanged: float  # changed rows that the replicas sent each other
    diverged: bool = False  # a replica's step had a loss that was not finite: the run must stop
    last_loss: float = float("nan")  # the loss of that step, else of the first replica's last step (nan if none)

    @property
    def loss_sum(self) -> float:
        """The steps' losses, each weighted by its pairs, summed."""
        return self.loss * self.pairs if self.pairs else 0.0


def make_step_runner(strategy: tf.distribute.Strategy, train_step: Callable, progress: Progress,
                     learning_rate: Callable, exchange: ReplicaExchange, sync_every: int,
                     first_replica: int = 0) -> Callable:
    """A function `(iterators, steps, stop) -> Trained` that trains up to `steps` steps on every replica.

    `iterators` holds one batch iterator per replica of this worker (from replica `first_replica` on).
    Each replica trains on its own batches, and the replicas meet (`exchange.meet`) whenever the step count
    reaches a multiple of `sync_every`, when their batches run out, and at the end of the call, so the copies
    are identical whenever Python sees them. `stop` (this worker's stop request) is shared first: if any
    worker asks to stop, no step is taken and all of them learn it together. A step whose loss is
    not finite ends the replica's local steps at once (it is not counted as trained), and after the meeting every
    replica stops (`diverged`): no checkpoint may hold what it did (training/guard.py).

    A Python loop around each step costs about as much as the step itself at word2vec's batch sizes;
    here the loop is a graph loop, and Python only sees the run every few dozen steps.
    """
    replicas = exchange.replicas

    def local_steps(iterators, steps: tf.Tensor, stop: tf.Tensor) -> tf.Tensor:
        """Up to `steps` steps on this replica's own batches; what it brings to the meeting (LOCAL).

        The tallies are one vector, a single loop variable: every loop variable adds graph ops to every step,
        and at word2vec's step times a handful of them cost several percent of the words per second."""
        context = tf.distribute.get_replica_context()
        iterator = iterators[tf.get_static_value(context.replica_id_in_sync_group) - first_replica]
        words_done = tf.cast(progress.words_done, tf.float32)
        tally = tf.concat([tf.zeros([4]), [tf.cast(progress.chunk, tf.float32), -1.0]], axis=0)
        sums = tf.constant([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])  # steps, loss, pairs, words add up; the place is replaced
        loss, finite = tf.constant(float("nan")), tf.constant(True)
        for _ in tf.range(steps):
            next_batch = iterator.get_next_as_optional()
            if not next_batch.has_value():
                break
            batch_data = next_batch.get_value()
            # Between meetings a replica sees only its own words; all replicas read about as many.
            loss = train_step({key: batch_data[key] for key in STEP_INPUTS},
                              learning_rate(words_done + replicas * tally[3]))
            finite = tf.math.is_finite(loss)
            if not finite:
                break
            pairs = tf.reduce_sum(batch_data["weights"])
            tally = tally * sums + tf.stack([1.0, loss * pairs, pairs, tf.cast(batch_data["words"], tf.float32),
                                             tf.cast(batch_data["chunk"], tf.float32),
                                             tf.cast(batch_data["batch"], tf.float32)])
        flags = tf.stack([tf.cast(stop, tf.float32), tf.cast(tf.logical_not(finite), tf.float32), loss])
        return tf.cast(tf.concat([tally, flags], axis=0), tf.float64)

    def record(everyone: tf.Tensor) -> tf.Tensor:
        """Counts a round of steps that all replicas met after (`everyone`: their LOCAL vectors) in the progress,
        identically on every replica; returns the round's SUMMARY (epoch over and rows exchanged left at 0)."""
        totals = dict(zip(LOCAL, tf.unstack(everyone, axis=1)))
        taken = tf.cast(tf.reduce_max(totals["steps"]), tf.int64)
        progress.step.assign_add(taken)
        progress.words_done.assign_add(tf.reduce_sum(totals["words"]))
        if replicas == 1:
            # The next batch to train: right after the last one trained (chunk, batch within it).
            if taken > 0:
                progress.chunk.assign(tf.cast(totals["chunk"][0], tf.int64))
                progress.batch.assign(tf.cast(totals["batch"][0], tf.int64) + 1)
        else:
            # Replicas step in lockstep through their own streams: the batches done in this epoch locate
            # every replica's position.
            progress.batch.assign_add(taken)
        diverged = tf.reduce_sum(totals["diverged"])
        # The last loss of the first replica whose step was not finite (of the first replica if none was).
        last_loss = tf.gather(totals["last_loss"], tf.argmax(totals["diverged"]))
        return tf.stack([tf.cast(taken, tf.float64), tf.reduce_sum(totals["loss"]), tf.reduce_sum(totals["pairs"]),
                         tf.reduce_sum(totals["words"]), tf.reduce_sum(totals["stop"]), tf.constant(0.0, tf.float64),
                         tf.constant(0.0, tf.float64), diverged, last_loss])

    def replica_stop(stop: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(exchange.collectives.gather(stop, "stop"))

    def merged(summary: tf.Tensor, result: tf.Tensor, rows_exchanged: tf.Tensor) -> tf.Tensor:
        """The call's SUMMARY so far with one meeting's `result` and rows exchanged added; the last loss is the
        meeting's when it took a step or diverged."""
        added = summary + result + tf.one_hot(SUMMARY.index("rows_exchanged"), len(SUMMARY), rows_exchanged, 0.0,
                                              dtype=tf.float64)
        moved = tf.logical_or(result[0] > 0, result[SUMMARY.index("diverged")] > 0)
        return tf.tensor_scatter_nd_update(added, [[LAST_LOSS]],
                                           [tf.where(moved, result[LAST_LOSS], summary[LAST_LOSS])])

    @tf.function
    def run(iterators, steps: tf.Tensor, stop: tf.Tensor) -> tf.Tensor:
        summary = tf.tensor_scatter_nd_update(tf.zeros([len(SUMMARY)], tf.float64), [[LAST_LOSS]], [float("nan")])
        stopped = exchange.first(strategy.run(replica_stop, args=(stop,)))
        done = tf.constant(0, tf.int64)
        while stopped == 0 and done < steps:
            round_steps = steps - done
            if replicas > 1:
                round_steps = tf.minimum(round_steps, sync_every - progress.step % sync_every)
            local = strategy.run(local_steps, args=(iterators, round_steps, stop))
            everyone, rows_exchanged = exchange.meet(local)
            result = record(everyone)
            summary = merged(summary, result, rows_exchanged)
            done += tf.cast(result[0], tf.int64)
            if result[SUMMARY.index("diverged")] > 0:
                break
            # The batches of every replica ran out: the epoch is over.
            if result[0] < tf.cast(round_steps, tf.float64):
                summary = tf.tensor_scatter_nd_update(summary, [[SUMMARY.index("epoch_over")]], tf.ones([1], tf.float64))
                break
        return tf.tensor_scatter_nd_update(summary, [[SUMMARY.index("stop")]], [stopped])

    def call(iterators, steps: int, stop: bool) -> Trained:
        result = run(tuple(iterators), tf.constant(steps, tf.int64), tf.constant(float(stop), tf.float64)).numpy()
        summary = dict(zip(SUMMARY, result.tolist()))
        pairs = summary["pairs"]
        return Trained(int(summary["steps"]), summary["loss"] / pairs if pairs else float("nan"), pairs,
                       summary["words"], summary["stop"] > 0, summary["epoch_over"] > 0, summary["rows_exchanged"],
                       summary["diverged"] > 0, summary["last_loss"])

    return call
