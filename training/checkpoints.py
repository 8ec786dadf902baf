"""The training checkpoint: E, W and its bias, the optimizer, and how far training has got."""

import tensorflow as tf

from model.optimizer import BatchSGD
from model.skipgram import SkipGram


class Progress(tf.Module):
    """Where training stands: steps taken, words read, and the next batch of the data stream.

    The position (epoch, chunk, batch) names the first batch not yet trained on; the data pipeline is
    seeded by it, so a resumed run regenerates exactly the batches the interrupted one had still to do.
    """

    def __init__(self):
        super().__init__(name="progress")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.words_done = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="words_done")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.chunk = tf.Variable(0, dtype=tf.int64, trainable=False, name="chunk")
        self.batch = tf.Variable(0, dtype=tf.int64, trainable=False, name="batch")

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
