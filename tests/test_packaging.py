"""`pip install .`: one package, word2vec_tf, that never shadows a user's modules, and three commands on PATH.

The import rewriting of setup.py is checked on tricky statements; the wheel is built from a copy of the repository
with the real pip and imported beside a user's own `model.py`, `config.py`, `errors.py` and `training.py`; and
(slow) a fresh venv installs it with `pip install` and runs word2vec-train, word2vec-export and word2vec-evaluate.
"""

import ast
import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, TOPIC_LINES

from setup import PACKAGE, REPOSITORY_NAMES, packaged_imports

# What a clone holds besides the project: left out of the copy that pip builds from (pip builds in that tree).
NOT_COPIED = shutil.ignore_patterns(".git", "runs", "exports", "build", "*.egg-info", "__pycache__", ".pytest_cache",
                                    "test-artifacts", ".hypothesis")
# A user's own modules, named like the repository's top-level ones.
USER_MODULES = ("model", "config", "errors", "training")


# --- The rewriting, statement by statement ---


@pytest.mark.parametrize("source, expected", [
    ("from model.skipgram import SkipGram\n", "from word2vec_tf.model.skipgram import SkipGram\n"),
    ("def f():\n    from errors import UserError\n", "def f():\n    from word2vec_tf.errors import UserError\n"),
    # Parenthesised: only the module name changes, so every line stays where it was.
    ("from exporting.interchange import (\n    A,\n    B,\n)\n",
     "from word2vec_tf.exporting.interchange import (\n    A,\n    B,\n)\n"),
    ("import errors\n", "from word2vec_tf import errors\n"),
    ("import config as settings\n", "import word2vec_tf.config as settings\n"),
    ("import model.word_vectors\n", "import word2vec_tf.model.word_vectors; from word2vec_tf import model\n"),
    ("import os, errors\n", "import os; from word2vec_tf import errors\n"),
    # Columns are counted in bytes: a non-ASCII character before the statement must not shift the edit.
    ('WORD = "é"; import errors\n', 'WORD = "é"; from word2vec_tf import errors\n'),
], ids=["from", "indented", "parenthesised", "import", "import-as", "import-submodule", "mixed", "non-ascii"])
def test_imports_of_repository_names_move_under_the_package(source, expected):
    assert packaged_imports(source.encode()) == expected.encode()


@pytest.mark.parametrize("source", [
    "import numpy as np\nfrom tensorflow import keras\n",
    "from modelling import x\nimport configparser\n",  # Names that merely start like a repository name.
    "from . import sibling\nfrom .model import x\n",  # Relative imports are the package's own already.
    '"""from model import x"""\nTEXT = "import errors"\n',  # Text is not an import.
    "from __future__ import annotations\n",
])
def test_everything_else_is_left_byte_for_byte(source):
    assert packaged_imports(source.encode()) == source.encode()


def test_the_repository_names_are_its_top_level_modules_and_packages_and_nothing_else():
    assert {"model", "config", "errors", "training", "cli", "train", "export", "evaluate", "data_pipeline",
            "evaluation", "exporting"} <= REPOSITORY_NAMES
    assert not REPOSITORY_NAMES & {"tests", "benchmarks", "setup", PACKAGE}


# --- The wheel, built by pip from a copy of the repository ---


def copy_of_the_repository(destination: pathlib.Path) -> pathlib.Path:
    shutil.copytree(ROOT, destination, ignore=NOT_COPIED)
    return destination


