"""E imported into another Keras model: raw strings in, trained vectors out, frozen or trainable, saved as .keras;
and the README's first recipe, Keras's TFSMLayer on the export alone, run where this repository is not importable."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT

from model.word_vectors import WordVectors, load_word_vectors_layer, word_vectors_layer

EMBEDDINGS_KEY = "E/.ATTRIBUTES/VARIABLE_VALUE"

# A tiny labelled set in the tiny corpus's words: 1 for the royal topic, 0 for the animal one.
TEXTS = [
    "the king and the queen", "the queen rules the kingdom", "the king sits in the castle", "the royal queen",
    "a cat and a dog", "the dog plays in the garden", "a cat sleeps", "the warm dog",
]
LABELS = np.array([1, 1, 1, 1, 0, 0, 0, 0], np.float32)
# Words of the vocabulary that no training text uses: their rows get no gradient.
UNUSED_WORDS = ["old", "green"]


def checkpoint_embeddings(model_dir) -> np.ndarray:
    return tf.train.load_variable(tf.train.latest_checkpoint(str(model_dir / "checkpoints")), EMBEDDINGS_KEY)


def vocabulary_words(model_dir) -> list[str]:
    return [row.split("\t")[0] for row in (model_dir / "vocab.tsv").read_text(encoding="utf-8").splitlines()[1:]]


def tokens(texts: list[str]) -> tf.Tensor:
    """Texts as a [texts, longest] tensor of words, padded with "" (which the layer masks)."""
    return tf.strings.split(tf.constant(texts)).to_tensor(default_value="")


def classifier(layer: keras.layers.Layer) -> keras.Model:
    words = keras.Input(shape=(None,), dtype="string", name="words")
    pooled = keras.layers.GlobalAveragePooling1D(name="mean")(layer(words))
    return keras.Model(words, keras.layers.Dense(1, activation="sigmoid", name="label")(pooled))


def test_the_layer_maps_words_to_the_rows_of_e_and_unknown_words_to_zeros(trained_model_dir, export_base):
    layer = load_word_vectors_layer(export_base)
    embeddings, words = checkpoint_embeddings(trained_model_dir), vocabulary_words(trained_model_dir)
    inputs = tf.constant([["king", "unicorn", ""]])
    # StringLookup gives king the id words.index("king") + 2 (0 is padding, 1 unknown); the Embedding's row there
    # is E's row for king, and both extra rows are zero.
    np.testing.assert_array_equal(layer(inputs).numpy()[0],
                                  [embeddings[words.index("king")], [0.0, 0.0], [0.0, 0.0]])
    assert layer.compute_mask(inputs).numpy().tolist() == [[True, True, False]]
    np.testing.assert_array_equal(layer.word_vectors, embeddings)


def test_the_layer_reads_the_same_vectors_from_a_checkpoint_as_from_an_export(trained_model_dir, export_base):
    from_checkpoint = load_word_vectors_layer(trained_model_dir)
    np.testing.assert_array_equal(from_checkpoint.word_vectors, load_word_vectors_layer(export_base).word_vectors)
    np.testing.assert_array_equal(from_checkpoint.lookup.get_vocabulary()[2:], vocabulary_words(trained_model_dir))


def test_words_are_standardised_as_in_training_unless_the_lookup_is_exact(trained_model_dir, export_base):
    embeddings, words = checkpoint_embeddings(trained_model_dir), vocabulary_words(trained_model_dir)
    king = embeddings[words.index("king")]
    inputs = tf.constant([["King", "KING", "king"]])
    np.testing.assert_array_equal(load_word_vectors_layer(export_base)(inputs).numpy()[0], [king, king, king])
    exact = load_word_vectors_layer(export_base, exact_lookup=True)
    np.testing.assert_array_equal(exact(inputs).numpy()[0], [[0.0, 0.0], [0.0, 0.0], king])


def test_the_config_round_trips():
    layer = word_vectors_layer(["king", "queen", "cat"], np.eye(3, 2), trainable=True, name="vectors",
                               exact_lookup=True)
    rebuilt = WordVectors.from_config(layer.get_config())
    assert rebuilt.get_config() == layer.get_config()
    assert (rebuilt.vocabulary_size, rebuilt.embedding_dim, rebuilt.name, rebuilt.trainable, rebuilt.exact_lookup) == (
        3, 2, "vectors", True, True)


@pytest.mark.parametrize("trainable", [False, True], ids=["frozen", "trainable"])
def test_a_classifier_trains_on_the_layer_and_round_trips_as_a_keras_file(trained_model_dir, export_base,
                                                                         tmp_path, trainable):
    keras.utils.set_random_seed(1)
    embeddings, words = checkpoint_embeddings(trained_model_dir), vocabulary_words(trained_model_dir)
    model = classifier(load_word_vectors_layer(export_base, trainable=trainable))
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="binary_crossentropy")
    dense_before = model.get_layer("label").get_weights()[0].copy()
    model.fit(tokens(TEXTS), LABELS, epochs=5, batch_size=8, verbose=0)
    assert not np.array_equal(model.get_layer("label").get_weights()[0], dense_before)  # fit did train.

    after = model.get_layer("word_vectors").word_vectors
    unused = [words.index(word) for word in UNUSED_WORDS]
    np.testing.assert_array_equal(after[unused], embeddings[unused])
    if trainable:
        king = words.index("king")
        assert np.abs(after[king] - embeddings[king]).max() > 1e-3
    else:
        np.testing.assert_array_equal(after, embeddings)

    model.save(tmp_path / "classifier.keras")
    loaded = keras.saving.load_model(tmp_path / "classifier.keras")
    probe = tokens(["the queen and the king", "a dog in the garden", "unicorn"])
    np.testing.assert_array_equal(loaded.predict(probe, verbose=0), model.predict(probe, verbose=0))
    assert loaded.get_layer("word_vectors").trainable == trainable
    # Reloaded, the model trains the same variables: a frozen E stays frozen.
    assert [v.path for v in loaded.trainable_variables] == [v.path for v in model.trainable_variables]
    np.testing.assert_array_equal(loaded.get_layer("word_vectors").word_vectors, after)


def test_tfsm_layer_calls_the_export_for_inference(trained_model_dir, export_base):
    version = next(export_base.iterdir())
    layer = keras.layers.TFSMLayer(str(version), call_endpoint="serving_default")
    outputs = layer(tf.constant(["queen", "unicorn"]))
    queen = vocabulary_words(trained_model_dir).index("queen")
    np.testing.assert_array_equal(outputs["embeddings"].numpy(), [checkpoint_embeddings(trained_model_dir)[queen],
                                                                 [0.0, 0.0]])
    assert outputs["in_vocabulary"].numpy().tolist() == [True, False]


# --- The README's first Keras recipe: the export alone, in a process where this repository is not importable ---

RECIPE_START, RECIPE_END = "<!-- keras-recipe:start -->", "<!-- keras-recipe:end -->"

NOT_IMPORTABLE = """
import json
import sys

