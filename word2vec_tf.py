"""word2vec skip-gram on TensorFlow and Keras; installed by `pip install .`, this file is the package's __init__.

Installed, the repository is one package, `word2vec_tf` (see setup.py): `word2vec_tf.model.word_vectors`,
`word2vec_tf.config`, ...; the commands word2vec-train, word2vec-export and word2vec-evaluate are train.py, export.py
and evaluate.py. In a clone, which runs as it is (`python train.py`), this module gives the same shortcuts.

    from word2vec_tf import load_word_vectors_layer

    layer = load_word_vectors_layer("exports/word2vec", trainable=True)   # E as a Keras layer
"""

# The Keras layer of model/word_vectors.py, imported on first use: `import word2vec_tf` does not load TensorFlow.
LAYER_NAMES = ("WordVectors", "load_word_vectors_layer", "word_vectors_layer")


def __getattr__(name: str):
    if name in LAYER_NAMES:
        from model import word_vectors  # Installed, setup.py makes this word2vec_tf.model.

        return getattr(word_vectors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
