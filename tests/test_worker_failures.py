"""Two real worker processes (TF_CONFIG on loopback ports) interrupted in every way a cluster is: a stop signal to
one worker, a worker killed, a worker that hangs with its connections open. Each time every other worker stops by
itself, and starting all workers again with the same command resumes from the chief's last checkpoint and ends
exactly where a run never interrupted ends."""

import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import TOPIC_LINES, start_worker

from benchmarks.train_runs import free_ports
from training.distributed import HEARTBEAT_TIMEOUT_SECONDS

# 100 lines of the two topics, every pair kept: about 37 steps of 2 x 64 pairs an epoch, so 20 epochs give
# ~740 steps, a few seconds of training in which to interrupt it. Replicas meet every 16 steps and Python
# wakes at least every 50, rounded up to a meeting.
FLAGS = ["--corpus", "corpus.txt", "--model-dir", "model", "--min-count", "1", "--batch-size", "64", "--sample", "0",
         "--dim", "8", "--learning-rate", "0.05", "--epochs", "20", "--checkpoint-every", "64", "--sync-every", "16"]


def new_work_directory(path):
    path.mkdir(parents=True, exist_ok=True)
    (path / "corpus.txt").write_text("\n".join(TOPIC_LINES * 25) + "\n")
    return path


def start_workers(work, ports: list[int], environment: dict | None = None) -> list[subprocess.Popen]:
    return [start_worker(index, ports, FLAGS, cwd=work, environment=environment) for index in range(len(ports))]


def finish(workers: list[subprocess.Popen], timeout: float = 600) -> list[tuple[int, str, str]]:
    results = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=timeout)
        results.append((worker.returncode, stdout, stderr))
    return results


def latest(work) -> str | None:
    return tf.train.latest_checkpoint(str(work / "model" / "checkpoints"))


def saved(work, name: str) -> np.ndarray:
    return tf.train.load_variable(latest(work), name + "/.ATTRIBUTES/VARIABLE_VALUE")


def wait_for_checkpoint(work, workers: list[subprocess.Popen], seconds: float = 240) -> None:
    """Waits until the chief has listed a checkpoint: training runs on both workers."""
    deadline = time.monotonic() + seconds
    while latest(work) is None:
        assert all(worker.poll() is None for worker in workers), "a worker ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint yet"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    work = new_work_directory(tmp_path_factory.mktemp("uninterrupted"))
    results = finish(start_workers(work, free_ports(2)))
    assert all(code == 0 for code, _, _ in results), results[0][2][-2000:] + results[1][2][-2000:]
    return work


def assert_resumes_to_the_uninterrupted_end(work, ports: list[int], uninterrupted, environment: dict | None = None) -> None:
    """All workers started again with the same command end at the uninterrupted run's step, with its E."""
    results = finish(start_workers(work, ports, environment))
    assert [code for code, _, _ in results] == [0, 0], [stderr[-2000:] for _, _, stderr in results]
    assert "resuming from" in results[0][1]
    assert saved(work, "progress/step") == saved(uninterrupted, "progress/step")
    np.testing.assert_allclose(saved(work, "E"), saved(uninterrupted, "E"), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_to_one_worker_stops_both_after_the_same_step_and_the_resume_is_exact(
        tmp_path, uninterrupted, signal_number):
    work, ports = new_work_directory(tmp_path), free_ports(2)
    workers = start_workers(work, ports)
    wait_for_checkpoint(work, workers)
    workers[1].send_signal(signal_number)  # the worker that is not the chief
    results = finish(workers)
    exit_code = 130 if signal_number == signal.SIGINT else 143
    assert [code for code, _, _ in results] == [143, exit_code], [stderr[-2000:] for _, _, stderr in results]
    steps = [re.search(r"stopped by .*: saved step ([\d,]+)", stdout) for _, stdout, _ in results]
    assert steps[0] and steps[1] and steps[0].group(1) == steps[1].group(1), [stdout[-500:] for _, stdout, _ in results]
    assert f"stopped by {signal_number.name}" in results[1][1] and "a signal to another worker" in results[0][1]
    assert all(stderr == "" for _, _, stderr in results)
    # The chief's own checkpoint is at that step.
    assert saved(work, "progress/step") == int(steps[0].group(1).replace(",", ""))
    assert_resumes_to_the_uninterrupted_end(work, ports, uninterrupted)


@pytest.mark.slow
@pytest.mark.parametrize(("lost", "how", "within_seconds"), [
    (1, signal.SIGKILL, 60),  # a worker dies
    (0, signal.SIGKILL, 60),  # the chief dies
    (1, signal.SIGSTOP, HEARTBEAT_TIMEOUT_SECONDS + 30),  # a worker hangs; its connections stay open
])
def test_a_lost_worker_stops_the_other_with_one_line_and_all_restarted_resume_exactly(
        tmp_path, uninterrupted, lost, how, within_seconds):
    work, ports = new_work_directory(tmp_path / "work"), free_ports(2)
    temporary = tmp_path / "tmp"  # the workers' $TMPDIR
    temporary.mkdir()
    environment = {**os.environ, "TMPDIR": str(temporary)}
    workers = start_workers(work, ports, environment)
    wait_for_checkpoint(work, workers)
    workers[lost].send_signal(how)
    start = time.monotonic()
    survivor = workers[1 - lost]
    _, stderr = survivor.communicate(timeout=within_seconds + 60)
    seconds = time.monotonic() - start
    assert survivor.returncode == 1, stderr[-3000:]
    assert seconds < within_seconds, seconds
    # One line, naming the lost worker and how to go on.
    assert stderr.count("\n") == 1, stderr[-3000:]
    assert stderr.startswith(f"error: worker {lost} (127.0.0.1:{ports[lost]}) is lost"), stderr
    assert "start every worker again with the same command" in stderr
    workers[lost].kill()
    workers[lost].communicate()
    # What the killed process had in $TMPDIR (its native stderr log; another worker's checkpoint folder) outlives
    # it, until the workers start again: they remove what processes that ended left there.
    left = list(temporary.glob(f"word2vec-*-{workers[lost].pid}-*"))
    expected = {"word2vec-worker-stderr-"} | ({"word2vec-worker-checkpoints-"} if lost else set())
    assert expected <= {path.name.split(str(workers[lost].pid))[0] for path in left}, left
    assert_resumes_to_the_uninterrupted_end(work, ports, uninterrupted, environment)
    assert not any(path.exists() for path in left)
