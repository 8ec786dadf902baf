"""Continuing a trained model on new text (--update-vocab, --keep-vocab) and starting one from pretrained vectors
(--init-vectors): the rules on tiny inputs in-process, then real runs on a corpus small enough to learn in seconds."""

import collections
import copy
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from bad_input_cases import snapshot
from conftest import ROOT, TOPIC_LINES, UPDATE_LINES, run_script

from config import Config, Round
from data_pipeline.sources import mixed_lines, sampled_lines
from data_pipeline.vocabulary import Vocabulary, updated_vocabulary
from errors import UserError
from training.continuation import grown_checkpoint, training_state
from training.model_directory import ModelDirectory, resolved_config
from training.preflight import settled_corpus_files
from training.rounds import (
    CHECKPOINT_STATE,
    COMMITTED,
    KILL_AT_VARIABLE,
    OBSOLETE,
    STAGING,
    finish_committed_update,
    same_text,
)
from training.tensorboard import projected_ids, rounds_markdown

E_KEY, W_KEY, BIAS_KEY = (f"{name}/.ATTRIBUTES/VARIABLE_VALUE" for name in ("E", "W", "W_bias"))
STEP_KEY = "progress/step/.ATTRIBUTES/VARIABLE_VALUE"


def test_an_updated_vocabulary_merges_counts_and_appends_new_words_by_count():
    vocabulary = Vocabulary(("the", "king", "queen"), (10, 4, 3))
    new_text = collections.Counter({b"the": 5, b"prince": 3, b"king": 1, b"moat": 1, b"castle": 3})
    updated = updated_vocabulary(vocabulary, new_text, min_count=2)
    # Old words keep their ids with merged counts (10 + 5, 4 + 1, 3 + 0); castle and prince (3 each, alphabetical
    # on the tie) reach min-count 2, moat (1) does not. The new text's words in the vocabulary: 5 + 1 + 3 + 3 = 12.
    assert updated.vocabulary == Vocabulary(("the", "king", "queen", "castle", "prince"), (15, 5, 3, 3, 3))
    assert (updated.words_added, updated.corpus_words) == (2, 12)
    capped = updated_vocabulary(vocabulary, new_text, min_count=2, max_vocab=4)
    assert capped.vocabulary.words == ("the", "king", "queen", "castle") and capped.words_added == 1
    kept = updated_vocabulary(vocabulary, new_text, min_count=2, add_words=False)
    assert kept.vocabulary == Vocabulary(("the", "king", "queen"), (15, 5, 3)) and kept.corpus_words == 6


def test_the_projector_shows_the_words_a_round_added_then_the_most_frequent():
    vocabulary = Vocabulary(("a", "b", "c", "new1", "new2"), (5, 4, 3, 1, 2))
    # Three rows: both new words (new2, count 2, before new1), then the most frequent other word, "a".
    np.testing.assert_array_equal(projected_ids(vocabulary, 3, newest=2), [0, 3, 4])
    np.testing.assert_array_equal(projected_ids(vocabulary, 1, newest=2), [4])
    # A first round's vocabulary is sorted by count: its first rows.
    np.testing.assert_array_equal(projected_ids(Vocabulary(("a", "b", "c"), (5, 4, 3)), 2), [0, 1])


def saved_config(corpus: list[str]) -> Config:
    config = Config()
    config.data.corpus = corpus
    config.training.rounds = [Round(corpus=corpus, epochs=5)]
    return config


