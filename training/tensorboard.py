"""TensorBoard logs of a run, written under model_dir/logs: scalars, the probe words' neighbours, the projector.

Everything goes into one run directory, model_dir/logs/train, so that TensorBoard shows a single run "train":

    events.out.tfevents.*      SCALARS: loss, learning_rate, words_per_second, epoch/*; TEXT: nearest_neighbours
    projector_config.pbtxt     PROJECTOR: one embedding, the checkpoint below, labelled by metadata.tsv
    metadata.tsv               `word<TAB>count` under a header, one line per projected row, most frequent first
    checkpoint, embedding-N.*  a checkpoint holding only the first `projector_rows` rows of E

The training checkpoint (E, W, optimizer) stays in model_dir/checkpoints: the projector lists every 2-D tensor
of a checkpoint it finds, so W and the optimizer's matrices would show up as "embeddings" if it were here.
Keras 3's TensorBoard callback is not used for the projector: the checkpoint it writes is one the plugin
cannot read.
"""

import pathlib
import time

import numpy as np
import tensorflow as tf
from tensorboard.plugins import projector

from config import Config
from data_pipeline.vocabulary import Vocabulary
from model.neighbours import nearest_neighbours
from storage import write_text_atomically

RUN_NAME = "train"
METADATA_FILE = "metadata.tsv"
EMBEDDING_CHECKPOINT_NAME = "embedding"
# The name the projector plugin (and tf.train.load_variable) knows the projected matrix by.
PROJECTED_TENSOR = "E/.ATTRIBUTES/VARIABLE_VALUE"
# The projector plugin's own limit: it loads at most this many points.
PROJECTOR_MAX_ROWS = 100_000


def visible_label(word: str) -> str:
    """A word as the projector can show it: tabs and line breaks would split the metadata row, and an empty
    token would be an invisible point, so they get printable stand-ins."""
    if not word.strip():
        return "<empty>" if not word else "<space>"
    return word.replace("\t", "\\t").replace("\r", "\\r").replace("\n", "\\n")


def projector_metadata(vocabulary: Vocabulary, rows: int) -> str:
    """The metadata.tsv text: a `word<TAB>count` header, then one line per projected row in id order."""
    lines = [f"{visible_label(word)}\t{count}" for word, count in zip(vocabulary.words[:rows], vocabulary.counts[:rows])]
    return "word\tcount\n" + "".join(line + "\n" for line in lines)


def neighbours_markdown(embeddings: tf.Tensor, vocabulary: Vocabulary, probe_words: list[str], k: int) -> str:
    """A markdown table of each probe word's k nearest neighbours by cosine, for the TEXT tab."""
    ids = vocabulary.ids()
    probes = [word for word in probe_words if word in ids]
    missing = [word for word in probe_words if word not in ids]
    lines = ["| word | nearest neighbours (cosine similarity) |", "| --- | --- |"]
    if probes and len(vocabulary) > 1:
        neighbour_ids, scores = nearest_neighbours(embeddings, [ids[word] for word in probes], k)
        for word, row, row_scores in zip(probes, neighbour_ids.numpy(), scores.numpy()):
            listed = ", ".join(f"{vocabulary.words[i]} {score:.2f}" for i, score in zip(row, row_scores))
            lines.append(f"| {word} | {listed} |")
    if missing:
        lines.append(f"| {', '.join(missing)} | (not in the vocabulary) |")
    return "\n".join(lines)


class TrainingLog:
    """What TensorBoard shows of a run: scalars every log interval, and at each epoch end an epoch summary,
    the probe words' neighbours and a fresh projector checkpoint of E.

    Args:
        log_dir: model_dir/logs; the run's files go into its `train` subdirectory.
        vocabulary: the run's vocabulary, in id order (the row order of E).
        config: the run's config; `training.projector_rows`, `probe_words` and `probe_neighbours` are read.
        words_done: corpus words already trained on (non-zero when resuming), to time the first epoch.
    """

    def __init__(self, log_dir: pathlib.Path, vocabulary: Vocabulary, config: Config, words_done: float = 0.0):
        self.run_dir = log_dir / RUN_NAME
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.writer = tf.summary.create_file_writer(str(self.run_dir))
        self.vocabulary = vocabulary
        self.probe_words = list(config.training.probe_words)
        self.probe_neighbours = config.training.probe_neighbours
        self.rows = min(config.training.projector_rows, len(vocabulary), PROJECTOR_MAX_ROWS)
        self.projected = tf.Variable(tf.zeros([self.rows, config.model.embedding_dim]), trainable=False)
        self.projector_checkpoints = tf.train.CheckpointManager(
            tf.train.Checkpoint(E=self.projected), str(self.run_dir), max_to_keep=1,
            checkpoint_name=EMBEDDING_CHECKPOINT_NAME,
        )
        self.epoch_losses: list[float] = []
        self.epoch_start_time, self.epoch_start_words = time.monotonic(), words_done

    def scalars(self, step: int, **values: float) -> None:
        """Writes each value as a scalar at `step`; a `loss` also counts towards the epoch's mean loss."""
        if "loss" in values:
            self.epoch_losses.append(float(values["loss"]))
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, value)

    def epoch_end(self, epoch: int, step: int, words_done: float, embeddings: tf.Tensor) -> None:
        """The epoch summary (mean of the losses logged in it, words/s over it, the epoch number), then
        the neighbours and the projector as they stand after `epoch` (counted from 1)."""
        seconds = max(time.monotonic() - self.epoch_start_time, 1e-9)
        summary = {"epoch/number": float(epoch), "epoch/words_per_second": (words_done - self.epoch_start_words) / seconds}
        if self.epoch_losses:
            summary["epoch/mean_loss"] = float(np.mean(self.epoch_losses))
        with self.writer.as_default(step=step):
            for name, value in summary.items():
                tf.summary.scalar(name, value)
        self.epoch_losses = []
        self.epoch_start_time, self.epoch_start_words = time.monotonic(), words_done
        self.snapshot(step, embeddings)

    def snapshot(self, step: int, embeddings: tf.Tensor) -> None:
        """The probe words' neighbours in the TEXT tab and E's first rows in the projector, at `step`."""
        with self.writer.as_default(step=step):
            table = neighbours_markdown(embeddings, self.vocabulary, self.probe_words, self.probe_neighbours)
            tf.summary.text("nearest_neighbours", table)
        self.writer.flush()
        self.write_projector(step, embeddings)

    def write_projector(self, step: int, embeddings: tf.Tensor) -> None:
        """Writes metadata.tsv, a checkpoint of E's first rows, and the config that ties them together,
        with paths relative to the run directory (TensorBoard refuses asset paths outside it)."""
        write_text_atomically(self.run_dir / METADATA_FILE, projector_metadata(self.vocabulary, self.rows),
                              "the projector snapshot")
        self.projected.assign(tf.convert_to_tensor(embeddings)[: self.rows])
        self.projector_checkpoints.save(checkpoint_number=step)
        config = projector.ProjectorConfig()
        embedding = config.embeddings.add()
        embedding.tensor_name = PROJECTED_TENSOR
        embedding.metadata_path = METADATA_FILE
        projector.visualize_embeddings(str(self.run_dir), config)

    def close(self) -> None:
        self.writer.close()
