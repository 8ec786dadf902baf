"""What training measures and decides at each epoch end: evaluation scores of E, whether E has learned yet,
and `--keep-best` / `--early-stop`.

    eval/analogy                 --eval-analogies: 3CosAdd accuracy, as evaluate.py scores it
    eval/<file stem>             --eval-similarity: Spearman correlation of each word-pairs file, as evaluate.py
    vectors/random_pair_cosine   mean cosine of random pairs of frequent words (about 1: not learned yet)
    epoch/evaluation_seconds     what scoring the files cost

The files are read and looked up in the vocabulary once, at the start; each epoch end only multiplies E.
"""

import dataclasses
import json
import math
import pathlib
import time

import numpy as np
import tensorflow as tf

from config import ANALOGY_SCORE, MEAN_LOSS_SCORE, Config, TrainingConfig, similarity_score
from data_pipeline.vocabulary import Vocabulary
from evaluation import ANALOGY_RESTRICT_VOCAB, SIMILARITY_RESTRICT_VOCAB
from evaluation.analogies import AnalogyQuestions
from evaluation.similarity import WordPairs
from evaluation.vectors import WordVectors
from storage import write_text_atomically

# Random pairs among the most frequent words whose mean cosine tells whether the vectors have learned. Vectors
# that have only moved together along one shared direction (a small corpus, few epochs: every neighbour at a
# cosine of 1.00) give 0.85 to 1; measured: 0.07 to 0.10 after each of 5 epochs on gcide, 0.3 to 0.5 on
# corpora of a few hundred lines once their loss has fallen.
FREQUENT_WORDS = 1000
RANDOM_PAIRS = 2000
UNLEARNED_COSINE = 0.8
RANDOM_PAIR_COSINE = "vectors/random_pair_cosine"


def random_pairs(vocabulary_size: int, seed: int = 0) -> np.ndarray:
    """int [pairs, 2]: distinct ids among the FREQUENT_WORDS most frequent, the same for every call."""
    frequent = min(vocabulary_size, FREQUENT_WORDS)
    if frequent < 2:
        return np.zeros((0, 2), np.int64)
    generator = np.random.default_rng(seed)
    first = generator.integers(0, frequent, RANDOM_PAIRS)
    # An offset from 1 to frequent - 1 never lands on the first word itself.
    second = (first + generator.integers(1, frequent, RANDOM_PAIRS)) % frequent
    return np.stack([first, second], axis=1)


def mean_cosine(matrix: np.ndarray, pairs: np.ndarray) -> float:
    """The mean cosine similarity of the rows in each pair; NaN without pairs."""
    if not len(pairs):
        return math.nan
    first, second = matrix[pairs[:, 0]].astype(np.float64), matrix[pairs[:, 1]].astype(np.float64)
    with np.errstate(all="ignore"):  # A diverged E (inf, NaN) gives NaN, without warnings.
        lengths = np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1)
        return float(np.mean(np.einsum("ij,ij->i", first, second) / np.where(lengths > 0, lengths, 1.0)))


def unlearned_hint(cosine: float) -> str:
    """One line saying the vectors have not learned yet, or "" when they look trained (or cannot tell)."""
    if not cosine > UNLEARNED_COSINE:
        return ""
    return (f"note: the vectors have not learned yet: two random frequent words have a cosine of {cosine:.2f} on "
            "average (trained vectors: about 0.1), so every word looks like every other; train for more epochs "
            "(--epochs) or on more text")


class EpochEvaluation:
    """Scores E at an epoch end with the evaluation package, on files prepared once for the vocabulary.

    Args:
        config: the run's config; `training.eval_analogies` and `training.eval_similarity` are read.
        vocabulary: the run's vocabulary, in id order (the row order of E).
    """

    def __init__(self, config: Config, vocabulary: Vocabulary):
        training = config.training
        self.words = tuple(vocabulary.words)
        self.analogies = (AnalogyQuestions.prepare(self.words, training.eval_analogies, ANALOGY_RESTRICT_VOCAB)
                          if training.eval_analogies else None)
        self.word_pairs = {similarity_score(path): WordPairs.prepare(self.words, path, SIMILARITY_RESTRICT_VOCAB)
                           for path in training.eval_similarity}
        self.pairs = random_pairs(len(self.words))

    def scores(self, embeddings: tf.Tensor) -> dict[str, float]:
        """The scores of E as it stands: `eval/*` (left out when undefined: no question or pair in the
        vocabulary), `vectors/random_pair_cosine`, and `epoch/evaluation_seconds` when files are scored."""
        with np.errstate(all="ignore"):  # A diverged E (inf, NaN) scores NaN, left out below, without warnings.
            return self.scores_of(WordVectors(self.words, np.asarray(tf.convert_to_tensor(embeddings))))

    def scores_of(self, vectors: WordVectors) -> dict[str, float]:
        start = time.monotonic()
        scores = {}
        if self.analogies is not None:
            result = self.analogies.score(vectors)
            if result.scored:
                scores[ANALOGY_SCORE] = result.accuracy
        for name, pairs in self.word_pairs.items():
            result = pairs.score(vectors)
            if math.isfinite(result.spearman):
                scores[name] = result.spearman
        if self.analogies is not None or self.word_pairs:
            scores["epoch/evaluation_seconds"] = time.monotonic() - start
        cosine = mean_cosine(vectors.matrix, self.pairs)
        if math.isfinite(cosine):
            scores[RANDOM_PAIR_COSINE] = cosine
        return scores