def test_another_corpus_needs_a_flag_that_says_what_to_do_with_its_words(tmp_path):
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(f"the words of {name}\n")
    saved = saved_config([str(tmp_path / "a.txt")])
    settled_corpus_files(saved.data)  # As the first run records its corpus files.
    other, explicit = Config(), {("data", "corpus")}
    other.data.corpus = [str(tmp_path / "b.txt")]
    with pytest.raises(UserError, match=r"the corpus is not the one this run trained on: .*b.txt is new; .*add "
                                        r"--update-vocab to continue training on it and add its new words, or "
                                        r"--keep-vocab to continue with the vocabulary unchanged"):
        settled_corpus_files(resolved_config(copy.deepcopy(saved), other, explicit).data)
    other.data.update_vocab = True
    config = resolved_config(saved, other, explicit | {("data", "update_vocab")})
    assert settled_corpus_files(config.data) == [str(tmp_path / "b.txt")]
    assert config.data.corpus == [str(tmp_path / "b.txt")] and config.data.update_vocab
    assert config.data.corpus_files[0]["path"] == str(tmp_path / "b.txt")
    assert config.training.learning_rate == config.training.update_learning_rate
    # The flag is for one run: the saved config it leaves behind does not start another round by itself.
    assert not resolved_config(config, Config(), set()).data.update_vocab


