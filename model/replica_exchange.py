"""Replicas that train apart and meet every few steps: what they exchange, and the collective ops that carry it.

Each replica (a worker process, or a device of one machine) trains its own copy of E and W on its own batches
for `--sync-every` steps, then all replicas meet. Every row that some replica changed since the last meeting
is set, on every replica, to the mean of the values that the replicas which changed it hold (Spark MLlib's rule
for word2vec): a word seen by one replica keeps that replica's update whole, a word seen by all gets the
average of their updates. The copies are identical after every meeting, which is where checkpoints are taken.
Only changed rows travel, so the traffic grows with the words a few batches touch, not with the vocabulary.

With one replica there is nobody to meet and nothing is exchanged: the single process is this code's
one-replica case.
"""

import itertools
from collections.abc import Iterable

import numpy as np
import tensorflow as tf

# A collective group of our own, far above the keys tf.distribute hands out (it counts up from 1).
GROUP_KEY = 1_048_573


class Collectives:
    """All-gather and all-reduce over every replica of a strategy, usable inside graph loops.

    tf.distribute's replica-context collectives refuse to run inside a graph loop or conditional (they go
    through `merge_call` on CPU), and a collective instance keeps the shape it had the first time it ran:
    an all-gather whose size changes from one iteration of a graph loop to the next fails with "shape
    mismatch in the collective instance". So this class calls the collective ops itself, one instance key
    per (name, shape), and gives rows of changing number a fixed shape by padding them to the next power of
    two, one instance per size (see `gather_rows`).

    Create it inside `strategy.scope()`: its ordering token (one per replica's device) keeps each replica's
    collectives in program order, so that no two replicas wait on different collectives at once.
    """

    def __init__(self, replicas: int, group_key: int = GROUP_KEY):
        self.replicas = replicas
        self.group_key = group_key
        self.instance_keys: dict[tuple, int] = {}
        self.next_key = itertools.count(1)
        self.ordering = tf.Variable(0.0, trainable=False, name="collective_ordering")

    def instance_key(self, name: str, shape: tuple) -> int:
        """The same key for the same collective on every replica and worker, whatever order they trace in."""
        if (name, shape) not in self.instance_keys:
            self.instance_keys[(name, shape)] = next(self.next_key)
        return self.instance_keys[(name, shape)]

    def gather(self, value: tf.Tensor, name: str) -> tf.Tensor:
        """Every replica's `value` (of a fixed shape), stacked in replica order along a new first axis."""
        if self.replicas == 1:
            return value[tf.newaxis]
        shape = tuple(value.shape.as_list())
        gathered = tf.raw_ops.CollectiveGatherV2(
            input=value[tf.newaxis], group_size=self.replicas, group_key=self.group_key,
            instance_key=self.instance_key(name, shape), ordering_token=[self.ordering.handle])
        return tf.reshape(gathered, [self.replicas, *shape])

    def mean(self, value: tf.Tensor, name: str) -> tf.Tensor:
        """The mean of every replica's `value` (of a fixed shape)."""
        if self.replicas == 1:
            return value
        return tf.raw_ops.CollectiveReduceV2(
            input=value, group_size=self.replicas, group_key=self.group_key,
            instance_key=self.instance_key(name, tuple(value.shape.as_list())),
            ordering_token=[self.ordering.handle], merge_op="Add", final_op="Div")

    def gather_rows(self, rows: tf.Tensor, values: tf.Tensor, counts: tf.Tensor, capacity: int,
                    name: str) -> tuple[tf.Tensor, tf.Tensor]:
        """Every replica's `rows` (int32 [n]) and `values` ([n, D] float32), concatenated in replica order.

        `counts` holds every replica's n (already gathered); `capacity` bounds it. Each replica pads its rows
        to the smallest power of two that holds the longest, and one all-gather carries them with each row's
        index bit-cast into an extra column. Padding is then dropped.
        """
        sizes = [0] + [2**power for power in range(int(np.ceil(np.log2(max(capacity, 1)))) + 1)]
        longest = tf.cast(tf.reduce_max(counts), tf.int32)
        packed = tf.concat([values, tf.bitcast(rows, tf.float32)[:, tf.newaxis]], axis=1)
        columns = packed.shape[1]

        def gathered(size: int):
            def branch() -> tf.Tensor:
                if size == 0:
                    return tf.zeros([0, columns])
                padded = tf.pad(packed, [[0, size - tf.shape(packed)[0]], [0, 0]])
                padded = tf.ensure_shape(padded, [size, columns])
                return tf.reshape(self.gather(padded, f"{name}/{size}"), [self.replicas * size, columns])
            return branch

        bucket = tf.searchsorted(tf.constant(sizes, tf.int32), longest[tf.newaxis], side="left")[0]
        everything = tf.switch_case(bucket, [gathered(size) for size in sizes])
        size = tf.shape(everything)[0] // self.replicas
        real = tf.reshape(tf.range(size)[tf.newaxis, :] < tf.cast(counts, tf.int32)[:, tf.newaxis], [-1])
        everything = tf.boolean_mask(everything, real)
        return tf.bitcast(everything[:, -1], tf.int32), everything[:, :-1]


