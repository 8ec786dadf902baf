"""TensorBoard logs of a run, written under model_dir/logs: scalars, the probe words' neighbours, the projector.

Everything goes into one run directory, model_dir/logs/train, so that TensorBoard shows a single run "train":

    events.out.tfevents.*      SCALARS: loss, learning_rate, words_per_second, epoch/*, eval/*, vectors/*;
                               TEXT: nearest_neighbours
    projector_config.pbtxt     PROJECTOR: one embedding, the checkpoint below, labelled by metadata.tsv
    metadata.tsv               `word<TAB>count` under a header, one line per projected row, most frequent first
    checkpoint, embedding-N.*  the `projector_rows` projected rows of E (see projected_ids), under the name E

The training checkpoint (E, W, optimizer) stays in model_dir/checkpoints: the projector lists every 2-D tensor
of a checkpoint it finds, so W and the optimizer's matrices would show up as "embeddings" if it were here.
Keras 3's TensorBoard callback is not used for the projector: the checkpoint it writes is one the plugin
cannot read. The projector lists the tensors of its checkpoint by their keys in the file, and a tf.train.Checkpoint
keys a variable `E/.ATTRIBUTES/VARIABLE_VALUE` (tensorboard#2471), so this checkpoint is written by the SaveV2 op
under the plain key `E`, which the projector shows as it is.
"""

import pathlib
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from tensorboard.plugins import projector

from config import Config, Round
from data_pipeline.vocabulary import Vocabulary
from evaluation.vectors import standardized
from model.neighbours import nearest_neighbours
from storage import write_text_atomically
from training.evaluation_hooks import RANDOM_PAIR_COSINE, unlearned_hint

RUN_NAME = "train"
METADATA_FILE = "metadata.tsv"
EMBEDDING_CHECKPOINT_NAME = "embedding"
# The name the projector plugin (and tf.train.load_variable) knows the projected matrix by.
PROJECTED_TENSOR = "E"
# The projector plugin's own limit: it loads at most this many points.
PROJECTOR_MAX_ROWS = 100_000
# When none of the probe words is in the vocabulary, this many words spread over the most frequent ones stand in.
FALLBACK_PROBES, FALLBACK_RANGE = 4, 200


def visible_label(word: str) -> str:
    """A word as the projector can show it: tabs and line breaks would split the metadata row, and an empty
    token would be an invisible point, so they get printable stand-ins."""
    if not word.strip():
        return "<empty>" if not word else "<space>"
    return word.replace("\t", "\\t").replace("\r", "\\r").replace("\n", "\\n")


def projector_metadata(vocabulary: Vocabulary, ids: Sequence[int]) -> str:
    """The metadata.tsv text: a `word<TAB>count` header, then one line per projected row (`ids`, in id order)."""
    lines = [f"{visible_label(vocabulary.words[index])}\t{vocabulary.counts[index]}" for index in ids]
    return "word\tcount\n" + "".join(line + "\n" for line in lines)


def projected_ids(vocabulary: Vocabulary, rows: int, newest: int = 0) -> np.ndarray:
    """The ids of the `rows` words the projector shows, ascending: the `newest` words (the last ids, those the
    current round of training added) first, most frequent first, then the most frequent of the others. A first
    round's vocabulary is sorted by count, so its projected rows are simply its first `rows`."""
    counts = np.asarray(vocabulary.counts)
    first_new = len(counts) - newest
    new = (first_new + np.argsort(-counts[first_new:], kind="stable"))[:rows]
    others = np.argsort(-counts[:first_new], kind="stable")[: rows - len(new)]
    return np.sort(np.concatenate([others, new]))