def imports_of_repository_names(path: pathlib.Path) -> list[str]:
    """Absolute imports in a file whose top-level name is one of the repository's (there must be none installed)."""
    found = []
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [f"{path.name}:{node.lineno}: {name}" for name in names if name.split(".")[0] in REPOSITORY_NAMES]
    return found


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory) -> pathlib.Path:
    """The wheel `pip wheel` builds, unpacked: the files `pip install .` puts in site-packages."""
    work = tmp_path_factory.mktemp("wheel")
    source = copy_of_the_repository(work / "source")
    # No build isolation: the build uses the installed setuptools rather than fetching one (and pins nothing).
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--no-cache-dir", "-q", "-w", str(work / "dist"), str(source)],
                           capture_output=True, text=True, timeout=600, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = (work / "dist").glob("word2vec_tf-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(work / "site")
    return work / "site"


def test_the_wheel_holds_one_top_level_package_and_three_commands(unpacked_wheel):
    [info] = unpacked_wheel.glob("word2vec_tf-*.dist-info")
    assert sorted(path.name for path in unpacked_wheel.iterdir()) == sorted([PACKAGE, info.name])
    assert (info / "top_level.txt").read_text().split() == [PACKAGE]
    entry_points = (info / "entry_points.txt").read_text()
    for command, module in [("train", "train"), ("export", "export"), ("evaluate", "evaluate")]:
        assert f"word2vec-{command} = {PACKAGE}.{module}:main" in entry_points
    package = unpacked_wheel / PACKAGE
    for name in ["train.py", "export.py", "evaluate.py", "config.py", "errors.py", "cli.py", "__init__.py",
                 "model/word_vectors.py", "data_pipeline/tokenize.py", "data/wordnet_glosses.txt.gz"]:
        assert (package / name).is_file(), name
    assert not (package / "setup.py").exists() and not (package / "tests").exists()
    assert not (package / "benchmarks").exists() and not (package / "word2vec_tf.py").exists()
    # Every import of the repository's own modules now goes through the package.
    assert [found for path in package.rglob("*.py") for found in imports_of_repository_names(path)] == []


USER_SCRIPT = """
import json, sys
import model, config, errors, training   # The user's own modules, found first.

import word2vec_tf
import tensorflow as tf

layer = word2vec_tf.load_word_vectors_layer(sys.argv[1])
import word2vec_tf.train, word2vec_tf.export, word2vec_tf.evaluate

print(json.dumps({
    "user_modules": [module.NAME for module in (model, config, errors, training)],
    "package_file": word2vec_tf.__file__,
    "vectors": layer(tf.constant(["King", "queen"])).numpy().tolist(),
    "modules_outside_the_package": sorted(name for name, module in sys.modules.items()
                                          if name.split(".")[0] in %(names)r and module not in
                                          (model, config, errors, training)),
}))
"""


def user_directory(path: pathlib.Path) -> pathlib.Path:
    """A directory of a user's own project, with modules named like the repository's top-level ones."""
    path.mkdir()
    for name in USER_MODULES:
        (path / f"{name}.py").write_text(f"NAME = 'the user {name}'\n")
    return path


def test_the_installed_package_works_beside_a_users_own_model_and_config(unpacked_wheel, export_base,
                                                                       trained_model_dir, tmp_path):
    user = user_directory(tmp_path / "project")
    (user / "script.py").write_text(USER_SCRIPT % {"names": sorted(REPOSITORY_NAMES)})
    environment = {**os.environ, "PYTHONPATH": str(unpacked_wheel)}
    result = subprocess.run([sys.executable, "script.py", str(export_base)], cwd=user, env=environment,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["user_modules"] == [f"the user {name}" for name in USER_MODULES]
    assert pathlib.Path(report["package_file"]).is_relative_to(unpacked_wheel)
    # The layer from the installed package gives the trained rows (King standardised to king).
    embeddings = tf.train.load_variable(tf.train.latest_checkpoint(str(trained_model_dir / "checkpoints")),
                                        "E/.ATTRIBUTES/VARIABLE_VALUE")
    words = [row.split("\t")[0] for row in (trained_model_dir / "vocab.tsv").read_text().splitlines()[1:]]
    np.testing.assert_array_equal(np.array(report["vectors"], np.float32),
                                  embeddings[[words.index("king"), words.index("queen")]])
    # No module of the package was loaded under a top-level name of its own.
    assert report["modules_outside_the_package"] == []


# --- A fresh venv, `pip install`, and the three commands ---


@pytest.mark.slow
def test_pip_install_in_a_fresh_venv_gives_the_three_commands(tmp_path):
    source = copy_of_the_repository(tmp_path / "source")
    venv = tmp_path / "venv"
    # The venv sees the machine's packages (TensorFlow is 600 MB), so pip finds the pinned ones already there.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-build-isolation"]
    installed = subprocess.run([*pip, str(source)], capture_output=True, text=True, timeout=900, check=False)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    user = user_directory(tmp_path / "project")
    (user / "corpus.txt").write_text("\n".join(TOPIC_LINES * 25) + "\n", encoding="utf-8")
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment["PATH"] = f"{venv / 'bin'}{os.pathsep}{environment['PATH']}"

    def command(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(arguments, cwd=user, env=environment, capture_output=True, text=True, timeout=300,
                              check=False)

    trained = command("word2vec-train", "--corpus", "corpus.txt", "--model-dir", "model", "--dim", "2",
                      "--min-count", "1", "--batch-size", "64", "--epochs", "1")
    assert trained.returncode == 0, trained.stderr
    assert "trained " in trained.stdout and "king: " in trained.stdout
    exported = command("word2vec-export", "--model-dir", "model", "--export-dir", "exports")
    assert exported.returncode == 0, exported.stderr
    evaluated = command("word2vec-evaluate", "--model-dir", "model", "--neighbours", "King", "--top", "2")
    assert evaluated.returncode == 0, evaluated.stderr
    assert evaluated.stdout.splitlines()[-1].startswith("King: ")
    # Their --help and errors name the commands as installed.
    assert command("word2vec-train", "--help").stdout.startswith("usage: word2vec-train")
    refused = command("word2vec-train", "--dim", "ten")
    assert refused.returncode == 2 and refused.stderr.endswith("see word2vec-train --help\n")

    # An editable install would import unrewritten sources: refused, saying why.
    editable = subprocess.run([*pip, "-e", str(source)], capture_output=True, text=True, timeout=900, check=False)
    assert editable.returncode != 0
    assert "an editable install would import the repository's modules" in editable.stdout + editable.stderr
