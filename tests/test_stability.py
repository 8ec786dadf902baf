"""The stability sweep: every objective and noise setting, across negatives, windows, batch sizes and learning rates,
on a tiny-vocabulary corpus and a larger one. In every corner the loss stays finite and falls, and E and W stay
finite, with the pipeline, objectives and optimizer that train.py uses (training.loop.objective_for).

The grid's corners are chosen so that each value of each setting appears, together with the combinations that
diverged before the per-row bounds (many negatives with shared noise words, large batches, the higher rate),
in a few minutes. With the bounds switched off (RowBounds(1e9, 1e9)) and the noise words fixed at 32 per batch,
the shared-noise corners with 15 and 25 negatives reach inf or NaN within their 150 steps.
"""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from conftest import TOPIC_LINES

from config import Config
from data_pipeline.pairs import STEP_INPUTS, chunk_ids, training_batches
from data_pipeline.sources import corpus_lines
from data_pipeline.vocabulary import Vocabulary, build_vocabulary
from model.optimizer import BatchSGD
from model.skipgram import SkipGram
from model.train_step import make_train_step
from training.loop import objective_for

STEPS = 150
PROBE_BATCHES = 4  # batches whose loss is measured before and after training
LARGER_LINES = 20_000  # of the embedded WordNet corpus: a vocabulary of about 4,900 words at --min-count 5


@dataclasses.dataclass(frozen=True)
class Corner:
    loss: str
    shared_noise_words: int  # 0: fresh noise words per pair
    negatives: int
    window: int
    batch: int
    learning_rate: float
    corpus: str  # "tiny" (19 words) or "larger"

    def __str__(self) -> str:
        noise = "per-pair" if not self.shared_noise_words else "shared"
        return (f"{self.loss}-{noise}-neg{self.negatives}-win{self.window}-batch{self.batch}-lr{self.learning_rate}"
                f"-{self.corpus}")


CORNERS = [
    Corner("negative", 32, 1, 1, 256, 0.05, "tiny"),
    Corner("negative", 32, 5, 5, 2048, 0.025, "larger"),
    Corner("negative", 32, 15, 5, 2048, 0.05, "larger"),
    Corner("negative", 32, 15, 10, 256, 0.05, "larger"),
    Corner("negative", 32, 25, 10, 8192, 0.05, "larger"),
    Corner("negative", 32, 25, 5, 8192, 0.05, "tiny"),
    Corner("negative", 0, 1, 5, 8192, 0.05, "larger"),
    Corner("negative", 0, 15, 1, 256, 0.05, "tiny"),
    Corner("negative", 0, 25, 10, 2048, 0.05, "larger"),
    Corner("sampled", 0, 5, 1, 2048, 0.025, "tiny"),
    Corner("sampled", 0, 5, 5, 256, 0.05, "larger"),
    Corner("sampled", 0, 5, 10, 8192, 0.05, "larger"),
    Corner("full", 0, 5, 10, 8192, 0.05, "tiny"),
    Corner("full", 0, 5, 1, 256, 0.025, "larger"),
    Corner("full", 0, 5, 5, 2048, 0.05, "larger"),
]


@pytest.fixture(scope="module")
def corpora() -> dict[str, tuple[tf.data.Dataset, Vocabulary, int]]:
    """(lines, vocabulary, min_count) per corpus: the topic lines, and the start of the embedded WordNet corpus."""
    config = Config()
    tiny = tf.data.Dataset.from_tensor_slices(TOPIC_LINES * 25)
    # WordNet's glosses come grouped by topic; shuffled, every stretch of training sees the same mixture, and the
    # loss on a few batches measures learning rather than which topic came last.
    larger = corpus_lines([], "", "", "", "").take(LARGER_LINES).shuffle(LARGER_LINES, seed=1,
                                                                          reshuffle_each_iteration=False)
    return {name: (lines, build_vocabulary(lines, config.data.token_pattern, min_count), min_count)
            for name, lines, min_count in [("tiny", tiny, 1), ("larger", larger, 5)]}


def corner_config(corner: Corner, vocabulary: Vocabulary, min_count: int) -> Config:
    config = Config()
    config.data.shared_noise_words, config.data.negatives = corner.shared_noise_words, corner.negatives
    config.data.window_size, config.data.min_count = corner.window, min_count
    config.data.sample = 0.0 if corner.corpus == "tiny" else config.data.sample  # A 975-word corpus keeps its words.
    config.training.loss, config.training.batch_size = corner.loss, corner.batch
    config.training.learning_rate = corner.learning_rate
    config.model.vocabulary_size = len(vocabulary)
    return config


def trained(config: Config, lines: tf.data.Dataset, vocabulary: Vocabulary,
            steps: int) -> tuple[list[float], float, float, SkipGram]:
    """Trains `steps` steps at a constant learning rate (the corpus repeating as needed); returns the losses of
    every step, the mean loss on the first PROBE_BATCHES batches before training and after it, and the model.
    Each step's loss depends on the noise words it drew; the same batches before and after tell the trend."""
    model = SkipGram(len(vocabulary), config.model.embedding_dim, seed=config.training.seed)
    objective, noise_shape = objective_for(config, vocabulary)
    step = make_train_step(model, objective, BatchSGD())
    # The corpus over and over as one stream (each pass draws its own windows, subsampling and noise).
    chunks = chunk_ids(lines, vocabulary, config.data.token_pattern).cache().repeat()
    batches = [{key: batch[key] for key in STEP_INPUTS} for batch in training_batches(
        chunks, vocabulary, window_size=config.data.window_size, sample=config.data.sample,
        batch_size=config.training.batch_size, noise_shape=noise_shape).take(steps)]
    rate = tf.constant(config.training.learning_rate)

    def probe_loss() -> float:
        return float(np.mean([tf.reduce_sum(objective(model, batch, rate) * batch["weights"])
                              / tf.reduce_sum(batch["weights"]) for batch in batches[:PROBE_BATCHES]]))

    before = probe_loss()
    losses = [float(step(batch, rate)) for batch in batches]
    return losses, before, probe_loss(), model


@pytest.mark.slow
@pytest.mark.parametrize("corner", CORNERS, ids=str)
def test_training_stays_finite_and_its_loss_falls(corner: Corner, corpora):
    lines, vocabulary, min_count = corpora[corner.corpus]
    losses, before, after, model = trained(corner_config(corner, vocabulary, min_count), lines, vocabulary, STEPS)
    assert len(losses) == STEPS
    assert np.isfinite(losses).all(), f"first non-finite loss at step {np.argmin(np.isfinite(losses)) + 1}"
    assert after < 0.95 * before, (before, after)
    for variable in (model.embeddings, model.context_weights, model.context_bias):
        assert np.isfinite(variable.numpy()).all()