def test_replayed_lines_are_a_seeded_share_in_order_and_the_mix_spreads_them_through_the_new_text():
    earlier = tf.data.Dataset.from_tensor_slices([f"old {index}" for index in range(4000)])
    sample = [line.numpy().decode() for line in sampled_lines(earlier, 0.25, (1, 2))]
    # About a quarter (binomial: 1,000 +- 27), in the text's order, the same on every pass; another seed, others.
    assert 900 < len(sample) < 1100 and sample == sorted(sample, key=lambda line: int(line.split()[1]))
    assert sample == [line.numpy().decode() for line in sampled_lines(earlier, 0.25, (1, 2))]
    assert sample != [line.numpy().decode() for line in sampled_lines(earlier, 0.25, (1, 3))]
    assert not list(sampled_lines(earlier, 0.0, (1, 2)))
    new = tf.data.Dataset.from_tensor_slices([f"new {index}" for index in range(3000)])
    share = len(sample) / (3000 + len(sample))
    mixed = [line.numpy().decode() for line in mixed_lines(new, tf.data.Dataset.from_tensor_slices(sample), share, 7)]
    # Every line of both once, each text in its own order, and the same order again (a resumed run skips the
    # chunks it trained on, so it must see the same lines).
    assert sorted(mixed) == sorted(sample + [f"new {index}" for index in range(3000)])
    assert [line for line in mixed if line.startswith("new")] == [f"new {index}" for index in range(3000)]
    assert mixed == [line.numpy().decode() for line in mixed_lines(
        new, tf.data.Dataset.from_tensor_slices(sample), share, 7)]
    # Spread through the new text: its first half holds about half of the replayed lines, not all or none.
    first_half = sum(line.startswith("old") for line in mixed[:len(mixed) // 2])
    assert 0.4 * len(sample) < first_half < 0.6 * len(sample)


@pytest.mark.parametrize("fraction", [0.5, 0.6, 0.7, 0.75, 1.0])
def test_every_share_the_docs_name_replays_about_that_share_of_the_lines(fraction):
    earlier = tf.data.Dataset.from_tensor_slices([f"old {index}" for index in range(4000)])
    kept = len(list(sampled_lines(earlier, fraction, (1, 2))))
    # Binomial: 4,000 x fraction, within four standard deviations (at most 128 lines); 1.0 keeps every line.
    assert abs(kept - 4000 * fraction) <= 4 * (4000 * fraction * (1 - fraction)) ** 0.5


def test_the_rounds_table_says_which_round_replayed_earlier_text():
    table = rounds_markdown([Round(corpus=["a.txt"], epochs=5),
                             Round(kind="update-vocab", corpus=["b.txt"], epochs=5, replay=0.5, replay_words=10)])
    assert "| 1 | new | a.txt |" in table and "| 2 | update-vocab | b.txt + 0.5 of the earlier rounds' lines" in table


def test_a_round_is_its_files_content_so_a_file_overwritten_in_place_is_new_text(tmp_path):
    daily = tmp_path / "today.txt"
    daily.write_text("the news of monday\n")
    config = saved_config([str(daily)])
    settled_corpus_files(config.data)
    current = Round(corpus=list(config.data.corpus), corpus_files=list(config.data.corpus_files))
    config.data.update_vocab = True
    assert same_text(current, config.data)  # The same command again: it resumes the round.
    moved = tmp_path / "archive" / "monday.txt"
    moved.parent.mkdir()
    shutil.copy(daily, moved)
    config.data.corpus = [str(moved)]
    settled_corpus_files(config.data)
    assert same_text(current, config.data)  # The same text elsewhere.
    daily.write_text("the news of tuesday\n")
    config.data.corpus = [str(daily)]
    settled_corpus_files(config.data)
    assert not same_text(current, config.data)  # The same name, another day's text: a new round.


def test_a_committed_journal_is_finished_by_whoever_comes_first_and_only_once(tmp_path):
    directory = ModelDirectory(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    for name, content in [("config.json", "old config"), ("vocab.tsv", "old vocabulary"),
                          ("checkpoints/checkpoint", "old list"), ("checkpoints/ckpt-8.index", "old"),
                          ("checkpoints/ckpt-8.data-00000-of-00001", "old")]:
        (tmp_path / name).write_text(content)
    journal = tmp_path / COMMITTED
    journal.mkdir()
    for name, content in [("config.json", "new config"), ("vocab.tsv", "new vocabulary"), (CHECKPOINT_STATE, "new list"),
                          ("ckpt-8-round2.index", "new"), ("ckpt-8-round2.data-00000-of-00001", "new"),
                          (OBSOLETE, "ckpt-8\n")]:
        (journal / name).write_text(content)
    # An earlier pass, killed midway, had moved the new vocabulary into place already.
    (journal / "vocab.tsv").replace(tmp_path / "vocab.tsv")

    assert finish_committed_update(directory)
    assert not finish_committed_update(directory)
    assert {str(path.relative_to(tmp_path)): path.read_text() for path in tmp_path.rglob("*") if path.is_file()} == {
        "config.json": "new config", "vocab.tsv": "new vocabulary", "checkpoints/checkpoint": "new list",
        "checkpoints/ckpt-8-round2.index": "new", "checkpoints/ckpt-8-round2.data-00000-of-00001": "new"}


def test_the_grown_network_keeps_every_trained_row_and_starts_new_ones_as_a_fresh_run(tmp_path):
    config = Config()
    config.model.embedding_dim, config.training.lock_init_vectors = 4, True
    trained = training_state(config, 3)
    trained.model.embeddings.assign(np.arange(12, dtype=np.float32).reshape(3, 4))
    trained.model.context_weights.assign(-np.arange(12, dtype=np.float32).reshape(3, 4))
    trained.model.context_bias.assign([1.0, 2.0, 3.0])
    trained.lock.assign([0.0, 1.0, 0.0])
    trained.progress.step.assign(40)
    trained.progress.words_done.assign(1234.0)
    trained.progress.epoch.assign(5)
    path = trained.checkpoint.save(str(tmp_path / "ckpt"))  # As CheckpointManager saves, with a save counter.

    grown = grown_checkpoint(config, path, 3, 5, round_number=2).write(str(tmp_path / "ckpt-40-round2"))
    values = {name: tf.train.load_variable(grown, f"{name}/.ATTRIBUTES/VARIABLE_VALUE")
              for name in ("E", "W", "W_bias", "E_lock", "progress/step", "progress/words_done", "progress/epoch")}
    np.testing.assert_array_equal(values["E"][:3], np.arange(12).reshape(3, 4))
    # New rows of E: uniform in +-0.5 / D = +-0.125, not zero; new rows of W and its bias zero, of the lock one.
    assert np.all(np.abs(values["E"][3:]) <= 0.125) and np.all(values["E"][3:] != 0)
    np.testing.assert_array_equal(values["W"], np.concatenate([-np.arange(12).reshape(3, 4), np.zeros((2, 4))]))
    np.testing.assert_array_equal(values["W_bias"], [1, 2, 3, 0, 0])
    np.testing.assert_array_equal(values["E_lock"], [0, 1, 0, 1, 1])
    # The step count runs on; the new round's position and words done start from zero.
    assert (values["progress/step"], values["progress/words_done"], values["progress/epoch"]) == (40, 0.0, 0)


# Real runs. The first corpus has two topics (royalty, pets); the update's text brings "prince" into the royal
# lines and "puppy" into the pet ones (conftest.UPDATE_LINES).
ROYAL = {"king", "queen", "the", "and", "rule", "old", "kingdom", "sit", "in", "royal", "castle", "prince"}
PETS = {"a", "cat", "dog", "puppy", "and", "play", "in", "green", "garden", "sleep", "warm"}
FLAGS = ["--dim", "8", "--min-count", "1", "--batch-size", "16", "--sample", "0", "--epochs", "3",
         "--checkpoint-every", "50", "--log-every", "50"]


def write_corpus(path: pathlib.Path, lines: list[str]) -> pathlib.Path:
    path.write_text("\n".join(lines * 25) + "\n", encoding="utf-8")
    return path


def train(*args: str) -> str:
    result = run_script("train.py", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def words(model_dir: pathlib.Path) -> list[str]:
    return [row.split("\t")[0] for row in (model_dir / "vocab.tsv").read_text().splitlines()[1:]]


def latest(model_dir: pathlib.Path) -> str:
    return tf.train.latest_checkpoint(str(model_dir / "checkpoints"))


def nearest(model_dir: pathlib.Path, word: str, count: int) -> list[str]:
    embeddings = tf.train.load_variable(latest(model_dir), E_KEY)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    vocabulary = words(model_dir)
    order = np.argsort(-unit @ unit[vocabulary.index(word)])
    return [vocabulary[index] for index in order[1:count + 1]]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> tuple[pathlib.Path, pathlib.Path]:
    root = tmp_path_factory.mktemp("corpora")
    return write_corpus(root / "a.txt", TOPIC_LINES), write_corpus(root / "b.txt", UPDATE_LINES)


@pytest.fixture(scope="module")
def trained_on_a(corpora, tmp_path_factory) -> pathlib.Path:
    model_dir = tmp_path_factory.mktemp("trained") / "model"
    train("--corpus", str(corpora[0]), "--model-dir", str(model_dir), *FLAGS)
    return model_dir


@pytest.fixture(scope="module")
def updated_with_b(corpora, trained_on_a, tmp_path_factory) -> tuple[pathlib.Path, str]:
    model_dir = tmp_path_factory.mktemp("updated") / "model"
    shutil.copytree(trained_on_a, model_dir)
    return model_dir, train("--corpus", str(corpora[1]), "--model-dir", str(model_dir), "--update-vocab")


def test_an_update_appends_the_new_words_and_they_learn_the_company_they_keep(trained_on_a, updated_with_b):
    model_dir, stdout = updated_with_b
    assert "round 2 (update-vocab): 2 words added (19 -> 21)" in stdout
    # Every old word keeps its id; the new ones follow.
    assert words(model_dir)[:19] == words(trained_on_a) and sorted(words(model_dir)[19:]) == ["prince", "puppy"]
    # Each new word ends up among the words of the one topic it shares lines with; at random, a word's three
    # nearest would hold a word of the other topic (only "and", "in" are in both) nine times out of ten.
    assert set(nearest(model_dir, "prince", 3)) <= ROYAL - PETS, nearest(model_dir, "prince", 5)
    assert set(nearest(model_dir, "puppy", 3)) <= PETS - ROYAL, nearest(model_dir, "puppy", 5)


def test_an_update_continues_the_step_count_and_records_its_round(trained_on_a, updated_with_b, corpora):
    model_dir, _ = updated_with_b
    first_round_steps = int(tf.train.load_variable(latest(trained_on_a), STEP_KEY))
    config = json.loads((model_dir / "config.json").read_text())
    first, second = config["training"]["rounds"]
    assert (first["kind"], first["corpus"], first["start_step"], first["end_step"]) == (
        "new", [str(corpora[0])], 0, first_round_steps)
    assert (second["kind"], second["corpus"], second["words_added"], second["vocabulary_size"]) == (
        "update-vocab", [str(corpora[1])], 2, 21)
    # 100 lines, 975 words, all in the vocabulary now; the update's default learning rate.
    assert second["corpus_words"] == 975 and second["learning_rate"] == Config().training.update_learning_rate
    assert second["start_step"] == first_round_steps < second["end_step"] == int(
        tf.train.load_variable(latest(model_dir), STEP_KEY))
    assert config["data"]["corpus"] == [str(corpora[1])] and config["model"]["vocabulary_size"] == 21
    assert second["started"] and second["finished"]


def test_after_an_update_export_tensorboard_and_the_checkpoint_agree(updated_with_b, tmp_path):
    model_dir, _ = updated_with_b
    assert tf.train.load_variable(latest(model_dir), E_KEY).shape == (21, 8)
    assert tf.train.load_variable(latest(model_dir), W_KEY).shape == (21, 8)
    assert tf.train.load_variable(latest(model_dir), BIAS_KEY).shape == (21,)
    result = run_script("export.py", "--model-dir", str(model_dir), "--export-dir", str(tmp_path / "export"),
                        "--format", "word2vec")
    assert result.returncode == 0, result.stderr
    exported = next((tmp_path / "export").glob("*/word2vec.txt")).read_text().splitlines()
    assert exported[0] == "21 8" and {line.split()[0] for line in exported[1:]} >= {"prince", "puppy"}
    # The projector shows the new words, and the loss continues along the same step axis after the update.
    metadata = (model_dir / "logs" / "train" / "metadata.tsv").read_text().splitlines()
    assert {"prince\t50", "puppy\t50"} <= set(metadata)
    steps = sorted(event.step for path in (model_dir / "logs" / "train").glob("events.out.tfevents.*")
                   for event in tf.compat.v1.train.summary_iterator(str(path))
                   if any(value.tag == "loss" for value in event.summary.value))
    rounds = json.loads((model_dir / "config.json").read_text())["training"]["rounds"]
    assert steps == sorted(set(steps)) and steps[0] < rounds[1]["start_step"] < steps[-1]


def test_keep_vocab_trains_on_the_new_text_without_its_new_words(corpora, trained_on_a, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(trained_on_a, model_dir)
    train("--corpus", str(corpora[1]), "--model-dir", str(model_dir), "--keep-vocab")
    assert words(model_dir) == words(trained_on_a)
    counts = dict(row.split("\t") for row in (model_dir / "vocab.tsv").read_text().splitlines()[1:])
    # "king" is in two of the first corpus's four lines and in one of the new text's (25 copies each): 50 + 25.
    assert counts["king"] == "75" and "prince" not in counts
    second = json.loads((model_dir / "config.json").read_text())["training"]["rounds"][1]
    # The new text's words in the vocabulary: 975, less the 100 of prince and puppy.
    assert (second["kind"], second["words_added"], second["corpus_words"]) == ("keep-vocab", 0, 875)
    assert not np.array_equal(tf.train.load_variable(latest(model_dir), E_KEY),
                              tf.train.load_variable(latest(trained_on_a), E_KEY))


@pytest.mark.parametrize("lock", [False, True])
def test_init_vectors_start_the_rows_they_hold_and_lock_keeps_them(corpora, updated_with_b, tmp_path, lock):
    vectors = tmp_path / "vectors.bin"
    export = run_script("export.py", "--model-dir", str(updated_with_b[0]), "--export-dir", str(tmp_path / "export"),
                        "--format", "word2vec-binary")
    assert export.returncode == 0, export.stderr
    next((tmp_path / "export").glob("*/word2vec.bin")).rename(vectors)
    # A corpus with one more word ("moat") than the file holds.
    corpus = write_corpus(tmp_path / "c.txt", [*UPDATE_LINES, "the moat and the castle"])
    model_dir = tmp_path / "model"
    # No checkpoint but the first and the last, so that the first (step 0: where training starts) is kept.
    stdout = train("--corpus", str(corpus), "--model-dir", str(model_dir), *FLAGS, "--checkpoint-every", "100000",
                   "--init-vectors", str(vectors), *(["--lock-init-vectors"] if lock else []))
    assert f"--init-vectors {vectors}: 21 of the vocabulary's 22 words found (95.5%, " in stdout

    from exporting.interchange import read_word2vec

    pretrained = dict(zip(*astuple(read_word2vec(vectors))))
    vocabulary = words(model_dir)
    found = [index for index, word in enumerate(vocabulary) if word in pretrained]
    start = tf.train.load_variable(str(model_dir / "checkpoints" / "ckpt-0"), E_KEY)
    end = tf.train.load_variable(latest(model_dir), E_KEY)
    np.testing.assert_array_equal(start[found], [pretrained[vocabulary[index]] for index in found])
    moat = vocabulary.index("moat")
    assert np.all(np.abs(start[moat]) <= 0.5 / 8) and not np.array_equal(start[moat], end[moat])
    if lock:
        np.testing.assert_array_equal(end[found], start[found])
    else:
        assert not np.allclose(end[found], start[found])


def test_replay_keeps_training_the_words_only_earlier_text_holds(corpora, trained_on_a, tmp_path):
    # The update's text is the royal lines only: the pet words ("cat", "garden", ...) are in the first corpus
    # alone. Without --replay no line of the update holds them, so their rows of E never move; with --replay 0.5
    # half of the first corpus's lines are trained again beside the new text, and they do.
    royal = write_corpus(tmp_path / "royal.txt", UPDATE_LINES[:2])
    plain, replayed = tmp_path / "plain", tmp_path / "replayed"
    for model_dir, extra in ((plain, []), (replayed, ["--replay", "0.5"])):
        shutil.copytree(trained_on_a, model_dir)
        train("--corpus", str(royal), "--model-dir", str(model_dir), "--update-vocab",
              "--metrics-file", str(model_dir / "metrics.json"), *extra)
    vocabulary = words(trained_on_a)
    pets = [vocabulary.index(word) for word in PETS - ROYAL - {"puppy"}]
    royals = [vocabulary.index(word) for word in ROYAL - PETS - {"prince"}]
    before = tf.train.load_variable(latest(trained_on_a), E_KEY)
    after = {name: tf.train.load_variable(latest(model_dir), E_KEY) for name, model_dir in
             (("plain", plain), ("replayed", replayed))}
    np.testing.assert_array_equal(after["plain"][pets], before[pets])
    assert np.all(np.any(after["replayed"][pets] != before[pets], axis=1))
    assert np.all(np.any(after["plain"][royals] != before[royals], axis=1))

    rounds = {name: json.loads((model_dir / "config.json").read_text())["training"]["rounds"][1]
              for name, model_dir in (("plain", plain), ("replayed", replayed))}
    assert (rounds["plain"]["replay"], rounds["plain"]["replay_words"]) == (0.0, 0)
    # Half of the first corpus's 975 words, give or take the draw of its 100 lines; the new text is unchanged.
    assert rounds["replayed"]["replay"] == 0.5 and 300 < rounds["replayed"]["replay_words"] < 675
    assert rounds["replayed"]["corpus_words"] == rounds["plain"]["corpus_words"]
    # They are trained on, not just counted: every epoch reads the new text's words and the replayed ones.
    metrics = json.loads((replayed / "metrics.json").read_text())
    assert metrics["words"] == 3 * (rounds["replayed"]["corpus_words"] + rounds["replayed"]["replay_words"])


def test_a_round_that_replays_resumes_with_its_own_share_and_needs_the_earlier_text(corpora, trained_on_a, tmp_path):
    royal = write_corpus(tmp_path / "royal.txt", UPDATE_LINES[:2])
    model_dir = tmp_path / "model"
    shutil.copytree(trained_on_a, model_dir)
    update = ["--corpus", str(royal), "--model-dir", str(model_dir), "--update-vocab"]
    train(*update, "--replay", "0.5", "--max-steps", "5")  # Stopped early: the round is unfinished.
    other_share = run_script("train.py", *update, "--replay", "0.25")
    assert other_share.returncode == 2 and other_share.stderr.strip().splitlines()[-1] == (
        "error: round 2 was started with --replay 0.5: resume it with that value or without --replay")
    # The earlier text moved away: resuming cannot replay it, and says so before anything changes.
    before = snapshot(model_dir)
    moved = corpora[0].rename(tmp_path / "elsewhere.txt")
    try:
        gone = run_script("train.py", *update)
    finally:
        moved.rename(corpora[0])
    assert gone.returncode == 2 and "but round 1's cannot be read (corpus path" in gone.stderr
    assert snapshot(model_dir) == before
    stdout = train(*update)  # Without the flag: the round resumes with the share it started with, and finishes.
    assert "resuming from" in stdout
    second = json.loads((model_dir / "config.json").read_text())["training"]["rounds"][1]
    assert second["replay"] == 0.5 and second["replay_words"] > 0 and second["end_step"] > 0


def astuple(read) -> tuple:
    return read.words, read.vectors


def run_update(model_dir: pathlib.Path, corpus: pathlib.Path, kill_at: str = "") -> subprocess.Popen:
    """The update as a user runs it; `kill_at` names a point where it SIGKILLs itself (training/rounds.py)."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", KILL_AT_VARIABLE: kill_at}
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), "--corpus", str(corpus), "--model-dir",
                             str(model_dir), "--update-vocab"], cwd=ROOT, env=environment, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def exported_words(model_dir: pathlib.Path, base: pathlib.Path) -> list[str]:
    """The words export.py serves from the model directory (it checks E, vocab.tsv and config.json agree)."""
    result = run_script("export.py", "--model-dir", str(model_dir), "--export-dir", str(base), "--format", "word2vec",
                        "--overwrite")
    assert result.returncode == 0, result.stderr
    return [line.split()[0] for line in next(base.glob("*/word2vec.txt")).read_text().splitlines()[1:]]


@pytest.mark.slow
def test_an_update_killed_at_any_moment_leaves_the_model_whole_and_resumes_to_the_same_vectors(
        corpora, trained_on_a, updated_with_b, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(trained_on_a, model_dir)
    before = snapshot(model_dir)

    # Killed while the grown checkpoint is being staged: the model is exactly as it was (the staging folder aside,
    # which nothing reads and the next run removes), and export serves the old words.
    assert run_update(model_dir, corpora[1], kill_at="staging").wait(timeout=300) == -signal.SIGKILL
    assert {path: content for path, content in snapshot(model_dir).items()
            if not path.startswith(STAGING)} == before
    assert exported_words(model_dir, tmp_path / "export") == words(trained_on_a)

    # Killed after the commit point, half-way through moving the round's files into place (vocab.tsv already
    # new, config.json still old): export finishes the move first, and serves the new words.
    assert run_update(model_dir, corpora[1], kill_at="moving").wait(timeout=300) == -signal.SIGKILL
    assert (model_dir / COMMITTED).is_dir() and not (model_dir / STAGING).exists()
    assert sorted(exported_words(model_dir, tmp_path / "export")) == sorted(words(updated_with_b[0]))
    assert not (model_dir / COMMITTED).exists()

    # The same command again resumes the round; SIGTERM stops it with a checkpoint, SIGKILL at a random moment
    # after the next one loses at most what followed it; run once more, it ends where the uninterrupted update did.
    for stop in (signal.SIGTERM, signal.SIGKILL):
        listed = latest(model_dir)
        process = run_update(model_dir, corpora[1])
        while latest(model_dir) == listed and process.poll() is None:
            time.sleep(0.01)
        time.sleep(random.Random(13).uniform(0.0, 0.5))
        process.send_signal(stop)
        assert process.wait(timeout=120) in (-signal.SIGKILL, 143), process.stderr.read()
    finished = run_update(model_dir, corpora[1])
    stdout, stderr = finished.communicate(timeout=300)
    assert finished.returncode == 0 and "resuming from" in stdout, stderr
    assert words(model_dir) == words(updated_with_b[0])
    np.testing.assert_allclose(tf.train.load_variable(latest(model_dir), E_KEY),
                               tf.train.load_variable(latest(updated_with_b[0]), E_KEY), atol=1e-6)
    rounds = json.loads((model_dir / "config.json").read_text())["training"]["rounds"]
    assert [record["kind"] for record in rounds] == ["new", "update-vocab"]
