"""train.py end to end, as a user runs it: checkpoints that keep E, W and the optimizer, and resume."""

import json

import tensorflow as tf
from conftest import run_script, tiny_flags


def checkpoint_variables(model_dir) -> dict[str, list[int]]:
    return dict(tf.train.list_variables(tf.train.latest_checkpoint(str(model_dir / "checkpoints"))))


def saved_step(model_dir) -> int:
    return int(tf.train.load_variable(tf.train.latest_checkpoint(str(model_dir / "checkpoints")),
                                      "progress/step/.ATTRIBUTES/VARIABLE_VALUE"))


def test_a_run_writes_config_vocabulary_and_a_checkpoint_with_e_and_w(tiny_corpus, tmp_path):
    model_dir = tmp_path / "model"
    result = run_script("train.py", *tiny_flags(tiny_corpus, model_dir))
    assert result.returncode == 0, result.stderr
    vocabulary = (model_dir / "vocab.tsv").read_text().splitlines()
    # The four topic lines use 19 distinct words: the king and queen rule old kingdom sit in royal castle
    # (11), a cat dog play green garden (6), sleep warm (2).
    assert vocabulary[0] == "word\tcount" and len(vocabulary) - 1 == 19
    assert json.loads((model_dir / "config.json").read_text())["model"] == {"embedding_dim": 2, "vocabulary_size": 19}
    variables = checkpoint_variables(model_dir)
    assert variables["E/.ATTRIBUTES/VARIABLE_VALUE"] == [19, 2]
    assert variables["W/.ATTRIBUTES/VARIABLE_VALUE"] == [19, 2]
    assert variables["W_bias/.ATTRIBUTES/VARIABLE_VALUE"] == [19]
    assert "optimizer/iterations/.ATTRIBUTES/VARIABLE_VALUE" in variables
    # The training checkpoint stays out of the TensorBoard log directory.
    assert not list((model_dir / "logs").rglob("ckpt-*"))
    # The run ends with the probe words' neighbours.
    assert "king: " in result.stdout


def test_rerunning_with_more_epochs_resumes_and_trains_further(tiny_corpus, tmp_path):
    model_dir = tmp_path / "model"
    assert run_script("train.py", *tiny_flags(tiny_corpus, model_dir)).returncode == 0
    one_epoch = saved_step(model_dir)
    again = run_script("train.py", *tiny_flags(tiny_corpus, model_dir), "--epochs", "2")
    assert again.returncode == 0, again.stderr
    assert "resuming from" in again.stdout
    # The second epoch has as many batches as the first (same corpus, same batch size, give or take the
    # pairs that subsampling and window draws add or remove).
    assert saved_step(model_dir) > 1.5 * one_epoch


def test_a_flag_that_contradicts_the_saved_run_is_refused(tiny_corpus, tmp_path):
    model_dir = tmp_path / "model"
    assert run_script("train.py", *tiny_flags(tiny_corpus, model_dir)).returncode == 0
    before = saved_step(model_dir)
    result = run_script("train.py", *tiny_flags(tiny_corpus, model_dir), "--dim", "3", "--epochs", "2")
    assert result.returncode == 2
    assert "embedding_dim=3 contradicts" in result.stderr and "Traceback" not in result.stderr
    assert saved_step(model_dir) == before
