"""Replicas that train apart and meet every few steps: what they exchange, and the collective ops that carry it.

Each replica (a worker process, or a device of one machine) trains its own copy of E and W on its own batches
for `--sync-every` steps, then all replicas meet. Each sends how far it moved every row it changed since the
last meeting, and every replica adds up all of them onto the values of the last meeting: a row's update is the
sum of the replicas' updates, as when every replica's gradients are summed at every step (which is what
`--sync-every 1` does, up to rounding), and the copies are identical again after every meeting. Checkpoints are
only taken there. Only changed rows travel, as bfloat16 differences, so the traffic grows with the words that a few
batches touch, not with the vocabulary. A variable updated whole (the `full` objective's W, whose gradient is
summed over the batch's pairs like every other) has its whole change summed the same way, in float32.

With one replica there is nobody to meet and nothing is exchanged: the single process is this code's
one-replica case.
"""

import itertools
from collections.abc import Iterable

import numpy as np
import tensorflow as tf

# A collective group of our own, far above the keys tf.distribute hands out (it counts up from 1).
GROUP_KEY = 1_048_573
# Rows travel in pieces of about this many bytes: measured on loopback gRPC, the cost per byte is lowest near
# 1 MB, and a piece's padding wastes at most one piece.
PIECE_BYTES = 1 << 20
# The changes travel as bfloat16: half the bytes of float32, at a rounding error of at most 1/512 of a change.
# (float16 would round more finely, but any float16 op in a graph makes oneDNN log an error line on this CPU;
# the collective ops take no bfloat16, so pairs of them travel bit-cast as int32.)
WIRE_DTYPE = tf.bfloat16


class Collectives:
    """All-gather and all-reduce over every replica of a strategy, usable inside graph loops.

    tf.distribute's replica-context collectives refuse to run inside a graph loop or conditional (they go
    through `merge_call` on CPU), and a collective instance keeps the shape it had the first time it ran:
    an all-gather whose size changes from one iteration of a graph loop to the next fails with "shape
    mismatch in the collective instance". So this class calls the collective ops itself, one instance key per
    (name, shape) and every shape fixed; a changing number of rows travels in fixed-size pieces.

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
        """The same key for the same collective on every replica and worker."""
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

    def sum(self, value: tf.Tensor, name: str) -> tf.Tensor:
        """The sum of every replica's `value` (of a fixed shape)."""
        if self.replicas == 1:
            return value
        return tf.raw_ops.CollectiveReduceV2(
            input=value, group_size=self.replicas, group_key=self.group_key,
            instance_key=self.instance_key(name, tuple(value.shape.as_list())),
            ordering_token=[self.ordering.handle], merge_op="Add", final_op="Id")


class ChangedRows(tf.Module):
    """What a replica keeps to meet the others: which rows of each trained variable it has changed since the
    last meeting (the optimizer marks them), and every variable's values at that meeting.

    The values at the last meeting double the memory of E and W on each replica; they are what turns a row's
    value into how far this replica moved it.
    """

    def __init__(self, variables: Iterable[tf.Variable]):
        super().__init__(name="changed_rows")
        self.trained = list(variables)
        self.masks = [tf.Variable(tf.zeros([variable.shape[0]], tf.bool), trainable=False, name=f"changed_{index}")
                      for index, variable in enumerate(self.trained)]
        self.met = [tf.Variable(variable, trainable=False, name=f"met_{index}")
                    for index, variable in enumerate(self.trained)]
        self.dense: set[int] = set()  # Variables updated whole, and those updated by rows, as the step traces.
        self.sparse: set[int] = set()

    def index(self, variable: tf.Variable) -> int:
        return next(index for index, known in enumerate(self.trained) if known is variable)

    def mark(self, variable: tf.Variable, rows: tf.Tensor | None) -> None:
        """Records an update of `rows` of `variable`, or of all of it (None)."""
        index = self.index(variable)
        if rows is None:
            self.dense.add(index)
            return
        self.sparse.add(index)
        self.masks[index].scatter_update(tf.IndexedSlices(tf.ones_like(rows, tf.bool), rows))

    def start(self) -> None:
        """Takes the variables as they are now (restored, or received from the chief) as the last meeting's."""
        for met, variable in zip(self.met, self.trained):
            met.assign(tf.convert_to_tensor(variable))