try:
    import model  # This repository's package: it must not be importable where the recipe runs.
    repository_importable = True
except ModuleNotFoundError:
    repository_importable = False
print("RESULT", json.dumps({"repository_importable": repository_importable, "path": sys.path}))
"""

REPORT = """
print("RESULT", json.dumps({
    "trainable_shapes": [list(weight.shape) for weight in embed.trainable_weights],
    "E": keras.ops.convert_to_numpy(embed.weights[0]).tolist(),
    "predictions": classifier.predict(tf.constant(["King", "king", "unicorn"]), verbose=0).ravel().tolist(),
}))
"""

# Keras 3.15's TFSMLayer names E "E:0", which its optimizers refuse as a scope for slot variables (Adam's moments).
ADAM = """
classifier.compile(optimizer="adam", loss="binary_crossentropy")
try:
    classifier.fit(tf.constant(["King"]), np.array([1]), epochs=1, verbose=0)
    adam = "trains"
except ValueError as error:
    adam = str(error)
print("RESULT", json.dumps({"adam": adam}))
"""


def readme_recipe(export: str, trainable: bool) -> str:
    """The README's first Keras recipe, reading `export`, with E trainable or frozen."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    recipe = text[text.index(RECIPE_START):text.index(RECIPE_END)].split("```python\n", 1)[1].split("```", 1)[0]
    assert 'trainable=True' in recipe and re.search(r'^export = "[^"]+"', recipe, flags=re.MULTILINE), recipe
    recipe = re.sub(r'^export = "[^"]+"', f"export = {export!r}", recipe, flags=re.MULTILINE)
    return recipe if trainable else recipe.replace("trainable=True", "trainable=False")


def test_the_readmes_first_recipe_fine_tunes_or_freezes_e_from_the_export_alone(trained_model_dir, export_base,
                                                                              tmp_path):
    version = str(next(export_base.iterdir()))
    script = tmp_path / "recipe.py"
    script.write_text("\n".join([NOT_IMPORTABLE, readme_recipe(version, trainable=True), REPORT, ADAM,
                                 readme_recipe(version, trainable=False), REPORT]), encoding="utf-8")
    # Another directory, and no PYTHONPATH: only what a user of the export has.
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=environment, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    where, tuned, adam, frozen = [json.loads(line.split(" ", 1)[1]) for line in result.stdout.splitlines()
                                  if line.startswith("RESULT ")]
    assert not where["repository_importable"] and str(ROOT) not in where["path"]

    embeddings, words = checkpoint_embeddings(trained_model_dir), vocabulary_words(trained_model_dir)
    # Fine-tuned: E (19 x 2) is the layer's one trainable weight, and fit moved exactly the rows of the four
    # training words, "King" standing for king.
    assert tuned["trainable_shapes"] == [list(embeddings.shape)]
    moved = np.flatnonzero(np.abs(np.array(tuned["E"]) - embeddings).max(axis=1))
    assert sorted(words[row] for row in moved) == ["cat", "dog", "king", "queen"]
    king, same_king, unicorn = tuned["predictions"]
    assert king == same_king != unicorn
    # Frozen: nothing of E trains.
    assert frozen["trainable_shapes"] == []
    np.testing.assert_array_equal(np.array(frozen["E"], np.float32), embeddings)
    # If this fails, Keras now fine-tunes a TFSMLayer with Adam: drop the README's note on optimizers.
    assert "is not a valid scope name" in adam["adam"], adam
