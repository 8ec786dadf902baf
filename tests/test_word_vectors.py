"""E imported into another Keras model: raw strings in, trained vectors out, frozen or trainable, saved as .keras."""

import keras
import numpy as np
import pytest
import tensorflow as tf

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


def test_the_config_round_trips():
    layer = word_vectors_layer(["king", "queen", "cat"], np.eye(3, 2), trainable=True, name="vectors")
    rebuilt = WordVectors.from_config(layer.get_config())
    assert rebuilt.get_config() == layer.get_config()
    assert (rebuilt.vocabulary_size, rebuilt.embedding_dim, rebuilt.name, rebuilt.trainable) == (3, 2, "vectors", True)


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
