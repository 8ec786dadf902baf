"""train.py end to end, as a user runs it: checkpoints that keep E, W and the optimizer, and resume."""

import json
import re

import numpy as np
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


def lift_row_bounds(model_dir) -> None:
    """What a user could do by hand: raise the per-row bounds in config.json until they bound nothing."""
    config = json.loads((model_dir / "config.json").read_text())
    config["training"].update(max_row_updates=1e30, max_noise_row_updates=1e30)
    (model_dir / "config.json").write_text(json.dumps(config))


def test_a_run_that_diverges_stops_in_one_line_and_saves_nothing_non_finite(tiny_corpus, tmp_path):
    # A finished run, then the bounds lifted and a rate 40,000 times the default: the values overflow within a few
    # steps. The run stops at the first non-finite step with exit code 3, writes no checkpoint, and the one it
    # leaves exports and resumes.
    model_dir = tmp_path / "model"
    assert run_script("train.py", *tiny_flags(tiny_corpus, model_dir)).returncode == 0
    before = sorted(path.name for path in (model_dir / "checkpoints").iterdir())
    lift_row_bounds(model_dir)
    result = run_script("train.py", *tiny_flags(tiny_corpus, model_dir), "--epochs", "30", "--learning-rate", "1000")
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert re.match(r"error: training diverged at step [\d,]+: the loss is (nan|inf)", result.stderr)
    assert "--learning-rate too high (1000 here" in result.stderr and "row bounds raised in config.json" in result.stderr
    assert "holds finite values" in result.stderr
    assert sorted(path.name for path in (model_dir / "checkpoints").iterdir()) == before
    for checkpoint in tf.train.get_checkpoint_state(str(model_dir / "checkpoints")).all_model_checkpoint_paths:
        for name in ("E", "W", "W_bias"):
            assert np.isfinite(tf.train.load_variable(checkpoint, f"{name}/.ATTRIBUTES/VARIABLE_VALUE")).all()

    exported = run_script("export.py", "--model-dir", str(model_dir), "--export-dir", str(tmp_path / "exports"))
    assert exported.returncode == 0, exported.stderr
    step = saved_step(model_dir)
    resumed = run_script("train.py", *tiny_flags(tiny_corpus, model_dir), "--epochs", "2", "--learning-rate", "0.025")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout and saved_step(model_dir) > step


def test_words_of_every_script_reach_the_vocabulary_whole_and_composed(tmp_path):
    # Hindi, Persian with its zero-width non-joiner, Thai, and café typed composed and decomposed.
    corpus = tmp_path / "scripts.txt"
    lines = ["हिन्दी भाषा सुंदर है", "می\u200cخواهم کتاب بخوانم", "ภาษาไทย ง่าย", "café noir", "cafe\u0301 au lait"]
    corpus.write_text("\n".join(lines * 10) + "\n", encoding="utf-8")
    result = run_script("train.py", "--corpus", str(corpus), "--model-dir", str(tmp_path / "model"), "--dim", "2",
                        "--min-count", "1", "--sample", "0", "--batch-size", "64", "--epochs", "1")
    assert result.returncode == 0, result.stderr
    counts = dict(row.split("\t") for row in (tmp_path / "model" / "vocab.tsv").read_text(encoding="utf-8").splitlines()[1:])
    assert {"हिन्दी", "भाषा", "सुंदर", "می\u200cخواهم", "ภาษาไทย", "ง่าย"} <= set(counts)
    assert counts["café"] == "20" and "cafe" not in counts
