"""Nearest neighbours by cosine similarity over E, batched in TensorFlow."""

import tensorflow as tf


def unit_rows(matrix: tf.Tensor) -> tf.Tensor:
    """Each row scaled to length 1 (an all-zero row stays zero)."""
    return tf.math.l2_normalize(matrix, axis=-1)


def nearest_neighbours(embeddings: tf.Tensor, query_ids: tf.Tensor, k: int | tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The k ids most similar to each query id by cosine, the query itself excluded, and their similarities.

    k may be a tensor (the export's `nearest` signature takes it as an input); it is clipped to [0, V - 1].
    """
    unit = unit_rows(tf.convert_to_tensor(embeddings))
    similarities = tf.matmul(tf.gather(unit, query_ids), unit, transpose_b=True)
    # Cosines lie in [-1, 1]; subtracting 3 puts the word itself below every other word.
    own = tf.one_hot(query_ids, tf.shape(unit)[0], on_value=-3.0, off_value=0.0)
    scores, ids = tf.math.top_k(similarities + own, k=tf.clip_by_value(tf.cast(k, tf.int32), 0, tf.shape(unit)[0] - 1))
    return ids, scores
