"""What training measures at each epoch end: the loss summed in the compiled loop, evaluation scores, whether E
has learned yet, the probe words, and --keep-best / --early-stop; in-process on tiny inputs worked by hand, then
as a user runs them (train.py, export.py, evaluate.py in real subprocesses)."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf
from conftest import run_script, tiny_flags

from config import Config
from data_pipeline.pairs import step_batch
from data_pipeline.vocabulary import Vocabulary
from errors import UserError
from model.objectives import NegativeSampling
from model.optimizer import BatchSGD
from model.replica_exchange import Collectives, ReplicaExchange
from model.skipgram import SkipGram
from model.train_step import make_train_step
from training.checkpoints import Progress, training_checkpoint
from training.distributed import Distribution
from training.evaluation_hooks import (
    UNLEARNED_COSINE,
    BestCheckpoint,
    EpochEvaluation,
    mean_cosine,
    random_pairs,
    read_best_score,
    unlearned_hint,
)
from training.loop import train
from training.model_directory import ModelDirectory
from training.reporting import EpochTotals, epoch_figures_text
from training.step_runner import make_step_runner
from training.tensorboard import chosen_probe_words

# The two-topic corpus's vocabulary, most frequent first (ids 0 to 18).
TOPIC_WORDS = ("the", "a", "and", "in", "cat", "dog", "garden", "king", "queen", "castle", "green", "kingdom", "old",
               "play", "royal", "rule", "sit", "sleep", "warm")
TOPIC_VOCABULARY = Vocabulary(TOPIC_WORDS, (200, 100, 100, 75) + (50,) * 5 + (25,) * 10)


def write(path, *lines: str):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- The loss of every step, summed in the compiled loop ---


def test_the_step_runner_sums_every_steps_loss_weighted_by_its_pairs():
    # Three batches of 4 pairs with 4, 3 and 1 real pairs (weight 1) and padding (weight 0). With a learning rate
    # of 0 nothing moves, so each step's loss is the objective's mean over its real pairs, computed here directly.
    model = SkipGram(6, 3, seed=1)
    model.context_weights.assign(tf.random.stateless_normal([6, 3], seed=[1, 2]))  # W non-zero: losses differ
    objective, progress = NegativeSampling(2), Progress()
    weights = [[1.0, 1, 1, 1], [1.0, 1, 1, 0], [1.0, 0, 0, 0]]
    batches = [{**step_batch(tf.constant([0, 1, 2, 3]) + index, tf.constant([1, 2, 0, 1]), tf.constant(weight),
                             tf.constant([[4, 5]]), vocabulary_size=6),
                "words": tf.constant(4.0), "chunk": tf.constant(0, tf.int64), "batch": tf.constant(index, tf.int64)}
               for index, weight in enumerate(weights)]
    expected = [float(tf.reduce_sum(objective(model, batch) * batch["weights"])) for batch in batches]
    dataset = tf.data.Dataset.from_tensor_slices({key: tf.stack([batch[key] for batch in batches]) for key in batches[0]})
    strategy = tf.distribute.get_strategy()  # one process: the one-replica case of the step runner
    run = make_step_runner(strategy, make_train_step(model, objective, BatchSGD()), progress,
                           lambda words: tf.constant(0.0), ReplicaExchange(strategy, Collectives(1), None), 1)

    trained = run([iter(dataset)], 50, False)

    # Three steps, not 50: the iterator ran out. The last loss is the last batch's (its one pair); the sum is
    # every pair's loss (4 + 3 + 1 = 8 pairs), so sum / pairs is the epoch's mean loss per pair.
    assert (trained.steps, trained.pairs, trained.diverged, trained.epoch_over) == (3, 8.0, False, True)
    assert trained.last_loss == pytest.approx(expected[2], rel=1e-5)
    assert trained.loss_sum == pytest.approx(sum(expected), rel=1e-5)


def test_epoch_totals_leave_out_what_this_run_did_not_measure():
    totals = EpochTotals()
    totals.start(words_done=1000.0)
    # A run resumed exactly at an epoch's end trains nothing in it: no mean loss, and no words/s of 0.
    assert totals.summary(words_done=1000.0) == {} and totals.last_loss is None
    totals.add(2, last_loss=3.0, loss_sum=40.0, pairs=10.0)
    totals.add(0, last_loss=float("nan"), loss_sum=0.0, pairs=0.0)  # a call that found the epoch over
    figures = totals.summary(words_done=1500.0)
    assert figures["epoch/mean_loss"] == 4.0 and figures["epoch/words_per_second"] > 0 and totals.last_loss == 3.0


def test_the_epoch_line_shows_the_loss_speed_and_scores():
    figures = {"epoch/mean_loss": 2.83127, "epoch/words_per_second": 402113.4, "eval/analogy": 0.1234,
               "eval/wordsim353": 0.50123, "epoch/evaluation_seconds": 0.42, "vectors/random_pair_cosine": 0.2}
    assert epoch_figures_text(figures) == (
        "mean loss 2.8313, 402,113 words/s; analogy 0.1234, wordsim353 0.5012 (scored in 0.4 s)")


# --- Scores of E, and whether it has learned yet ---


def test_evaluation_scores_e_as_evaluate_py_does_and_leaves_out_undefined_scores(tmp_path):
    config = Config()
    config.training.eval_analogies = str(write(tmp_path / "questions.txt", ": s", "king queen cat dog",
                                               "king queen cat unicorn"))
    config.training.eval_similarity = [str(write(tmp_path / "pairs.tsv", "king\tqueen\t9", "king\tcat\t1")),
                                       str(write(tmp_path / "unknown.tsv", "unicorn\tdragon\t5"))]
    embeddings = np.zeros((19, 2), np.float32)
    # king and queen point one way, cat and dog the other: queen - king + cat = cat, and the question words set
    # aside, dog (cosine 1) is the nearest: one right of one answerable question.
    embeddings[[7, 8]], embeddings[[4, 5]] = [1.0, 0.1], [-0.1, 1.0]
    embeddings[[0, 1, 2, 3, 6] + list(range(9, 19))] = [0.0, -1.0]
    scores = EpochEvaluation(config, TOPIC_VOCABULARY).scores(tf.constant(embeddings))
    # pairs.tsv: cos(king, queen) = 1 > cos(king, cat) = 0, as the human scores 9 > 1: Spearman 1 over two pairs.
    # unknown.tsv has no pair in the vocabulary: its correlation is undefined and is not logged.
    assert scores["eval/analogy"] == 1.0 and scores["eval/pairs"] == pytest.approx(1.0)
    assert "eval/unknown" not in scores and scores["epoch/evaluation_seconds"] >= 0


def test_random_pairs_are_distinct_frequent_words_and_the_same_every_time():
    pairs = random_pairs(5000)
    assert pairs.shape == (2000, 2) and (pairs[:, 0] != pairs[:, 1]).all() and pairs.max() < 1000
    np.testing.assert_array_equal(pairs, random_pairs(5000))
    assert random_pairs(1).shape == (0, 2)


def test_vectors_sharing_one_direction_are_called_unlearned():
    rng = np.random.default_rng(0)
    pairs = random_pairs(300)
    # cos((1, 0), (1, 1)) = 1 / sqrt 2, by hand.
    assert mean_cosine(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[0, 1]])) == pytest.approx(math.sqrt(0.5))
    # Random directions: a mean cosine near 0. One shared direction plus a little noise: near 1.
    spread = mean_cosine(rng.normal(size=(300, 50)), pairs)
    shared = mean_cosine(np.ones((300, 50)) + 0.1 * rng.normal(size=(300, 50)), pairs)
    assert abs(spread) < 0.05 and shared > UNLEARNED_COSINE
    assert unlearned_hint(spread) == "" and unlearned_hint(float("nan")) == ""
    assert unlearned_hint(shared).startswith("note: the vectors have not learned yet") and "--epochs" in unlearned_hint(
        shared)


# --- Probe words ---


def test_probe_words_are_found_as_given_or_standardised_and_the_missing_ones_listed():
    assert chosen_probe_words(TOPIC_VOCABULARY, ["King", "queen", "horse"]) == (["king", "queen"], ["horse"], "")


def test_frequent_words_stand_in_when_no_probe_word_is_in_the_vocabulary():
    words, missing, note = chosen_probe_words(TOPIC_VOCABULARY, ["horse", "water"])
    # Four words spread over the 19: ids (2i + 1) * 19 // 8 for i = 0..3, that is 2, 7, 11 and 16.
    assert words == ["and", "king", "kingdom", "sit"] and missing == []
    assert note == ("none of the probe words (horse, water) is in the vocabulary: showing the neighbours of frequent "
                    "words instead (and, king, kingdom, sit); choose others with --probe-words")


# --- The best epoch, and stopping when the score stops improving ---


def best_checkpoint(directory, score: str, early_stop: int = 0) -> tuple[BestCheckpoint, SkipGram]:
    config = Config()
    config.training.keep_best, config.training.early_stop = score, early_stop
    model = SkipGram(4, 2, seed=1)
    checkpoint = training_checkpoint(model, BatchSGD(), Progress())
    return BestCheckpoint(config.training, checkpoint, directory), model


def test_the_best_checkpoint_follows_its_score_and_early_stop_counts_epochs_without_a_better_one(tmp_path):
    best, model = best_checkpoint(tmp_path, "eval/analogy", early_stop=2)
    lines = []
    assert not best.after_epoch(1, 10, {"eval/analogy": 0.2}, lines.append)
    model.embeddings.assign(tf.ones([4, 2]))  # E at epoch 2, the best: the one kept
    assert not best.after_epoch(2, 20, {"eval/analogy": 0.3}, lines.append)
    model.embeddings.assign(tf.zeros([4, 2]))
    assert not best.after_epoch(3, 30, {"eval/analogy": 0.3}, lines.append)  # equal is not better
    assert lines == []
    assert best.after_epoch(4, 40, {}, lines.append)  # no score (nothing answerable) is not better either
    assert lines == [(f"stopping early: eval/analogy has not improved for 2 epochs (--early-stop 2); the best, 0.3000 "
                      f"after epoch 2, is kept in {tmp_path} (export it with export.py --checkpoint best)")]
    assert read_best_score(tmp_path).__dict__ == {"score": "eval/analogy", "value": 0.3, "epoch": 2, "step": 20}
    np.testing.assert_array_equal(tf.train.load_variable(tf.train.latest_checkpoint(str(tmp_path)),
                                                         "E/.ATTRIBUTES/VARIABLE_VALUE"), np.ones([4, 2]))
    # A resumed run reads the best back: after 4 epochs it trains no further, unless --early-stop allows more.
    again, _ = best_checkpoint(tmp_path, "eval/analogy", early_stop=2)
    assert again.epochs_to_train(4, 10, lines.append) == 4 and "not training further" in lines[-1]
    assert best_checkpoint(tmp_path, "eval/analogy", early_stop=3)[0].epochs_to_train(4, 10, lines.append) == 10


def test_a_lower_mean_loss_is_better_and_another_score_starts_afresh(tmp_path):
    best, _ = best_checkpoint(tmp_path, "epoch/mean_loss")
    best.after_epoch(1, 10, {"epoch/mean_loss": 3.0})
    best.after_epoch(2, 20, {"epoch/mean_loss": 3.5})
    best.after_epoch(3, 30, {"epoch/mean_loss": float("nan")})
    assert read_best_score(tmp_path).epoch == 1
    assert best_checkpoint(tmp_path, "eval/analogy")[0].best is None


def test_keep_best_is_refused_on_several_workers(tmp_path):
    config = Config()
    config.training.eval_analogies, config.training.keep_best = "questions.txt", "eval/analogy"
    distribution = Distribution(tf.distribute.get_strategy(), worker=0, workers=2)
    with pytest.raises(UserError, match="not available with several workers"):
        train(config, ModelDirectory(tmp_path / "model"), distribution)
    assert not (tmp_path / "model").exists()


# --- As a user runs it ---


@pytest.mark.slow
def test_early_stop_ends_the_run_keeps_the_best_epoch_and_export_and_evaluate_read_it(tiny_corpus, tmp_path):
    questions = write(tmp_path / "questions.txt", ": s", "king queen cat dog", "king queen dog cat",
                      "cat dog king queen", "queen king dog cat")
    model_dir = tmp_path / "model"
    # A learning rate so small that E does not change what the analogies find: the score never improves after
    # epoch 1, so --early-stop 2 ends the run after epoch 3 of 6.
    flags = tiny_flags(tiny_corpus, model_dir, "--epochs", "6", "--learning-rate", "1e-9", "--eval-analogies",
                       str(questions), "--keep-best", "eval/analogy", "--early-stop", "2", "--probe-neighbours", "0")
    # A --max-steps that is never reached: early stopping ended the run, so it is finished and no note blames
    # --max-steps (issue 17's note and metrics file).
    metrics_path = tmp_path / "metrics.json"
    result = run_script("train.py", *flags, "--max-steps", "1000", "--metrics-file", str(metrics_path))
    assert result.returncode == 0, result.stderr
    assert "stopping early: eval/analogy has not improved for 2 epochs (--early-stop 2)" in result.stdout
    assert "stopped it in epoch" not in result.stdout and json.loads(metrics_path.read_text())["finished"] is True
    assert [line.split(" done")[0] for line in result.stdout.splitlines() if " done at step " in line] == [
        "epoch 1/6", "epoch 2/6", "epoch 3/6"]
    assert "king: " not in result.stdout  # --probe-neighbours 0 lists none
    best = json.loads((model_dir / "best" / "best.json").read_text())
    assert (best["score"], best["epoch"]) == ("eval/analogy", 1)

    exported = run_script("export.py", "--model-dir", str(model_dir), "--export-dir", str(tmp_path / "exports"),
                          "--checkpoint", "best", "--format", "word2vec")
    assert exported.returncode == 0, exported.stderr
    assert f"the best epoch's checkpoint, step {best['step']}" in exported.stdout
    assert (tmp_path / "exports" / str(best["step"]) / "word2vec.txt").exists()
    scored = run_script("evaluate.py", "--model-dir", str(model_dir), "--checkpoint", "best", "--analogies",
                        str(questions), "--json", str(tmp_path / "best.json"))
    assert scored.returncode == 0, scored.stderr
    assert json.loads((tmp_path / "best.json").read_text())["analogies"]["accuracy"] == pytest.approx(best["value"])

    # The same command again trains no further, and says why.
    again = run_script("train.py", *flags)
    assert again.returncode == 0, again.stderr
    assert "not training further: eval/analogy has not improved for 2 epochs" in again.stdout
    assert "trained 0 steps" in again.stdout


def test_a_run_that_has_not_learned_says_so_with_the_stand_in_probe_words(tiny_corpus, tmp_path):
    # One epoch at dimension 50: every vector moves along W's shared direction first (random pairs of words at a
    # cosine of about 0.99), so the neighbours say nothing yet.
    result = run_script("train.py", *tiny_flags(tiny_corpus, tmp_path / "model", "--dim", "50", "--sample", "0",
                                                "--probe-words", "horse", "unicorn"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "none of the probe words (horse, unicorn) is in the vocabulary" in result.stdout
    assert [line.split(":")[0] for line in lines if line.split(":")[0] in TOPIC_WORDS] == ["and", "king", "kingdom",
                                                                                          "sit"]
    assert lines[-1].startswith("note: the vectors have not learned yet: two random frequent words have a cosine of")
