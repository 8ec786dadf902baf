"""export.py end to end: a versioned SavedModel holding E alone, read back by saved_model_cli and
tf.saved_model.load, written atomically, and word2vec / projector files that gensim and numpy read back."""

import hashlib
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, run_script

EMBEDDINGS_KEY = "E/.ATTRIBUTES/VARIABLE_VALUE"
STEP_KEY = "progress/step/.ATTRIBUTES/VARIABLE_VALUE"


@pytest.fixture(scope="session")
def model_dir(trained_model_dir) -> pathlib.Path:
    return trained_model_dir


def latest_checkpoint(model_dir: pathlib.Path) -> str:
    return tf.train.latest_checkpoint(str(model_dir / "checkpoints"))


def checkpoint_embeddings(model_dir: pathlib.Path) -> np.ndarray:
    """E as train.py saved it, read straight from the checkpoint."""
    return tf.train.load_variable(latest_checkpoint(model_dir), EMBEDDINGS_KEY)


def vocabulary_words(model_dir: pathlib.Path) -> list[str]:
    return [row.split("\t")[0] for row in (model_dir / "vocab.tsv").read_text(encoding="utf-8").splitlines()[1:]]


def rows_of(model_dir: pathlib.Path, *words: str) -> np.ndarray:
    ids = {word: index for index, word in enumerate(vocabulary_words(model_dir))}
    return checkpoint_embeddings(model_dir)[[ids[word] for word in words]]


def version_dir(model_dir: pathlib.Path, base: pathlib.Path) -> pathlib.Path:
    return base / str(int(tf.train.load_variable(latest_checkpoint(model_dir), STEP_KEY)))