BEST_CHECKPOINT_NAME = "best"
BEST_RECORD = "best.json"


@dataclasses.dataclass(frozen=True)
class BestScore:
    """The best value of the followed score so far, and where it was reached (epoch counted from 1)."""

    score: str
    value: float
    epoch: int
    step: int


class BestCheckpoint:
    """`--keep-best SCORE` and `--early-stop N`: after each epoch, saves the training checkpoint to
    model_dir/best when SCORE is better than ever (higher, or lower for epoch/mean_loss), with best.json saying
    which epoch it is; and says when N epochs have passed without a better one.

    The best survives a resume: best.json is read back, and epochs are counted over the whole run.

    Args:
        training: the run's training config; `keep_best` and `early_stop` are read.
        checkpoint: the training checkpoint (E, W, optimizer, progress), saved as it is.
        directory: where the best checkpoint and best.json go (model_dir/best).
    """

    def __init__(self, training: TrainingConfig, checkpoint: tf.train.Checkpoint, directory: pathlib.Path):
        self.score, self.patience, self.directory = training.keep_best, training.early_stop, directory
        self.manager = tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=1,
                                                  checkpoint_name=BEST_CHECKPOINT_NAME) if self.score else None
        self.best = read_best_score(directory) if self.score else None
        if self.best is not None and self.best.score != self.score:
            self.best = None  # Another score was followed before: this one starts afresh.

    def is_better(self, value: float | None) -> bool:
        if value is None or not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value < self.best.value if self.score == MEAN_LOSS_SCORE else value > self.best.value

    def after_epoch(self, epoch: int, step: int, scores: dict[str, float], log=print) -> bool:
        """Saves the checkpoint if `scores` holds a new best; whether training stops now (--early-stop), said
        in one line."""
        if not self.score:
            return False
        if self.is_better(scores.get(self.score)):
            self.manager.save(checkpoint_number=step)
            self.best = BestScore(self.score, float(scores[self.score]), epoch, step)
            write_best_score(self.directory, self.best)
        reason = self.stop_reason(epoch)
        if reason:
            log(f"stopping early: {reason}")
        return bool(reason)

    def epochs_to_train(self, epochs_done: int, epochs: int, log=print) -> int:
        """`epochs`, or `epochs_done` when an earlier run already stopped early and --early-stop still says so."""
        reason = self.stop_reason(epochs_done) if epochs_done < epochs else ""
        if reason:
            log(f"not training further: {reason}; a larger --early-stop (or 0) trains on")
        return epochs_done if reason else epochs

    def stop_reason(self, epochs_done: int) -> str:
        """Why training stops after `epochs_done` epochs (--early-stop), or ""."""
        best_epoch = self.best.epoch if self.best else 0
        if not self.patience or epochs_done == 0 or epochs_done - best_epoch < self.patience:
            return ""
        if self.best is None:
            return (f"{self.score} had no value in {epochs_done} epochs (--early-stop {self.patience}); check that "
                    "the evaluation files' words are in the vocabulary")
        return (f"{self.score} has not improved for {epochs_done - best_epoch} epochs (--early-stop {self.patience}); "
                f"the best, {self.best.value:.4f} after epoch {self.best.epoch}, is kept in {self.directory} "
                "(export it with export.py --checkpoint best)")


def read_best_score(directory: pathlib.Path) -> BestScore | None:
    try:
        return BestScore(**json.loads((directory / BEST_RECORD).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None  # No best yet (or an unreadable record): the next epoch's score becomes the best.


def write_best_score(directory: pathlib.Path, best: BestScore) -> None:
    """best.json, replaced whole (a failed write, a full disk, leaves the old one and says so in one line): it names
    the epoch of the checkpoint beside it. Written after that checkpoint, so that a run that failed in between and
    is resumed finds the new best better than the old record and saves both again."""
    write_text_atomically(directory / BEST_RECORD, json.dumps(dataclasses.asdict(best), indent=2) + "\n",
                          "the best epoch's record")
