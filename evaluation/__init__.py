"""Judging word vectors: analogy accuracy, word-similarity correlation and nearest neighbours, in NumPy.

The scores follow gensim's `KeyedVectors.evaluate_word_analogies` and `evaluate_word_pairs` question for
question, so that this project's vectors and gensim's can be compared by the same code. gensim itself is
never needed: only its bundled test files are used, when it is installed.
"""

# The words searched, as usually reported: analogy answers among the 30,000 most frequent words, and word pairs
# among the first 300,000 (gensim's default for evaluate_word_pairs). evaluate.py and the scores training logs
# at each epoch end both use them, so the two give the same figures for the same vectors.
ANALOGY_RESTRICT_VOCAB = 30000
SIMILARITY_RESTRICT_VOCAB = 300000