def rounds_markdown(rounds: list[Round]) -> str:
    """A markdown table of the rounds of training so far, for the TEXT tab."""
    header = ("| round | kind | corpus | words added | vocabulary | corpus words | epochs | learning rate | steps "
              "| started | finished |")
    lines = [header, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"]
    for number, record in enumerate(rounds, start=1):
        corpus = record.tfds_name or " ".join(record.corpus) or "(embedded corpus)"
        corpus += f" + {record.replay:g} of the earlier rounds' lines (--replay)" if record.replay_words else ""
        end = record.end_step if record.end_step >= 0 else ""
        lines.append(f"| {number} | {record.kind} | {corpus} | {record.words_added:,} | {record.vocabulary_size:,} "
                     f"| {record.corpus_words:,} | {record.epochs} | {record.learning_rate:g} "
                     f"| {record.start_step:,}-{end} | {record.started} | {record.finished} |")
    return "\n".join(lines)


def log_rounds(log_dir: pathlib.Path, step: int, rounds: list[Round]) -> None:
    """Writes the rounds table into the run's TEXT tab at `step`, where a new round starts."""
    writer = tf.summary.create_file_writer(str(log_dir / RUN_NAME))
    with writer.as_default(step=step):
        tf.summary.text("rounds", rounds_markdown(rounds))
    writer.close()


def chosen_probe_words(vocabulary: Vocabulary, requested: list[str]) -> tuple[list[str], list[str], str]:
    """The probe words to show: (those of `requested` in the vocabulary, those missing, a note to print or "").

    A word is looked up as given, else standardised as training standardises its tokens (`King` finds king).
    When none is found, a few words spread over the most frequent ones stand in (skipping the very first, mostly
    "the", "of", "and"), and the note says so.
    """
    ids = vocabulary.ids()
    keys = [word if word in ids else str(key) for word, key in zip(requested, standardized(requested))]
    found = [key for key in keys if key in ids]
    missing = [word for word, key in zip(requested, keys) if key not in ids]
    if found or not len(vocabulary):
        return list(dict.fromkeys(found)), missing, ""
    span = min(len(vocabulary), FALLBACK_RANGE)
    positions = sorted({(2 * index + 1) * span // (2 * FALLBACK_PROBES) for index in range(FALLBACK_PROBES)})
    stand_ins = [vocabulary.words[position] for position in positions]
    note = (f"none of the probe words ({', '.join(requested)}) is in the vocabulary: showing the neighbours of "
            f"frequent words instead ({', '.join(stand_ins)}); choose others with --probe-words")
    return stand_ins, [], note


def probe_neighbours(embeddings: tf.Tensor, vocabulary: Vocabulary, words: list[str],
                     k: int) -> list[tuple[str, list[tuple[str, float]]]]:
    """Each word's k nearest neighbours by cosine, as (word, [(neighbour, cosine), ...]); words must be in the
    vocabulary."""
    if not words or not k or len(vocabulary) < 2:
        return [(word, []) for word in words]
    ids = vocabulary.ids()
    neighbour_ids, scores = nearest_neighbours(embeddings, [ids[word] for word in words], k)
    return [(word, [(vocabulary.words[i], float(score)) for i, score in zip(row, row_scores)])
            for word, row, row_scores in zip(words, neighbour_ids.numpy(), scores.numpy())]


def neighbours_text(neighbours: list[tuple[str, float]]) -> str:
    return ", ".join(f"{word} {score:.2f}" for word, score in neighbours)


def neighbours_markdown(embeddings: tf.Tensor, vocabulary: Vocabulary, probe_words: list[str], k: int,
                        note: str = "") -> str:
    """A markdown table of each probe word's k nearest neighbours by cosine, for the TEXT tab, then `note`."""
    words, missing, fallback_note = chosen_probe_words(vocabulary, probe_words)
    lines = ["| word | nearest neighbours (cosine similarity) |", "| --- | --- |"]
    for word, neighbours in probe_neighbours(embeddings, vocabulary, words, k):
        lines.append(f"| {word} | {neighbours_text(neighbours)} |")
    if missing:
        lines.append(f"| {', '.join(missing)} | (not in the vocabulary) |")
    notes = [line for line in (fallback_note, note) if line]
    return "\n".join(lines + ([""] + notes if notes else []))


def write_projector_checkpoint(run_dir: pathlib.Path, step: int, rows: tf.Tensor) -> None:
    """Saves `rows` as `run_dir/embedding-<step>` under the key `E`, lists it in `run_dir/checkpoint` (where the
    projector looks, by a path relative to run_dir) and then removes the earlier ones.

    A tf.train.Checkpoint would key the matrix `E/.ATTRIBUTES/VARIABLE_VALUE`, and the projector shows keys as
    they are (tensorboard#2471); the SaveV2 op writes the same file format under the plain key.
    """
    name = f"{EMBEDDING_CHECKPOINT_NAME}-{step}"
    try:
        tf.raw_ops.SaveV2(prefix=str(run_dir / name), tensor_names=[PROJECTED_TENSOR], shape_and_slices=[""],
                          tensors=[rows])
    except Exception:
        for path in run_dir.glob(f"{name}.*"):  # A write cut short (a full disk): its pieces hold the last bytes.
            path.unlink(missing_ok=True)
        raise
    write_text_atomically(run_dir / "checkpoint",
                          f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n',
                          "the projector snapshot")
    for path in run_dir.glob(f"{EMBEDDING_CHECKPOINT_NAME}-*"):
        if path.name.split(".")[0] != name:
            path.unlink(missing_ok=True)


class TrainingLog:
    """What TensorBoard shows of a run: scalars every log interval, and at each epoch end the epoch's figures
    (mean loss, words/s, evaluation scores), a loss point, the probe words' neighbours and a fresh projector
    checkpoint of E.

    Args:
        log_dir: model_dir/logs; the run's files go into its `train` subdirectory.
        vocabulary: the run's vocabulary, in id order (the row order of E).
        config: the run's config; `training.projector_rows`, `probe_words` and `probe_neighbours` are read.
    """

    def __init__(self, log_dir: pathlib.Path, vocabulary: Vocabulary, config: Config):
        self.run_dir = log_dir / RUN_NAME
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.writer = tf.summary.create_file_writer(str(self.run_dir))
        self.vocabulary = vocabulary
        self.probe_words = list(config.training.probe_words)
        self.probe_neighbours = config.training.probe_neighbours
        rows = min(config.training.projector_rows, len(vocabulary), PROJECTOR_MAX_ROWS)
        current = config.training.rounds[-1] if config.training.rounds else None
        self.ids = projected_ids(vocabulary, rows, current.words_added if current and current.kind == "update-vocab"
                                 else 0)
        self.loss_step = -1  # the step of the last loss point written

    def scalars(self, step: int, **values: float) -> None:
        """Writes each value as a scalar at `step`."""
        if "loss" in values:
            self.loss_step = step
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, value)

    def loss_point(self, step: int, loss: float | None) -> None:
        """A `loss` point at `step` unless one is there already: every epoch end and run end gets one, whatever
        --log-every is, so that even a short run shows its loss."""
        if loss is not None and step != self.loss_step:
            self.scalars(step, loss=loss)

    def epoch_end(self, epoch: int, step: int, embeddings: tf.Tensor, figures: dict[str, float],
                  loss: float | None = None) -> None:
        """The epoch's figures (epoch/mean_loss, epoch/words_per_second, eval/*, ...) and epoch/number, the last
        step's loss, then the neighbours and the projector as they stand after `epoch` (counted from 1)."""
        self.scalars(step, **{"epoch/number": float(epoch), **figures})
        self.loss_point(step, loss)
        self.snapshot(step, embeddings, unlearned_hint(figures.get(RANDOM_PAIR_COSINE, float("nan"))))

    def run_end(self, step: int, embeddings: tf.Tensor, loss: float | None = None) -> None:
        """A run stopped inside an epoch (--max-steps, a signal): its last loss, neighbours and projector."""
        self.loss_point(step, loss)
        self.snapshot(step, embeddings)

    def snapshot(self, step: int, embeddings: tf.Tensor, note: str = "") -> None:
        """The probe words' neighbours in the TEXT tab (then `note`) and E's projected rows in the projector."""
        with self.writer.as_default(step=step):
            table = neighbours_markdown(embeddings, self.vocabulary, self.probe_words, self.probe_neighbours, note)
            tf.summary.text("nearest_neighbours", table)
        self.writer.flush()
        self.write_projector(step, embeddings)

    def write_projector(self, step: int, embeddings: tf.Tensor) -> None:
        """Writes metadata.tsv, a checkpoint of E's projected rows, and the config that ties them together,
        with paths relative to the run directory (TensorBoard refuses asset paths outside it)."""
        write_text_atomically(self.run_dir / METADATA_FILE, projector_metadata(self.vocabulary, self.ids),
                              "the projector snapshot")
        write_projector_checkpoint(self.run_dir, step, tf.gather(embeddings, self.ids))
        config = projector.ProjectorConfig()
        embedding = config.embeddings.add()
        embedding.tensor_name = PROJECTED_TENSOR
        embedding.metadata_path = METADATA_FILE
        projector.visualize_embeddings(str(self.run_dir), config)

    def close(self) -> None:
        self.writer.close()
