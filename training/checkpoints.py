"""The training checkpoint: E, W and its bias, the optimizer, and how far training has got."""

import os
import pathlib

import tensorflow as tf

from model.optimizer import BatchSGD
from model.skipgram import SkipGram
from training.rounds import CHECKPOINT_STATE


class Progress(tf.Module):
    """Where training stands: steps taken, words read, and the next batch of the data stream.

    The position (epoch, chunk, batch) names the first batch not yet trained on; the data pipeline is
    seeded by it, so a resumed run regenerates exactly the batches the interrupted one had still to do.
    `layout` says what the position counts: [batch size, replicas], replicas 0 for the single-process loop
    (chunk and batch in the one data stream) and R for the tf.distribute loop (steps into the epoch, taken by
    R replicas in lockstep). Inside an epoch, a position means the same data only in the layout that wrote it.
    """

    def __init__(self):
        super().__init__(name="progress")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.words_done = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="words_done")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.chunk = tf.Variable(0, dtype=tf.int64, trainable=False, name="chunk")
        self.batch = tf.Variable(0, dtype=tf.int64, trainable=False, name="batch")
        self.layout = tf.Variable([0, 0], dtype=tf.int64, trainable=False, name="layout")

    def advance(self, words: tf.Tensor, chunk: tf.Tensor, batch: tf.Tensor) -> None:
        """Counts one trained batch; the next one is the batch after it."""
        self.step.assign_add(1)
        self.words_done.assign_add(tf.cast(words, tf.float64))
        self.chunk.assign(chunk)
        self.batch.assign(batch + 1)

    def start_epoch(self, epoch: int) -> None:
        self.epoch.assign(epoch)
        self.chunk.assign(0)
        self.batch.assign(0)


SINGLE_PROCESS = 0  # the `replicas` of a position counted by the single-process loop
LAYOUT_KEY = "progress/layout/.ATTRIBUTES/VARIABLE_VALUE"


def describe_layout(batch_size: int, replicas: int) -> str:
    """What a position's layout counts, in words."""
    if replicas == SINGLE_PROCESS:
        return f"batches of {batch_size:,} pairs in one process"
    return f"batches of {batch_size:,} pairs on each of {replicas} tf.distribute replica{'s' * (replicas > 1)}"


def restore_checkpoint(checkpoint: tf.train.Checkpoint, path: str) -> None:
    """Restores every variable of `path` into `checkpoint` and checks that each was matched. A checkpoint written
    before positions recorded their layout has none: the layout stays [0, 0], unknown."""
    status = checkpoint.restore(path)
    if tf.train.load_checkpoint(path).has_tensor(LAYOUT_KEY):
        status.assert_consumed()
    else:
        status.assert_existing_objects_matched()


def finished_run_message(directory, progress: Progress, epochs: int) -> str | None:
    """What a run that has already trained every epoch says instead of training nothing; None for any other."""
    done, steps = int(progress.epoch.numpy()), int(progress.step.numpy())
    if done < epochs:
        return None
    trained = f"{done} of {epochs} epochs" if done == epochs else f"{done} epochs, more than --epochs {epochs},"
    return (f"{directory.root} has already trained {trained} ({steps:,} steps): nothing to do; to train further, "
            f"run again with --epochs {done + 1} or more")


def latest_listed_checkpoint(folder: str) -> str | None:
    """The checkpoint the folder's list names last, if its files are there; None otherwise. Unlike
    tf.train.latest_checkpoint, which globs the path, this finds it in folders whose names hold glob characters
    (`runs [2024]`)."""
    state = tf.train.get_checkpoint_state(folder) if tf.io.gfile.isdir(folder) else None
    path = state.model_checkpoint_path if state else ""
    return path if path and tf.io.gfile.exists(f"{path}.index") else None


def training_checkpoint(model: SkipGram, optimizer: BatchSGD, progress: Progress,
                        lock: tf.Variable | None = None) -> tf.train.Checkpoint:
    """Names the variables as the design does: E, W (one row per word) and W's bias; with --lock-init-vectors
    also E_lock, the share of the gradient each row of E takes (training/continuation.py)."""
    return tf.train.Checkpoint(
        E=model.embeddings,
        W=model.context_weights,
        W_bias=model.context_bias,
        optimizer=optimizer,
        progress=progress,
        **({"E_lock": lock} if lock is not None else {}),
    )


def listed_checkpoint_names(folder: pathlib.Path) -> list[str] | None:
    """The names of the checkpoints in `folder`'s list (tf.train.CheckpointManager's CHECKPOINT_STATE file), or None
    when there is no readable list."""
    if not (folder / CHECKPOINT_STATE).exists():
        return None
    try:
        state = tf.train.get_checkpoint_state(str(folder))
    except ValueError:  # A damaged list; the caller that resumes from it says so (training/preflight.py).
        return None
    return [os.path.basename(path) for path in state.all_model_checkpoint_paths] if state else None
