"""The founding network: word id -> E (Embedding, no activation) -> W (dense softmax over the vocabulary)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="word2vec")
class ContextSoftmax(keras.layers.Layer):
    """A Dense(V, softmax) layer whose kernel is stored one row per output word (V x D).

    The maths is Keras' Dense with a softmax: softmax(h @ kernel^T + bias). Storing the kernel transposed
    lets training gather and update the rows of just the words in a batch, as word2vec does with its
    output matrix, instead of touching all V columns.

    Args:
        units: V, the number of output words.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        # word2vec starts its output matrix at zero; E's random start breaks the symmetry.
        self.kernel = self.add_weight(name="kernel", shape=(self.units, input_shape[-1]), initializer="zeros")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, hidden):
        return keras.ops.softmax(keras.ops.matmul(hidden, keras.ops.transpose(self.kernel)) + self.bias)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="word2vec")
class SkipGram(keras.Model):
    """Skip-gram word2vec as a functional Keras model: `word_ids -> E -> W -> softmax`.

    Calling it on a batch of word ids returns, for each, a probability distribution over the words likely
    to appear around it. E is what users keep; W exists to train E and stays in the training checkpoint.

    Args:
        vocabulary_size: V, the number of words.
        embedding_dim: D, the size of each word vector.
        seed: seeds E's initial values.

    Example:
    >>> model = SkipGram(vocabulary_size=10, embedding_dim=2)
    >>> model(tf.constant([3])).shape
    TensorShape([1, 10])
    """

    def __init__(self, vocabulary_size: int, embedding_dim: int, seed: int = 1, **kwargs):
        # === Layers ===
        # word2vec's start for E: uniform in [-0.5 / D, 0.5 / D].
        limit = 0.5 / embedding_dim
        embedding = keras.layers.Embedding(
            vocabulary_size,
            embedding_dim,
            embeddings_initializer=keras.initializers.RandomUniform(-limit, limit, seed=seed),
            name="E",
        )
        context = ContextSoftmax(vocabulary_size, name="W")

        # === Functional model ===
        word_ids = keras.Input(shape=(), dtype="int32", name="word_ids")
        outputs = context(embedding(word_ids))
        super().__init__(inputs=word_ids, outputs=outputs, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.seed = seed

    @property
    def embeddings(self) -> tf.Variable:
        """E, V x D."""
        return self.get_layer("E").embeddings.value

    @property
    def context_weights(self) -> tf.Variable:
        """W, V x D: one row per output word."""
        return self.get_layer("W").kernel.value

    @property
    def context_bias(self) -> tf.Variable:
        """W's bias, V."""
        return self.get_layer("W").bias.value

    def get_config(self):
        return {
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "seed": self.seed,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