def tree_digest(directory: pathlib.Path) -> str:
    """A fingerprint of every file's path and bytes under `directory`, to show that nothing changed."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        digest.update(str(path.relative_to(directory)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def saved_model_cli(*args: str) -> subprocess.CompletedProcess:
    # The console script is a thin wrapper around this module; calling the module works in any environment.
    result = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", *args],
                            capture_output=True, text=True, timeout=180, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    return result


def signature_tensors(show_output: str) -> dict[str, dict[str, tuple[str, str]]]:
    """`saved_model_cli show --all` parsed into {signature: {"inputs['words']": (dtype, shape), ...}}."""
    signatures = {}
    for block in show_output.split("signature_def['")[1:]:
        name = block.split("'", 1)[0]
        tensors = re.findall(r"((?:inputs|outputs)\['\w+'\]) tensor_info:\s+dtype: (\w+)\s+shape: (.+)", block)
        signatures[name] = {tensor: (dtype, shape) for tensor, dtype, shape in tensors}
    return signatures


# --- The version directory -------------------------------------------------------------------------------------


def test_the_export_is_one_version_directory_named_after_the_training_step(model_dir, export_base):
    # The tiny run saved one checkpoint at its last step; the version is that step and nothing else is left.
    assert [path.name for path in export_base.iterdir()] == [version_dir(model_dir, export_base).name]
    files = sorted(path.name for path in version_dir(model_dir, export_base).iterdir())
    assert files == ["assets", "fingerprint.pb", "metadata.tsv", "saved_model.pb", "variables", "vectors.tsv",
                     "word2vec.bin", "word2vec.txt"]


def test_saved_model_cli_shows_the_signatures_with_their_dtypes_and_shapes(model_dir, export_base):
    shown = saved_model_cli("show", "--all", "--dir", str(version_dir(model_dir, export_base))).stdout
    signatures = signature_tensors(shown)
    # D = 2 in the tiny run; -1 is a batch of any size.
    assert signatures["serving_default"] == {
        "inputs['words']": ("DT_STRING", "(-1)"),
        "outputs['embeddings']": ("DT_FLOAT", "(-1, 2)"),
        "outputs['in_vocabulary']": ("DT_BOOL", "(-1)"),
    }
    assert signatures["nearest"] == {
        "inputs['words']": ("DT_STRING", "(-1)"),
        "inputs['k']": ("DT_INT32", "()"),
        "outputs['neighbours']": ("DT_STRING", "(-1, -1)"),
        "outputs['scores']": ("DT_FLOAT", "(-1, -1)"),
        "outputs['in_vocabulary']": ("DT_BOOL", "(-1)"),
    }
    assert signatures["sentences"] == {
        "inputs['sentences']": ("DT_STRING", "(-1)"),
        "outputs['embeddings']": ("DT_FLOAT", "(-1, 2)"),
        "outputs['known_words']": ("DT_INT32", "(-1)"),
    }


def test_saved_model_cli_run_returns_exactly_the_checkpoint_rows_of_e(model_dir, export_base, tmp_path):
    saved_model_cli("run", "--dir", str(version_dir(model_dir, export_base)), "--tag_set", "serve",
                    "--signature_def", "serving_default", "--input_exprs", 'words=["king","queen"]',
                    "--outdir", str(tmp_path))
    np.testing.assert_array_equal(np.load(tmp_path / "embeddings.npy"), rows_of(model_dir, "king", "queen"))
    assert np.load(tmp_path / "in_vocabulary.npy").tolist() == [True, True]


def test_the_saved_model_holds_e_alone(model_dir, export_base):
    variables = version_dir(model_dir, export_base) / "variables" / "variables"
    listed = dict(tf.train.list_variables(str(variables)))
    # No W, no bias, no optimizer, no progress: E (19 words x 2) and the object graph every checkpoint carries.
    assert listed == {"_CHECKPOINTABLE_OBJECT_GRAPH": [], "embeddings/.ATTRIBUTES/VARIABLE_VALUE": [19, 2]}
    object_graph = tf.train.load_checkpoint(str(variables)).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH")
    data_bytes = sum(path.stat().st_size for path in variables.parent.glob("variables.data-*"))
    # V x D x 4 = 19 x 2 x 4 = 152 bytes of float32, plus the object graph string with its length and checksum.
    assert 19 * 2 * 4 + len(object_graph) <= data_bytes <= 19 * 2 * 4 + len(object_graph) + 16
    loaded = tf.saved_model.load(str(version_dir(model_dir, export_base)))
    np.testing.assert_array_equal(loaded.embeddings.numpy(), checkpoint_embeddings(model_dir))


# --- The signatures, called in-process ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signatures(model_dir, export_base):
    return tf.saved_model.load(str(version_dir(model_dir, export_base))).signatures


def test_an_unknown_word_gets_a_zero_vector_and_in_vocabulary_false(model_dir, signatures):
    result = signatures["serving_default"](words=tf.constant(["unicorn", "king"]))
    np.testing.assert_array_equal(result["embeddings"].numpy(), [[0.0, 0.0], rows_of(model_dir, "king")[0]])
    assert result["in_vocabulary"].numpy().tolist() == [False, True]


def test_serving_default_and_nearest_standardise_words_as_training_did(model_dir, signatures):
    # Training lowercased its text, so "King" and "QUEEN" are looked up as king and queen.
    result = signatures["serving_default"](words=tf.constant(["King", "QUEEN", "king"]))
    np.testing.assert_array_equal(result["embeddings"].numpy(), rows_of(model_dir, "king", "queen", "king"))
    assert result["in_vocabulary"].numpy().tolist() == [True, True, True]
    nearest = signatures["nearest"](words=tf.constant(["KING", "king"]), k=tf.constant(3))
    assert nearest["neighbours"].numpy()[0].tolist() == nearest["neighbours"].numpy()[1].tolist()
    assert nearest["in_vocabulary"].numpy().tolist() == [True, True]


def test_an_exact_lookup_export_looks_words_up_as_given(model_dir, tmp_path):
    result = run_script("export.py", "--model-dir", str(model_dir), "--export-dir", str(tmp_path / "exact"),
                        "--exact-lookup")
    assert result.returncode == 0, result.stderr
    exact = tf.saved_model.load(str(version_dir(model_dir, tmp_path / "exact"))).signatures
    embedded = exact["serving_default"](words=tf.constant(["King", "king"]))
    np.testing.assert_array_equal(embedded["embeddings"].numpy(), [[0.0, 0.0], rows_of(model_dir, "king")[0]])
    assert embedded["in_vocabulary"].numpy().tolist() == [False, True]
    nearest = exact["nearest"](words=tf.constant(["King", "king"]), k=tf.constant(2))
    assert nearest["in_vocabulary"].numpy().tolist() == [False, True]
    assert nearest["neighbours"].numpy()[0].tolist() == [b"", b""]


def test_nearest_ranks_the_other_words_by_cosine_over_e(model_dir, signatures):
    result = signatures["nearest"](words=tf.constant(["king", "unicorn"]), k=tf.constant(3))
    # The expected answer worked out with numpy: cosines of king's row with every row, king itself left out.
    embeddings, words = checkpoint_embeddings(model_dir), vocabulary_words(model_dir)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    king = words.index("king")
    cosines = unit @ unit[king]
    cosines[king] = -np.inf
    best = np.argsort(-cosines, kind="stable")[:3]
    assert [word.decode() for word in result["neighbours"].numpy()[0]] == [words[i] for i in best]
    np.testing.assert_allclose(result["scores"].numpy()[0], cosines[best], atol=1e-6)
    # An unknown word has no neighbours: empty strings, scores 0.
    assert result["neighbours"].numpy()[1].tolist() == [b"", b"", b""]
    assert result["scores"].numpy()[1].tolist() == [0.0, 0.0, 0.0]
    assert result["in_vocabulary"].numpy().tolist() == [True, False]


def test_nearest_clips_k_to_the_other_words(signatures):
    # 19 words: each has 18 others.
    assert signatures["nearest"](words=tf.constant(["king"]), k=tf.constant(100))["neighbours"].shape == (1, 18)


def test_sentences_are_tokenised_as_in_training_and_combined_by_sqrt_n(model_dir, signatures):
    result = signatures["sentences"](sentences=tf.constant(["The King, the QUEEN and a unicorn!", "unicorn", ""]))
    # Lowercased and split on non-letters: the king the queen and a unicorn. Six of the seven are known
    # (unicorn is not), so the vector is (the + king + the + queen + and + a) / sqrt(6).
    expected = rows_of(model_dir, "the", "king", "the", "queen", "and", "a").sum(axis=0) / np.sqrt(6)
    np.testing.assert_allclose(result["embeddings"].numpy()[0], expected, rtol=1e-6)
    # No known word at all: zeros, and 0 known words.
    np.testing.assert_array_equal(result["embeddings"].numpy()[1:], np.zeros((2, 2)))
    assert result["known_words"].numpy().tolist() == [6, 0, 0]


def test_the_sentences_signature_standardises_as_training_did_in_every_script(tmp_path):
    # A SavedModel holding the NFC tables and the default pattern: decomposed é, an upper-case É, and Hindi words
    # with their vowel signs find the words training stored (composed, lower-case, whole).
    from config import TOKEN_PATTERN
    from model.serving import WordVectorServer

    words, vectors = ["café", "हिन्दी", "भाषा"], np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0]], np.float32)
    server = WordVectorServer(words, vectors, TOKEN_PATTERN)
    tf.saved_model.save(server, str(tmp_path / "1"), signatures=server.signatures())
    sentences = tf.saved_model.load(str(tmp_path / "1")).signatures["sentences"]
    result = sentences(sentences=tf.constant(["CAFE\u0301 cafe\u0301", "हिन्दी भाषा"]))
    assert result["known_words"].numpy().tolist() == [2, 2]
    np.testing.assert_allclose(result["embeddings"].numpy(), [[2 / np.sqrt(2), 0.0], [0.0, 3 / np.sqrt(2)]], rtol=1e-6)


# --- Interchange files ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("file_name, binary", [("word2vec.txt", False), ("word2vec.bin", True)])
def test_gensim_reads_the_word2vec_files_back_to_the_same_vectors(model_dir, export_base, file_name, binary):
    from gensim.models import KeyedVectors

    vectors = KeyedVectors.load_word2vec_format(str(version_dir(model_dir, export_base) / file_name), binary=binary)
    assert vectors.index_to_key == vocabulary_words(model_dir)
    np.testing.assert_array_equal(vectors.vectors, checkpoint_embeddings(model_dir))
    np.testing.assert_array_equal(vectors["queen"], rows_of(model_dir, "queen")[0])


def test_the_projector_files_hold_one_vector_and_one_word_per_line(model_dir, export_base):
    directory = version_dir(model_dir, export_base)
    np.testing.assert_array_equal(np.loadtxt(directory / "vectors.tsv", delimiter="\t", dtype=np.float32),
                                  checkpoint_embeddings(model_dir))
    assert (directory / "metadata.tsv").read_text(encoding="utf-8").splitlines() == vocabulary_words(model_dir)


# --- Errors and atomicity ------------------------------------------------------------------------------------------


def test_an_existing_version_is_kept_without_overwrite(model_dir, export_base):
    before = tree_digest(export_base)
    result = run_script("export.py", "--model-dir", str(model_dir), "--export-dir", str(export_base))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [(
        f"error: {version_dir(model_dir, export_base)} already exists: pass --overwrite to replace it, "
        "or --version for another version")]
    assert tree_digest(export_base) == before


def test_overwrite_replaces_a_version_whole(model_dir, tmp_path):
    from exporting.export_directory import write_export
    from exporting.trained_embeddings import read_trained_embeddings

    trained = read_trained_embeddings(model_dir)
    base = tmp_path / "exports"
    write_export(trained, base, version=7, formats=["word2vec", "tsv"])
    write_export(trained, base, version=7, formats=["word2vec-binary"], overwrite=True)
    # The new version replaced the old one entirely (no word2vec.txt left from before), with no leftovers.
    assert [path.name for path in base.iterdir()] == ["7"]
    assert [path.name for path in (base / "7").iterdir()] == ["word2vec.bin"]


@pytest.mark.parametrize("damage", ["no checkpoint", "truncated data", "flipped bytes in E"])
def test_a_missing_or_damaged_checkpoint_is_a_one_line_error_and_nothing_is_written(model_dir, tmp_path, damage):
    broken = tmp_path / "model"
    shutil.copytree(model_dir, broken)
    data_file = next((broken / "checkpoints").glob("*.data-*"))
    if damage == "no checkpoint":
        shutil.rmtree(broken / "checkpoints")
    elif damage == "truncated data":
        data_file.write_bytes(data_file.read_bytes()[:100])
    else:
        # E is the checkpoint's first tensor: its 152 bytes start the data file. The stored checksum catches it.
        data = bytearray(data_file.read_bytes())
        data[:152] = bytes(byte ^ 0xFF for byte in data[:152])
        data_file.write_bytes(bytes(data))
    before = tree_digest(broken)
    result = run_script("export.py", "--model-dir", str(broken), "--export-dir", str(tmp_path / "exports"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    expected = "error: no checkpoint in" if damage == "no checkpoint" else "error: checkpoint"
    assert result.stderr.startswith(expected), result.stderr
    assert not (tmp_path / "exports").exists()
    assert tree_digest(broken) == before


def test_a_failure_after_the_files_are_written_leaves_no_version(model_dir, tmp_path, monkeypatch):
    from exporting import export_directory
    from exporting.trained_embeddings import read_trained_embeddings

    def save_then_fail(module, directory, signatures):
        real_save(module, directory, signatures=signatures)
        assert (pathlib.Path(directory) / "saved_model.pb").exists()
        raise OSError("No space left on device")

    real_save = tf.saved_model.save
    monkeypatch.setattr(export_directory.tf.saved_model, "save", save_then_fail)
    with pytest.raises(OSError, match="No space left"):
        export_directory.write_export(read_trained_embeddings(model_dir), tmp_path / "exports", version=5)
    # The half-made version, written under its temporary name, is gone, and so is the export directory this export
    # created: no numbered directory appeared.
    assert not (tmp_path / "exports").exists()
    (tmp_path / "exports").mkdir()  # Into an export directory that was there before, only the version is removed.
    with pytest.raises(OSError, match="No space left"):
        export_directory.write_export(read_trained_embeddings(model_dir), tmp_path / "exports", version=5)
    assert list((tmp_path / "exports").iterdir()) == []


KILL_BEFORE_RENAME = """
import os, pathlib, signal, sys
sys.path.insert(0, {root!r})
from exporting import export_directory
from exporting.trained_embeddings import read_trained_embeddings

def killed(source, destination):
    os.kill(os.getpid(), signal.SIGKILL)

export_directory.os.rename = killed
export_directory.write_export(read_trained_embeddings(pathlib.Path({model_dir!r})), pathlib.Path({base!r}), 9)
"""


@pytest.mark.slow
def test_an_export_killed_before_its_rename_leaves_no_numbered_version(model_dir, tmp_path):
    base = tmp_path / "exports"
    # A real process, killed (SIGKILL: no cleanup runs) at the last moment: every file written, not yet renamed.
    script = KILL_BEFORE_RENAME.format(root=str(ROOT), model_dir=str(model_dir), base=str(base))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == -9, result.stderr
    left = list(base.iterdir())
    # What is left is complete but hidden under a non-numeric name, which TF Serving never loads.
    assert [path.name.startswith(".incomplete-9-") for path in left] == [True]
    assert (left[0] / "saved_model.pb").exists()
    assert not any(path.name.isdigit() for path in left)