class ChangedRows(tf.Module):
    """Which rows of each trained variable this replica has changed since the replicas last met.

    The optimizer marks the rows of every sparse update; a variable updated whole (the `full` objective's W)
    is marked dense and exchanged whole.
    """

    def __init__(self, variables: Iterable[tf.Variable]):
        super().__init__(name="changed_rows")
        self.trained = list(variables)
        self.masks = [tf.Variable(tf.zeros([variable.shape[0]], tf.bool), trainable=False,
                                  name=f"changed_{index}") for index, variable in enumerate(self.trained)]
        self.dense: set[int] = set()  # indices of variables updated whole, learned while tracing the step
        self.sparse: set[int] = set()

    def index(self, variable: tf.Variable) -> int:
        return next(i for i, known in enumerate(self.trained) if known is variable)

    def mark(self, variable: tf.Variable, rows: tf.Tensor | None) -> None:
        """Records an update of `rows` of `variable`, or of all of it (None)."""
        index = self.index(variable)
        if rows is None:
            self.dense.add(index)
            return
        self.sparse.add(index)
        self.masks[index].scatter_update(tf.IndexedSlices(tf.ones_like(rows, tf.bool), rows))


class ReplicaExchange:
    """The meeting of all replicas after their local steps: totals summed, changed rows averaged.

    Call `meet` in replica context (inside `strategy.run`), after this replica's local steps.
    """

    def __init__(self, collectives: Collectives, changed: ChangedRows):
        self.collectives = collectives
        self.changed = changed

    @property
    def replicas(self) -> int:
        return self.collectives.replicas

    def meet(self, local: tf.Tensor) -> tf.Tensor:
        """Every replica's `local` float64 vector, gathered as [replicas, n], after the replicas' copies of
        every changed row have been made equal."""
        if self.replicas == 1:
            return local[tf.newaxis]
        sparse = sorted(self.changed.sparse - self.changed.dense)
        rows = {index: tf.cast(tf.where(self.changed.masks[index])[:, 0], tf.int32) for index in sparse}
        counts = [tf.cast(tf.size(rows[index]), tf.float64)[tf.newaxis] for index in sparse]
        everything = self.collectives.gather(tf.concat([local, *counts], axis=0), "totals")
        for position, index in enumerate(sparse):
            self.average_changed_rows(index, rows[index], everything[:, local.shape[0] + position])
        for index in sorted(self.changed.dense):
            variable = self.changed.trained[index]
            variable.assign(self.collectives.mean(tf.convert_to_tensor(variable), f"dense/{index}"))
        return everything[:, :local.shape[0]]

    def average_changed_rows(self, index: int, rows: tf.Tensor, counts: tf.Tensor) -> None:
        """Sets each row that some replica changed to the mean of those replicas' values, on every replica."""
        variable, mask = self.changed.trained[index], self.changed.masks[index]
        width = int(np.prod(variable.shape[1:]))  # D for E and W, 1 for W's bias
        values = tf.reshape(tf.gather(variable, rows), [-1, width])
        all_rows, all_values = self.collectives.gather_rows(rows, values, counts, variable.shape[0], f"rows/{index}")
        words, positions = tf.unique(all_rows)
        sums = tf.math.unsorted_segment_sum(all_values, positions, tf.size(words))
        replicas = tf.math.unsorted_segment_sum(tf.ones_like(all_rows, tf.float32), positions, tf.size(words))
        means = tf.reshape(sums / replicas[:, tf.newaxis], tf.concat([tf.shape(words), variable.shape[1:]], 0))
        variable.scatter_update(tf.IndexedSlices(means, words))
        mask.assign(tf.zeros_like(mask))
