"""Memory: what a run needs, estimated before anything large is allocated and refused in one line when it cannot fit;
what is available (MemAvailable, cgroup v1 and v2 limits, ulimit -v); and one line for an allocation that fails anyway.
"""

import os
import pathlib
import re
import resource
import subprocess
import sys

import pytest
from conftest import ROOT

from config import Config
from errors import UserError
from memory import AvailableMemory, available_memory, cgroup_available, out_of_memory_line, parse_size
from training.memory_estimate import check_counting_memory, check_training_memory, training_needs


def tiny_config(**training) -> Config:
    config = Config()
    config.model.embedding_dim = 2
    for name, value in training.items():
        setattr(config.training, name, value)
    return config


def test_the_estimate_of_a_tiny_run_worked_out_by_hand():
    needs = {need.what.split(" (")[0]: need.bytes for need in training_needs(tiny_config(batch_size=4), 10)}
    # E and W: 3 float matrices of 10 x 2 (E, W and one copy) and W's bias and one more vector of 10: 4 x (60 + 20).
    assert needs["E and W"] == 320
    # The vocabulary: 300 bytes a word, and a noise table of a million int32 slots (its floor).
    assert needs["the vocabulary"] == 10 * 300 + 1_000_000 * 4
    # The pairs of 4 chunks of up to 131,072 words, (window 5 + 1) pairs a word, 40 bytes a pair.
    assert needs["the pairs of 4 chunks of up to 131,072 words"] == 4 * 131_072 * 6 * 40
    # 8 batches of 4 pairs, each pair a centre, a context and a weight.
    assert needs["8 batches of 4 pairs"] == 8 * 4 * 12
    # The projector's rows: min(10,000, 10) = 10 rows of E, and their copy.
    assert needs["the projector's 10 rows of E"] == 2 * 10 * 2 * 4


def test_the_full_softmax_adds_its_logits_and_a_dense_gradient_of_w():
    config = tiny_config(loss="full", batch_size=4)
    needs = {need.what.split(" (")[0]: need.bytes for need in training_needs(config, 10)}
    assert needs["the full softmax's logits"] == 3 * 4 * 10 * 4  # Logits, probabilities and their gradient: B x V.
    assert needs["E and W"] == 4 * (5 * 10 * 2 + 2 * 10)  # Two more V x D copies: W's gradient and its scaled copy.


def test_a_run_too_big_is_refused_naming_the_largest_value_of_its_flag_that_fits():
    config = tiny_config()
    config.model.embedding_dim = 1000
    available = AvailableMemory(400_000_000, "a test's budget")
    # 100,000 words. What grows with dim: E and W, 3 x 100,000 x 4 bytes = 1,200,000 a dimension, and the projector's
    # 10,000 rows and their copy, 80,000: 1,280,000 a dimension. What does not: W's bias and one more vector
    # (800,000), the vocabulary (30,000,000) and its noise table (2,000,000 x 4), the chunks' pairs (125,829,120),
    # the batches (196,608): 164,825,728. At dim 1,000: 1,444,825,728 bytes. The largest dim that fits in 400 MB:
    # (400,000,000 - 164,825,728) / 1,280,000 = 183.7, so 183.
    with pytest.raises(UserError) as refused:
        check_training_memory(config, 100_000, available=available)
    assert str(refused.value) == (
        "this run needs about 1.4 GB of memory and 400.0 MB (a test's budget) is available, 1.2 GB of it for E and W "
        "(100,000 words x dim 1,000, 3 copies at the peak): lower --dim to 183 or less, or keep fewer words "
        "(--max-vocab, --min-count)")
    config.model.embedding_dim = 183
    check_training_memory(config, 100_000, available=available)  # The suggested value fits.
    config.model.embedding_dim = 184
    with pytest.raises(UserError):
        check_training_memory(config, 100_000, available=available)


def test_a_token_id_cache_on_a_tmpfs_counts_as_memory():
    config, available = tiny_config(), AvailableMemory(200_000_000, "a test's budget")
    check_training_memory(config, 10, corpus_words=1_000_000, available=available)
    with pytest.raises(UserError, match=r"for the token-id cache \(200,000,000 words on a tmpfs, which holds it in "
                                        r"memory\): put --model-dir on a disk rather than a tmpfs"):
        check_training_memory(config, 10, corpus_words=200_000_000, id_cache_in_memory=True, available=available)


def test_the_word_counter_is_bounded_by_max_vocab_memory_and_by_the_corpus_size():
    available = AvailableMemory(1_200_000, "a test's budget")
    check_counting_memory(10_000_000, 20_000, available)  # At most 10,000 words in 20 KB of text: 1.2 MB fits.
    with pytest.raises(UserError) as refused:
        check_counting_memory(10_000_000, 20_002, available)
    assert str(refused.value) == (
        "counting the corpus may hold up to 10,001 distinct words in about 1.2 MB of memory and 1.2 MB (a test's "
        "budget) is available: lower --max-vocab-memory to 10,000 or less (the rarest words are then pruned while "
        "counting)")
    check_counting_memory(10_000, 10**12, available)  # --max-vocab-memory bounds a corpus of a terabyte.
    check_counting_memory(0, None, available)  # No bound at all (a TFDS corpus, no limit): nothing to check.


