"""Every objective learns, on a corpus big enough that one that does not fails: train.py on the first 30,000 lines of
the embedded WordNet corpus (about 290,000 words, 6,500 in the vocabulary), then the loss on the corpus's own
batches against the untrained model's (for the full softmax, log V), and words whose nearest neighbours are known.
"""

import gzip
import itertools
import math

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, run_script

from config import Config
from data_pipeline.pairs import STEP_INPUTS, chunk_ids, training_batches
from data_pipeline.vocabulary import Vocabulary
from model.neighbours import nearest_neighbours
from model.skipgram import SkipGram
from training.loop import objective_for
from training.model_directory import ModelDirectory

LINES = 30_000
FLAGS = ["--dim", "50", "--epochs", "3", "--log-every", "100000"]
# Word: words of which one must be among its three nearest neighbours. Each pair shares contexts in these
# glosses ("north and south america", "black and white", "small or large"); an untrained E has random neighbours.
KNOWN_NEIGHBOURS = {"north": {"south"}, "black": {"white", "red"}, "small": {"large"}}
PROBE_BATCHES = 20


@pytest.fixture(scope="module")
def wordnet_start(tmp_path_factory):
    path = tmp_path_factory.mktemp("learning") / "wordnet-start.txt"
    with gzip.open(ROOT / "data" / "wordnet_glosses.txt.gz", "rt", encoding="utf-8") as glosses:
        path.write_text("".join(itertools.islice(glosses, LINES)), encoding="utf-8")
    return path


def mean_loss(model: SkipGram, config: Config, vocabulary: Vocabulary, lines: tf.data.Dataset) -> float:
    """The objective's mean loss per pair over the first PROBE_BATCHES batches of the corpus."""
    objective, noise_shape = objective_for(config, vocabulary)
    batches = training_batches(chunk_ids(lines, vocabulary, config.data.token_pattern), vocabulary,
                               window_size=config.data.window_size, sample=config.data.sample,
                               batch_size=config.training.batch_size, noise_shape=noise_shape, seed=7)
    totals = [(float(tf.reduce_sum(objective(model, {key: batch[key] for key in STEP_INPUTS}) * batch["weights"])),
               float(tf.reduce_sum(batch["weights"]))) for batch in batches.take(PROBE_BATCHES)]
    return sum(loss for loss, _ in totals) / sum(pairs for _, pairs in totals)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["negative", "sampled", "full"])
def test_each_objective_learns_its_loss_and_known_neighbours(loss, wordnet_start, tmp_path):
    model_dir = tmp_path / "model"
    result = run_script("train.py", "--corpus", str(wordnet_start), "--model-dir", str(model_dir), "--loss", loss,
                        *FLAGS, timeout=900)
    assert result.returncode == 0, result.stderr

    directory = ModelDirectory(model_dir)
    config, vocabulary = directory.saved_config(), Vocabulary.load(str(directory.vocabulary_path))
    untrained = SkipGram(len(vocabulary), config.model.embedding_dim, seed=config.training.seed)
    trained = SkipGram(len(vocabulary), config.model.embedding_dim, seed=config.training.seed)
    tf.train.Checkpoint(E=trained.embeddings, W=trained.context_weights, W_bias=trained.context_bias).restore(
        tf.train.latest_checkpoint(str(directory.checkpoints))).expect_partial()
    lines = tf.data.TextLineDataset(str(wordnet_start))
    before, after = (mean_loss(model, config, vocabulary, lines) for model in (untrained, trained))
    if loss == "full":
        # W starts at zero: the untrained model's softmax is uniform, its loss log V.
        assert before == pytest.approx(math.log(len(vocabulary)), rel=1e-4)
    assert after < before - 0.5, (before, after)

    ids = vocabulary.ids()
    neighbour_ids, _ = nearest_neighbours(trained.embeddings, [ids[word] for word in KNOWN_NEIGHBOURS], 3)
    for (word, expected), row in zip(KNOWN_NEIGHBOURS.items(), neighbour_ids.numpy()):
        found = {vocabulary.words[index] for index in row}
        assert found & expected, f"{word}: {sorted(found)}"
    # The untrained model's neighbours are not these: the test can tell learning from its absence.
    untrained_ids, _ = nearest_neighbours(untrained.embeddings, [ids[word] for word in KNOWN_NEIGHBOURS], 3)
    assert not all({vocabulary.words[index] for index in row} & expected
                   for expected, row in zip(KNOWN_NEIGHBOURS.values(), untrained_ids.numpy()))
    assert np.isfinite(trained.embeddings.numpy()).all()
