"""train.py's bounded runs (--max-steps) and its machine-readable figures (--metrics-file), which the benchmark
reads instead of parsing the progress lines."""

import json

import pytest
import tensorflow as tf
from conftest import run_script, tiny_flags


def saved(model_dir, name: str) -> float:
    return float(tf.train.load_variable(tf.train.latest_checkpoint(str(model_dir / "checkpoints")),
                                        f"progress/{name}/.ATTRIBUTES/VARIABLE_VALUE"))


def test_max_steps_stops_the_run_there_and_a_later_run_continues(tiny_corpus, tmp_path):
    # Subsampling leaves the tiny corpus about three batches of 64 pairs an epoch: four steps end inside epoch 2.
    bounded = run_script("train.py",
                         *tiny_flags(tiny_corpus, tmp_path / "bounded", "--epochs", "3", "--max-steps", "4"))
    assert bounded.returncode == 0, bounded.stderr
    assert "trained 4 steps" in bounded.stdout and saved(tmp_path / "bounded", "step") == 4
    # The final line says that --max-steps ended the run, and how to go on.
    assert ("; --max-steps 4 stopped it in epoch 2 of 3: run again to continue (without --max-steps to finish)"
            in bounded.stdout)
    # Without the flag the next run resumes at step 5 and ends where an uninterrupted run ends.
    rest = run_script("train.py", *tiny_flags(tiny_corpus, tmp_path / "bounded", "--epochs", "3"))
    whole = run_script("train.py", *tiny_flags(tiny_corpus, tmp_path / "whole", "--epochs", "3"))
    assert rest.returncode == 0 and whole.returncode == 0, rest.stderr + whole.stderr
    assert "resuming from" in rest.stdout
    assert saved(tmp_path / "bounded", "step") == saved(tmp_path / "whole", "step") > 4
    assert "--max-steps" not in rest.stdout + whole.stdout  # Runs that finished say nothing of it.


def test_the_metrics_file_holds_this_runs_steps_words_and_training_seconds(tiny_corpus, tmp_path):
    model_dir, metrics_path = tmp_path / "model", tmp_path / "metrics.json"
    result = run_script("train.py", *tiny_flags(tiny_corpus, model_dir), "--metrics-file", str(metrics_path))
    assert result.returncode == 0, result.stderr
    metrics = json.loads(metrics_path.read_text())
    assert metrics["steps"] == saved(model_dir, "step")
    # One epoch reads every corpus word in the vocabulary once: 25 x the four topic lines (9 + 10 + 10 + 10 words),
    # a whole number (each batch counts a fraction of its chunk's words).
    assert metrics["words"] == 975 and isinstance(metrics["words"], int)
    assert metrics["finished"] is True
    assert metrics["training_seconds"] > 0
    assert metrics["words_per_second"] * metrics["training_seconds"] == pytest.approx(metrics["words"])
    assert (metrics["vocabulary_size"], metrics["embedding_dim"], metrics["batch_size"], metrics["loss"]) == (
        19, 2, 64, "negative")


def test_the_metrics_of_a_run_cut_short_by_max_steps_are_whole_words_and_not_finished(tiny_corpus, tmp_path):
    metrics_path = tmp_path / "metrics.json"
    result = run_script("train.py", *tiny_flags(tiny_corpus, tmp_path / "model", "--epochs", "3", "--max-steps", "2"),
                        "--metrics-file", str(metrics_path))
    assert result.returncode == 0, result.stderr
    metrics = json.loads(metrics_path.read_text())
    assert (metrics["steps"], metrics["finished"]) == (2, False)
    # Two batches of one chunk: their share of its words, rounded to a whole number.
    assert isinstance(metrics["words"], int) and metrics["words"] == round(saved(tmp_path / "model", "words_done"))


def test_a_negative_max_steps_is_refused(tiny_corpus, tmp_path):
    result = run_script("train.py", *tiny_flags(tiny_corpus, tmp_path / "model"), "--max-steps", "-1")
    assert result.returncode == 2 and "--max-steps must be 0" in result.stderr
    assert not (tmp_path / "model").exists()


def logged(model_dir, tag: str) -> list[tuple[int, float]]:
    """A scalar's (step, value) points in the run's TensorBoard event files, as TensorBoard reads them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(model_dir / "logs" / "train"), size_guidance={"tensors": 0})
    events.Reload()
    return [(event.step, float(tf.make_ndarray(event.tensor_proto))) for event in events.Tensors(tag)]


@pytest.mark.slow
def test_a_run_resumed_at_an_epoch_end_logs_no_zero_speed_and_counts_its_own_steps(tiny_corpus, tmp_path):
    whole = run_script("train.py", *tiny_flags(tiny_corpus, tmp_path / "one-epoch"))
    assert whole.returncode == 0, whole.stderr
    epoch_steps = int(saved(tmp_path / "one-epoch", "step"))
    # --max-steps stops on the first epoch's last step, before its end is logged: the next run starts there.
    model_dir = tmp_path / "model"
    bounded = run_script("train.py", *tiny_flags(tiny_corpus, model_dir, "--epochs", "2", "--max-steps",
                                                 str(epoch_steps)))
    assert bounded.returncode == 0, bounded.stderr
    rest = run_script("train.py", *tiny_flags(tiny_corpus, model_dir, "--epochs", "2"))
    assert rest.returncode == 0, rest.stderr
    total = int(saved(model_dir, "step"))
    assert f"trained {total - epoch_steps} steps (step {total} in all)" in rest.stdout
    assert [value for _, value in logged(model_dir, "epoch/number")] == [1.0, 2.0]
    # The resumed run trained no word of epoch 1: it logs no speed for it (it used to log 0.0), only epoch 2's.
    assert [step for step, _ in logged(model_dir, "epoch/words_per_second")] == [total]
    assert all(value > 0 for _, value in logged(model_dir, "epoch/words_per_second"))
    # Each run ended with a loss point: the first at its last step, the second at the end of epoch 2.
    assert [step for step, _ in logged(model_dir, "loss")] == [epoch_steps, total]
