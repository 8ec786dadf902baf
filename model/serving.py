"""What an export serves: E and the vocabulary behind string-in signatures, and nothing of W. Knows nothing of files."""

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from data_pipeline.tokenize import standardize, tokenize
from model.neighbours import nearest_neighbours

# An unknown word's vector: zeros, so it adds nothing to a sum and has cosine 0 with every word.
# Its `in_vocabulary` output is False, so a caller can tell it from a trained vector.
UNKNOWN_WORD_ID = -1


class WordVectorServer(tf.Module):
    """E (V x D) and its vocabulary with TF Serving signatures; the one variable it holds is E.

    Signatures (see `signatures()`):
        serving_default: words [None] string -> embeddings [None, D] float32, in_vocabulary [None] bool.
        nearest: words [None] string, k scalar int32 -> neighbours [None, k] string, scores [None, k] float32,
            in_vocabulary [None] bool (the k most cosine-similar other words; clipped to V - 1).
        sentences: sentences [None] string -> embeddings [None, D] float32, known_words [None] int32:
            each sentence tokenised as in training, its known words' vectors summed and divided by the square
            root of their number (TF Hub's sqrt-n combiner); a sentence with no known word gets zeros.

    `serving_default` and `nearest` standardise their words as training standardised its text (lowercase, see
    `data_pipeline.tokenize.standardize`) before looking them up, so "King" finds king's vector; with
    `exact_lookup` they look words up exactly as given. `sentences` always tokenises as training did.

    Args:
        words: the vocabulary in id order (row i of `vectors` is the vector of `words[i]`).
        vectors: E, V x D.
        token_pattern: the separator pattern training tokenised with, for the `sentences` signature.
        exact_lookup: look words up as given instead of standardised.
    """

    def __init__(self, words: Sequence[str], vectors: np.ndarray, token_pattern: str, exact_lookup: bool = False,
                 name: str = "word_vectors"):
        super().__init__(name=name)
        if len(words) != len(vectors):
            raise ValueError(f"{len(words)} words but {len(vectors)} vectors")
        self.embeddings = tf.Variable(vectors, dtype=tf.float32, name="E")
        self.token_pattern = token_pattern
        self.exact_lookup = exact_lookup
        self._words = tf.constant(list(words), tf.string)
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(self._words, tf.range(len(words), dtype=tf.int32)),
            default_value=UNKNOWN_WORD_ID,
        )

    def _ids_of(self, words: tf.Tensor) -> tf.Tensor:
        """Each word's id, -1 for a word outside the vocabulary."""
        return self._table.lookup(words if self.exact_lookup else standardize(words))

    def _vectors_of(self, word_ids: tf.Tensor) -> tf.Tensor:
        known = word_ids >= 0
        vectors = tf.gather(self.embeddings, tf.where(known, word_ids, 0))
        return tf.where(known[..., None], vectors, tf.zeros_like(vectors))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="words")])
    def embed(self, words: tf.Tensor) -> dict[str, tf.Tensor]:
        word_ids = self._ids_of(words)
        return {"embeddings": self._vectors_of(word_ids), "in_vocabulary": word_ids >= 0}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="words"),
                                  tf.TensorSpec([], tf.int32, name="k")])
    def nearest(self, words: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        word_ids = self._ids_of(words)
        known = word_ids >= 0
        neighbour_ids, scores = nearest_neighbours(self.embeddings, tf.where(known, word_ids, 0), k)
        # An unknown word has no neighbours: empty strings with score 0.
        neighbours = tf.where(known[:, None], tf.gather(self._words, neighbour_ids), "")
        return {"neighbours": neighbours, "scores": tf.where(known[:, None], scores, 0.0), "in_vocabulary": known}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentences")])
    def embed_sentences(self, sentences: tf.Tensor) -> dict[str, tf.Tensor]:
        word_ids = tf.ragged.map_flat_values(self._table.lookup, tokenize(sentences, self.token_pattern))
        known_ids = tf.ragged.boolean_mask(word_ids, word_ids >= 0)
        sums = tf.reduce_sum(tf.gather(self.embeddings, known_ids), axis=1)
        counts = tf.cast(known_ids.row_lengths(), tf.int32)
        embeddings = tf.math.divide_no_nan(sums, tf.sqrt(tf.cast(counts, tf.float32))[:, None])
        return {"embeddings": embeddings, "known_words": counts}

    @tf.function(input_signature=[])
    def vocabulary(self) -> tf.Tensor:
        """The words in id order: row i of `embeddings` is the vector of word i."""
        return self._words

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        return {
            "serving_default": self.embed.get_concrete_function(),
            "nearest": self.nearest.get_concrete_function(),
            "sentences": self.embed_sentences.get_concrete_function(),
        }
