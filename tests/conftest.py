"""Shared fixtures: tiny corpora written by the tests themselves, and the tiny config every fast test uses."""

import gzip
import json
import os
import pathlib
import subprocess
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Two "topics" whose words only ever meet each other: a learnable corpus in which each word's context
# is predictable, so every objective can lower its loss within a few hundred steps.
TOPIC_LINES = [
    "the king and the queen rule the old kingdom",
    "the queen and the king sit in the royal castle",
    "a cat and a dog play in the green garden",
    "a dog and a cat sleep in the warm garden",
]

# Text for continuing a model trained on TOPIC_LINES: "prince" joins the royal lines and "puppy" the pet ones, so
# each new word shares its contexts with one topic only.
UPDATE_LINES = [
    "the prince and the queen rule the old kingdom",
    "the king and the prince sit in the royal castle",
    "a cat and a puppy play in the green garden",
    "a puppy and a dog sleep in the warm garden",
]


@pytest.fixture
def tiny_corpus(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "tiny.txt"
    path.write_text("\n".join(TOPIC_LINES * 25) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tiny_gzip_corpus(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "tiny.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write("\n".join(TOPIC_LINES * 25) + "\n")
    return path


def tiny_flags(corpus: pathlib.Path, model_dir: pathlib.Path, *extra: str) -> list[str]:
    """The tiny-config smoke run: a vocabulary of ~20 words, dim 2, a few dozen steps."""
    return ["--corpus", str(corpus), "--model-dir", str(model_dir), "--dim", "2", "--min-count", "1",
            "--batch-size", "64", "--epochs", "1", "--checkpoint-every", "20", *extra]


def run_script(script: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """Runs one of the project's entry points in a real subprocess, as a user would."""
    return subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, check=False)


def start_worker(index: int, ports: list[int], flags: list[str], cwd: pathlib.Path = ROOT,
                 environment: dict | None = None) -> subprocess.Popen:
    """train.py as worker `index` of a cluster on the loopback `ports` (TF_CONFIG), its output captured."""
    tf_config = {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]}, "task": {"type": "worker", "index": index}}
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *flags], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**(environment or os.environ), "TF_CONFIG": json.dumps(tf_config)})


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory) -> pathlib.Path:
    """One tiny training run (19 words, D = 2), made once and shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("trained")
    corpus = root / "tiny.txt"
    corpus.write_text("\n".join(TOPIC_LINES * 25) + "\n", encoding="utf-8")
    result = run_script("train.py", *tiny_flags(corpus, root / "model"))
    assert result.returncode == 0, result.stderr
    return root / "model"


@pytest.fixture(scope="session")
def export_base(trained_model_dir, tmp_path_factory) -> pathlib.Path:
    """`trained_model_dir` exported once in every format, as a user would: `python export.py`."""
    base = tmp_path_factory.mktemp("exported") / "word2vec"
    result = run_script("export.py", "--model-dir", str(trained_model_dir), "--export-dir", str(base),
                        "--format", "savedmodel", "word2vec", "word2vec-binary", "tsv")
    assert result.returncode == 0, result.stderr
    return base
