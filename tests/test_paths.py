"""Paths with spaces and non-ASCII letters work everywhere a path goes: the corpus, the model directory (checkpoints,
TensorBoard, the projector), the export directory, --metrics-file and evaluate's --json; glob characters work in
corpus names, and a --model-dir whose path holds '[' (where TensorFlow cannot find checkpoints) is refused."""

import json

import pytest
from conftest import TOPIC_LINES, run_script, tiny_flags


@pytest.mark.slow
def test_train_export_and_evaluate_in_folders_with_spaces_and_non_ascii_letters(tmp_path):
    folder = tmp_path / "données d'été 2024 东京"
    folder.mkdir()
    corpus = folder / "corpus ü [1].txt"  # "[1]" would be a glob character class if the name were globbed.
    corpus.write_text("\n".join(TOPIC_LINES * 25) + "\n", encoding="utf-8")
    model, exports = folder / "modèle 1", folder / "exports à servir"

    trained = run_script("train.py", *tiny_flags(corpus, model), "--metrics-file", str(folder / "métriques.json"))
    assert trained.returncode == 0, trained.stderr
    assert json.loads((folder / "métriques.json").read_text())["steps"] > 0
    assert (model / "logs" / "train" / "projector_config.pbtxt").exists()

    exported = run_script("export.py", "--model-dir", str(model), "--export-dir", str(exports),
                          "--format", "savedmodel", "word2vec", "word2vec-binary", "tsv")
    assert exported.returncode == 0, exported.stderr
    version = next(exports.iterdir())
    assert {path.name for path in version.iterdir()} >= {"saved_model.pb", "word2vec.txt", "word2vec.bin",
                                                          "vectors.tsv", "metadata.tsv"}

    evaluated = run_script("evaluate.py", "--model-dir", str(model), "--neighbours", "king", "--json",
                           str(folder / "résultats.json"))
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads((folder / "résultats.json").read_text())["neighbours"]["king"]
    from_vectors = run_script("evaluate.py", "--vectors", str(version / "word2vec.txt"), "--neighbours", "queen")
    assert from_vectors.returncode == 0, from_vectors.stderr

    # Resuming reads the corpus it recorded, by its absolute path with all those characters.
    resumed = run_script("train.py", *tiny_flags(corpus, model), "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout


def test_a_model_dir_whose_path_holds_a_bracket_is_refused_in_one_line(tmp_path):
    refused = run_script("train.py", "--model-dir", str(tmp_path / "runs [2024]"), "--epochs", "1")
    assert refused.returncode == 2
    assert refused.stderr == (f"error: --model-dir {tmp_path / 'runs [2024]'}: TensorFlow cannot read checkpoints in "
                              "a folder whose path holds '[': choose a --model-dir without brackets\n")
    assert not (tmp_path / "runs [2024]").exists()
