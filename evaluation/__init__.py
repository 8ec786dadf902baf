"""Judging word vectors: analogy accuracy, word-similarity correlation and nearest neighbours, in NumPy.

The scores follow gensim's `KeyedVectors.evaluate_word_analogies` and `evaluate_word_pairs` question for
question, so that this project's vectors and gensim's can be compared by the same code. gensim itself is
never needed: only its bundled test files are used, when it is installed.
"""