def test_the_memory_available_here_is_measured():
    available = available_memory(environ={})
    total = int(re.search(r"MemTotal:\s+(\d+) kB", pathlib.Path("/proc/meminfo").read_text()).group(1)) * 1024
    assert 0 < available.bytes <= total
    assert available.source in ("MemAvailable", "cgroup limit", "ulimit -v")
    assert available_memory(environ={"WORD2VEC_MEMORY_AVAILABLE": "1.5G"}) == AvailableMemory(
        1_500_000_000, "WORD2VEC_MEMORY_AVAILABLE")
    assert parse_size("800M") == parse_size("800MB") == 800_000_000
    with pytest.raises(UserError, match="WORD2VEC_MEMORY_AVAILABLE='lots' is not a size"):
        parse_size("lots")


def cgroup_tree(root: pathlib.Path, proc_cgroup: str, files: dict[str, str]) -> pathlib.Path:
    """A /proc and /sys/fs/cgroup laid out as the kernel lays them out, with the given files."""
    (root / "proc" / "self").mkdir(parents=True)
    (root / "proc" / "self" / "cgroup").write_text(proc_cgroup)
    for path, content in files.items():
        (root / "cgroup" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "cgroup" / path).write_text(content)
    return root


def test_a_cgroup_v2_limit_counts_its_parents_and_its_reclaimable_cache(tmp_path):
    root = cgroup_tree(tmp_path, "0::/jobs/mine\n", {
        # The job: 4 GB limit, 3 GB used of which 1 GB is inactive page cache: 2 GB left.
        "jobs/mine/memory.max": "4000000000\n", "jobs/mine/memory.current": "3000000000\n",
        "jobs/mine/memory.stat": "anon 2000000000\ninactive_file 1000000000\n",
        # Its parent: 10 GB limit, 8.5 GB used, nothing reclaimable: 1.5 GB left, the tighter one.
        "jobs/memory.max": "10000000000\n", "jobs/memory.current": "8500000000\n",
        # The root cgroup has no limit.
        "memory.max": "max\n", "memory.current": "9000000000\n",
    })
    assert cgroup_available(root / "proc", root / "cgroup") == 1_500_000_000


def test_a_cgroup_v1_limit_and_no_limit(tmp_path):
    root = cgroup_tree(tmp_path, "4:memory:/docker/abc\n3:cpu:/docker/abc\n0::/\n", {
        "memory/docker/abc/memory.limit_in_bytes": "2000000000\n",
        "memory/docker/abc/memory.usage_in_bytes": "1500000000\n",
        "memory/docker/abc/memory.stat": "cache 600000000\ntotal_inactive_file 300000000\n",
        "memory/memory.limit_in_bytes": "9223372036854771712\n",  # v1's "no limit"
        "memory/memory.usage_in_bytes": "5000000000\n",
    })
    assert cgroup_available(root / "proc", root / "cgroup") == 800_000_000
    unlimited = cgroup_tree(tmp_path / "unlimited", "4:memory:/\n", {
        "memory/memory.limit_in_bytes": "9223372036854771712\n", "memory/memory.usage_in_bytes": "5000000000\n"})
    assert cgroup_available(unlimited / "proc", unlimited / "cgroup") is None


class FakeOutOfMemory(Exception):
    """Carries a message as tf.errors.ResourceExhaustedError does (its `.message`)."""

    message = ("{{function_node __wrapped__RandomUniform}} OOM when allocating tensor with shape[14,53000000] and type "
               "float on /job:localhost/replica:0/task:0/device:CPU:0 by allocator mklcpu [Op:RandomUniform]")


def test_an_allocation_failure_is_read_from_tensorflows_message():
    line = out_of_memory_line(FakeOutOfMemory(), "lower --dim")
    # 14 x 53,000,000 floats of 4 bytes: 2.968 GB.
    assert re.fullmatch(r"out of memory: TensorFlow could not allocate a tensor of shape \[14, 53,000,000\] \(3.0 GB\) "
                        r"with [\d.]+ [KMGT]B \(.*\) available; lower --dim", line), line
    assert out_of_memory_line(ValueError("no"), "") is None


@pytest.mark.slow
def test_an_allocation_that_fails_at_run_time_is_one_line_not_an_allocator_traceback(tmp_path):
    # The estimate would refuse this run; WORD2VEC_MEMORY_AVAILABLE says there is plenty, and ulimit -v makes the
    # allocation of E (14 x 200,000,000 floats: 11.2 GB) fail for real, as on a machine that promised too much.
    (tmp_path / "corpus.txt").write_text("the king and the queen rule the old kingdom\n"
                                         "a cat and a dog play in the green garden\n")
    limit = 8 * 1024**3

    def limit_address_space():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--corpus", "corpus.txt", "--model-dir", "model", "--min-count", "1",
         "--sample", "0", "--dim", "200000000"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
        check=False, preexec_fn=limit_address_space,
        env={**os.environ, "WORD2VEC_MEMORY_AVAILABLE": "1T", "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 1, result.stderr
    assert re.fullmatch(r"error: out of memory: TensorFlow could not allocate a tensor of shape \[14, 200,000,000\] "
                        r"\(11.2 GB\) with 1.0 TB \(WORD2VEC_MEMORY_AVAILABLE\) available; lower --batch-size or "
                        r"--dim, or keep fewer words \(--max-vocab, --min-count\)\n", result.stderr), result.stderr
