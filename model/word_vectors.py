"""E as a layer for other Keras models: raw word strings in, their trained vectors out.

    layer = load_word_vectors_layer("exports/word2vec/12000", trainable=False)
    tokens = keras.Input(shape=(None,), dtype="string")      # words, padded with ""
    pooled = keras.layers.GlobalAveragePooling1D()(layer(tokens))
    classifier = keras.Model(tokens, keras.layers.Dense(1, activation="sigmoid")(pooled))

Words are standardised as training standardised its text (lowercased and NFC-normalised: `King` finds king)
unless the layer is made with `exact_lookup=True`. A model using the layer saves to a `.keras` file; loading it needs this module
imported (it registers the layer). Keras can also call the export directly, with no code from this project:
`keras.layers.TFSMLayer(path, call_endpoint="serving_default", trainable=True)` returns {"embeddings",
"in_vocabulary"} for a batch of words, with E as its trainable weight.
"""

import pathlib
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from data_pipeline.tokenize import standardize
from errors import UserError

PADDING_TOKEN = ""
# StringLookup puts the padding token at index 0 and its one out-of-vocabulary index at 1, so word i of the
# export is row i + 2 of the Embedding. Both extra rows start at zero: padding is masked, and an unknown word
# adds nothing, as in the export's serving signature.
FIRST_WORD_INDEX = 2


@keras.saving.register_keras_serializable(package="word2vec")
class WordVectors(keras.layers.Layer):
    """String tokens of any shape in, their vectors out (shape + [D]), with a mask that hides the padding "".

    A `StringLookup` (the vocabulary) in front of an `Embedding` named "E". The vocabulary is saved as a file
    in a `.keras` archive and the vectors as weights, so neither bloats the config. Build one filled with
    trained vectors with `word_vectors_layer` or `load_word_vectors_layer`.

    Args:
        vocabulary_size: V, the number of words (without padding and unknown).
        embedding_dim: D, the size of each vector.
        exact_lookup: look tokens up as given; by default they are standardised as training standardised its
            text (`data_pipeline.tokenize.standardize`: lowercased, NFC), so `King` gets king's vector.
    """

    def __init__(self, vocabulary_size: int, embedding_dim: int, exact_lookup: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.exact_lookup = exact_lookup
        self.lookup = keras.layers.StringLookup(mask_token=PADDING_TOKEN, num_oov_indices=1, name="word_ids")
        self.embedding = keras.layers.Embedding(vocabulary_size + FIRST_WORD_INDEX, embedding_dim, mask_zero=True,
                                                name="E")
        # Keras applies `trainable=` (e.g. from a saved config) before these sublayers exist: passing it on makes
        # E's variable, built later, frozen too; otherwise a reloaded frozen layer would train.
        self.embedding.trainable = self.trainable

    def build(self, input_shape):
        self.embedding.build(input_shape)

    def call(self, words):
        return self.embedding(self.lookup(words if self.exact_lookup else standardize(words)))

    def compute_mask(self, words, mask=None):
        return keras.ops.not_equal(words, PADDING_TOKEN)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.embedding_dim)

    @property
    def word_vectors(self) -> np.ndarray:
        """The vectors of the vocabulary's words, in id order: E's rows, without the padding and unknown rows."""
        return self.embedding.get_weights()[0][FIRST_WORD_INDEX:]

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "embedding_dim": self.embedding_dim,
                "exact_lookup": self.exact_lookup}


def word_vectors_layer(words: Sequence[str], vectors: np.ndarray, trainable: bool = False,
                       name: str = "word_vectors", exact_lookup: bool = False) -> WordVectors:
    """A `WordVectors` layer holding `vectors` for `words`.

    Args:
        words: the vocabulary in id order (row i of `vectors` is the vector of `words[i]`).
        vectors: E, V x D.
        trainable: whether training the model that uses the layer may change the vectors.
        name: the layer's name.
        exact_lookup: look tokens up as given instead of standardised as in training.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(words) != len(vectors):
        raise ValueError(f"expected one vector per word, got {len(words)} words and vectors of shape {vectors.shape}")
    layer = WordVectors(len(words), vectors.shape[1], exact_lookup, name=name)
    layer.lookup.set_vocabulary(list(words))
    layer.build((None,))
    extra_rows = np.zeros((FIRST_WORD_INDEX, vectors.shape[1]), np.float32)
    layer.embedding.set_weights([np.concatenate([extra_rows, vectors])])
    layer.trainable = trainable
    return layer


def load_word_vectors_layer(path: str | pathlib.Path, trainable: bool = False,
                            name: str = "word_vectors", exact_lookup: bool = False) -> WordVectors:
    """`word_vectors_layer` from an export or from a training run.

    Args:
        path: an export version directory (`base/<version>`), an export base (its highest version is used),
            or a model directory written by train.py (its latest checkpoint is read).
        trainable: whether training the model that uses the layer may change the vectors.
        name: the layer's name.
        exact_lookup: look tokens up as given instead of standardised as in training.
    """
    path = pathlib.Path(path)
    if (path / "checkpoints").is_dir():
        from exporting.trained_embeddings import read_trained_embeddings

        trained = read_trained_embeddings(path)
        return word_vectors_layer(trained.words, trained.vectors, trainable, name, exact_lookup)
    export = export_version(path)
    loaded = tf.saved_model.load(str(export))
    words = [word.decode("utf-8") for word in loaded.vocabulary().numpy().tolist()]
    return word_vectors_layer(words, loaded.embeddings.numpy(), trainable, name, exact_lookup)


def export_version(path: pathlib.Path) -> pathlib.Path:
    """`path` if it holds a SavedModel, else its highest numeric version that does."""
    if (path / "saved_model.pb").exists():
        return path
    versions = [child for child in path.iterdir() if child.name.isdigit() and (child / "saved_model.pb").exists()] \
        if path.is_dir() else []
    if not versions:
        raise UserError(f"{path} holds no export (saved_model.pb or numbered versions) and no checkpoints/")
    return max(versions, key=lambda child: int(child.name))
