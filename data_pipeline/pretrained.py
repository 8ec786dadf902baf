"""Pretrained vectors for a new model's E: the rows of the vocabulary's words that a word2vec file holds."""

import dataclasses
import pathlib

import numpy as np
import tensorflow as tf

from data_pipeline.tokenize import standardize
from data_pipeline.vocabulary import Vocabulary
from errors import UserError
from exporting.interchange import read_word2vec, word2vec_header


@dataclasses.dataclass(frozen=True)
class PretrainedRows:
    """The rows of E that start from a vectors file.

    Attributes:
        ids: the vocabulary ids found in the file, ascending, int64 [n].
        vectors: their vectors, float32 [n, D].
        by_lowercase: how many of them were found only under another capitalisation (the file's first, usually its
            most frequent, spelling): training standardises (lowercases) its tokens, pretrained files often do not.
        file_words: how many vectors the file holds.
    """

    ids: np.ndarray
    vectors: np.ndarray
    by_lowercase: int
    file_words: int

    def coverage(self, vocabulary: Vocabulary, path: str) -> str:
        """One line on how much of the vocabulary, and of the corpus's words, the file covers."""
        counts = np.asarray(vocabulary.counts, dtype=np.float64)
        share = counts[self.ids].sum() / max(counts.sum(), 1.0)
        lowercase = f", {self.by_lowercase:,} of them under another capitalisation" if self.by_lowercase else ""
        return (f"--init-vectors {path}: {len(self.ids):,} of the vocabulary's {len(vocabulary):,} words found "
                f"({len(self.ids) / len(vocabulary):.1%}, {share:.1%} of the corpus's words{lowercase}) among its "
                f"{self.file_words:,} vectors")


def vectors_dimension(path: str | pathlib.Path) -> int:
    """The vector size a word2vec file's first line gives, read without reading the vectors."""
    try:
        with open(path, "rb") as file:
            return word2vec_header(file, path)[1]
    except OSError as error:
        raise UserError(f"cannot read --init-vectors {path}: {error.strerror or error}") from None


def pretrained_rows(path: str | pathlib.Path, vocabulary: Vocabulary, embedding_dim: int) -> PretrainedRows:
    """The vectors of `vocabulary`'s words in the word2vec file at `path` (text or binary). A word is found under
    its own spelling, else under the file's first spelling that training's standardisation (lowercasing) turns into
    it. A file whose vectors are not
    `embedding_dim` long, or that is damaged, is a UserError; the dimension is checked before the vectors are read."""
    dim = vectors_dimension(path)
    if dim != embedding_dim:
        raise UserError(f"--init-vectors {path} holds vectors of {dim} numbers, but --dim is {embedding_dim}: "
                        f"pass --dim {dim}, or a file of {embedding_dim}-number vectors")
    ids = vocabulary.ids()
    # Python's lower() picks the candidates while streaming; training's own standardisation decides.
    read = read_word2vec(path, wanted=lambda word: word in ids or word.lower() in ids)
    keys = [key.decode("utf-8") for key in standardize(tf.constant(read.words, tf.string)).numpy().tolist()] \
        if read.words else []
    exact, lowercase = {}, {}
    for row, (word, key) in enumerate(zip(read.words, keys)):
        if word in ids:
            exact.setdefault(ids[word], row)
        elif key in ids:
            lowercase.setdefault(ids[key], row)
    rows = {**{index: row for index, row in lowercase.items() if index not in exact}, **exact}
    found = np.array(sorted(rows), dtype=np.int64)
    vectors = read.vectors[[rows[index] for index in found]] if rows else np.zeros((0, dim), np.float32)
    return PretrainedRows(found, vectors, len(rows) - len(exact), read.count)
