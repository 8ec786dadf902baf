"""TensorBoard logs of a run, written under model_dir/logs (never the training checkpoint itself)."""

import pathlib

import tensorflow as tf


class TrainingLog:
    """Scalars for TensorBoard's SCALARS tab: loss, learning rate and words/s against the step."""

    def __init__(self, log_dir: pathlib.Path):
        self.log_dir = log_dir
        self.writer = tf.summary.create_file_writer(str(log_dir / "train"))

    def scalars(self, step: int, **values: float) -> None:
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, value)

    def close(self) -> None:
        self.writer.close()
