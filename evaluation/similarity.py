"""Word-similarity correlation (WordSim-353, SimLex-999 and files like them), as gensim's
`KeyedVectors.evaluate_word_pairs` computes it: cosine of each pair against the human score, Spearman's rank
correlation (and Pearson's) over the pairs whose two words are in the first `restrict_vocab` words; the other
pairs are counted as out of vocabulary and left out.
"""

import dataclasses
import math
import pathlib

import numpy as np

from errors import UserError
from evaluation.vectors import SearchedVocabulary, WordVectors


@dataclasses.dataclass(frozen=True)
class SimilarityResult:
    """`pairs` scored pairs and `out_of_vocabulary` left out; correlations are NaN with fewer than two pairs
    or a constant column."""

    spearman: float
    pearson: float
    pairs: int
    out_of_vocabulary: int

    def to_json(self) -> dict:
        # JSON has no NaN: an undefined correlation is null.
        return {key: (None if isinstance(value, float) and math.isnan(value) else value)
                for key, value in dataclasses.asdict(self).items()}


def read_word_pairs(path: str | pathlib.Path, delimiter: str = "\t") -> tuple[list[tuple[str, str]], np.ndarray]:
    """The (word, word) pairs and human scores of a `word<TAB>word<TAB>score` file. As in gensim, lines
    starting with # are comments and lines of another shape are skipped."""
    pairs, scores = [], []
    try:
        with open(path, encoding="utf-8") as pairs_file:
            for line in pairs_file:
                if line.startswith("#"):
                    continue
                fields = line.split(delimiter)
                if len(fields) != 3:
                    continue
                try:
                    score = float(fields[2])
                except ValueError:
                    continue
                pairs.append((fields[0], fields[1]))
                scores.append(score)
    except OSError as error:
        raise UserError(f"cannot read the word-pairs file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise UserError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not pairs:
        shown = delimiter.replace("\t", "<TAB>")
        raise UserError(f"{path} holds no word pairs (lines 'word{shown}word{shown}score')")
    return pairs, np.asarray(scores, dtype=np.float64)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks (scipy's rankdata 'average')."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_group = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    group_of = np.cumsum(starts_group) - 1
    group_starts = np.flatnonzero(starts_group)
    group_sizes = np.diff(np.append(group_starts, len(values)))
    ranks = np.empty(len(values))
    ranks[order] = (group_starts + (group_sizes + 1) / 2)[group_of]
    return ranks


def pearson(first: np.ndarray, second: np.ndarray) -> float:
    if len(first) < 2:
        return math.nan
    first, second = first - first.mean(), second - second.mean()
    denominator = math.sqrt(float(first @ first) * float(second @ second))
    return float(first @ second) / denominator if denominator > 0 else math.nan


def spearman(first: np.ndarray, second: np.ndarray) -> float:
    return pearson(average_ranks(first), average_ranks(second))


@dataclasses.dataclass(frozen=True)
class WordPairs:
    """The pairs of a word-pairs file looked up once in a vocabulary, ready to score any vectors of those words.

    Args:
        ids: int [pairs, 2] the ids of both words (owners of their keys), -1 outside the first restrict_vocab.
        human: float64 [pairs] the file's scores.
    """

    ids: np.ndarray
    human: np.ndarray

    @classmethod
    def prepare(cls, words: tuple[str, ...], path: str | pathlib.Path, restrict_vocab: int | None = 300000,
                exact_lookup: bool = False, delimiter: str = "\t") -> "WordPairs":
        """Reads `path` and looks its words up among the first `restrict_vocab` of `words` (id order),
        standardised (or as given with `exact_lookup`)."""
        pairs, human = read_word_pairs(path, delimiter)
        searched = SearchedVocabulary.of_words(words, restrict_vocab, exact_lookup)
        return cls(searched.ids(searched.keys_of(np.array(pairs, dtype=str).reshape(-1, 2))), human)

    def score(self, vectors: WordVectors) -> SimilarityResult:
        """Spearman and Pearson correlation between the cosines of `vectors` (the same words, in the same order,
        as prepared) and the human scores."""
        known = (self.ids >= 0).all(axis=1)
        # In float64: float32 rounding can tie two pairs' cosines and move their ranks.
        first, second = (vectors.matrix[self.ids[known, column]].astype(np.float64) for column in range(2))
        lengths = np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1)
        cosines = np.einsum("ij,ij->i", first, second) / np.where(lengths > 0, lengths, 1.0)
        return SimilarityResult(spearman(self.human[known], cosines), pearson(self.human[known], cosines),
                                int(known.sum()), int((~known).sum()))


def evaluate_word_pairs(vectors: WordVectors, path: str | pathlib.Path, restrict_vocab: int | None = 300000,
                        exact_lookup: bool = False, delimiter: str = "\t") -> SimilarityResult:
    """Spearman and Pearson correlation between the vectors' cosines and the file's human scores; words are
    matched standardised (as in analogies.py), or as given with `exact_lookup`."""
    return WordPairs.prepare(vectors.words, path, restrict_vocab, exact_lookup, delimiter).score(vectors)