class ReplicaExchange:
    """The meeting of all replicas after their local steps: small totals gathered, changed rows summed.

    Call `meet` in cross-replica context, inside a tf.function, after a `strategy.run` of local steps. A
    collective op inside a graph loop of a replica function hangs on MirroredStrategy (each replica's loop is a
    frame of its own, so the replicas' ops never pair up), so every loop here runs `strategy.run` once per
    iteration, as Keras runs several steps per call.
    """

    def __init__(self, strategy: tf.distribute.Strategy, collectives: Collectives, changed: ChangedRows | None):
        self.strategy = strategy
        self.collectives = collectives
        self.changed = changed

    @property
    def replicas(self) -> int:
        return self.collectives.replicas

    def first(self, per_replica) -> tf.Tensor:
        return self.strategy.experimental_local_results(per_replica)[0]

    @tf.autograph.experimental.do_not_convert  # Python control flow only: converting it took 0.3 s of a first run.
    def meet(self, local) -> tuple[tf.Tensor, tf.Tensor]:
        """Makes every replica's copy of every changed row the same. `local` holds one float64 vector per replica
        (what a `strategy.run` returned); returns all of them as [replicas, n], and the rows that travelled."""
        if self.replicas == 1:
            return self.first(local)[tf.newaxis], tf.constant(0.0, tf.float64)
        sparse = sorted(self.changed.sparse - self.changed.dense)
        everything, packed = self.strategy.run(lambda mine: self.share_counts(mine, sparse), args=(local,))
        everything = self.first(everything)
        size = self.first(local).shape[0]
        for position, index in enumerate(sparse):
            self.add_everyones_changes(index, packed[position], tf.cast(everything[:, size + position], tf.int32))
        for index in sorted(self.changed.dense):
            self.strategy.run(lambda index=index: self.add_whole_changes(index))
        return everything[:, :size], tf.reduce_sum(everything[:, size:])

    def share_counts(self, local: tf.Tensor, sparse: list[int]) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """In each replica: its changes packed for travel, one [rows, columns] int32 matrix per variable updated
        by rows; and every replica's `local` vector with its numbers of changed rows, gathered."""
        packed = []
        for index in sparse:
            variable, met = self.changed.trained[index], self.changed.met[index]
            rows = tf.cast(tf.where(self.changed.masks[index])[:, 0], tf.int32)
            width = int(np.prod(variable.shape[1:]))  # D for E and W, 1 for W's bias
            changes = tf.reshape(tf.gather(variable, rows) - tf.gather(met, rows), [-1, width])
            packed.append(tf.concat([as_int32_pairs(changes), rows[:, tf.newaxis]], axis=1))
        counts = [tf.cast(tf.shape(mine)[:1], tf.float64) for mine in packed]
        return self.collectives.gather(tf.concat([local, *counts], axis=0), "totals"), packed

    def add_everyones_changes(self, index: int, packed, counts: tf.Tensor) -> None:
        """Adds every replica's changes of variable `index` (`packed`, one matrix per replica) onto its values at
        the last meeting, piece by piece, and gives every replica the rows that changed."""
        piece_rows = self.piece_rows(index)
        pieces = (tf.reduce_max(counts) + piece_rows - 1) // piece_rows

        def add_piece(piece: tf.Tensor) -> tf.Tensor:
            self.strategy.run(lambda mine, piece: self.add_piece(index, mine, counts, piece), args=(packed, piece))
            return piece + 1

        tf.while_loop(lambda piece: piece < pieces, add_piece, [tf.constant(0)])
        self.strategy.run(lambda: self.adopt_met_rows(index))

    def piece_rows(self, index: int) -> int:
        """Rows per piece of PIECE_BYTES: each row is ceil(width / 2) int32 of changes and one of its index."""
        columns = (int(np.prod(self.changed.trained[index].shape[1:])) + 1) // 2 + 1
        return max(1, PIECE_BYTES // (columns * 4))

    def add_piece(self, index: int, packed: tf.Tensor, counts: tf.Tensor, piece: tf.Tensor) -> None:
        """Adds piece `piece` of every replica's changes onto the values of the last meeting, and marks the
        rows it holds as changed. `counts` is every replica's number of changed rows."""
        variable, mask, met = self.changed.trained[index], self.changed.masks[index], self.changed.met[index]
        piece_rows, width = self.piece_rows(index), int(np.prod(variable.shape[1:]))
        start = piece * piece_rows
        mine = packed[start:start + piece_rows]
        mine = tf.ensure_shape(tf.pad(mine, [[0, piece_rows - tf.shape(mine)[0]], [0, 0]]), [piece_rows, packed.shape[1]])
        everyones = self.collectives.gather(mine, f"changes/{index}")
        received = tf.boolean_mask(everyones, tf.range(start, start + piece_rows)[tf.newaxis, :] < counts[:, tf.newaxis])
        rows = received[:, -1]
        changes = tf.reshape(from_int32_pairs(received[:, :-1], width), [-1, *variable.shape[1:]])
        met.scatter_add(tf.IndexedSlices(changes, rows))
        mask.scatter_update(tf.IndexedSlices(tf.ones_like(rows, tf.bool), rows))

    def adopt_met_rows(self, index: int) -> None:
        """Every row some replica changed takes its new value (that of the meeting) in this replica's copy."""
        variable, mask, met = self.changed.trained[index], self.changed.masks[index], self.changed.met[index]
        changed = tf.cast(tf.where(mask)[:, 0], tf.int32)
        variable.scatter_update(tf.IndexedSlices(tf.gather(met, changed), changed))
        mask.assign(tf.zeros_like(mask))

    def add_whole_changes(self, index: int) -> None:
        """A variable updated whole: every replica's change since the last meeting, summed onto its value there."""
        variable, met = self.changed.trained[index], self.changed.met[index]
        met.assign_add(self.collectives.sum(tf.convert_to_tensor(variable) - met, f"dense/{index}"))
        variable.assign(met)


def as_int32_pairs(values: tf.Tensor) -> tf.Tensor:
    """[n, width] float32 rounded to bfloat16, two to an int32: [n, ceil(width / 2)]."""
    halves = tf.cast(values, WIRE_DTYPE)
    if values.shape[1] % 2:
        halves = tf.pad(halves, [[0, 0], [0, 1]])
    return tf.bitcast(tf.reshape(halves, [tf.shape(halves)[0], (values.shape[1] + 1) // 2, 2]), tf.int32)


def from_int32_pairs(pairs: tf.Tensor, width: int) -> tf.Tensor:
    """The float32 [n, width] that `as_int32_pairs` packed."""
    halves = tf.reshape(tf.bitcast(pairs, WIRE_DTYPE), [tf.shape(pairs)[0], 2 * pairs.shape[1]])
    return tf.cast(halves[:, :width], tf.float32)
