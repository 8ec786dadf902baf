"""Word vectors to evaluate: E from a training checkpoint, or a word2vec file (gensim's, for one)."""

import dataclasses
import pathlib
from collections.abc import Sequence

import numpy as np

from errors import UserError

EMBEDDING_VARIABLE = "E/.ATTRIBUTES/VARIABLE_VALUE"


@dataclasses.dataclass(frozen=True)
class WordVectors:
    """Words in id order (most frequent first, as restrict_vocab assumes) and their vectors, one row each.

    Args:
        words: the vocabulary in id order.
        matrix: float32 [len(words), dim].
    """

    words: tuple[str, ...]
    matrix: np.ndarray

    def __post_init__(self):
        if self.matrix.ndim != 2 or self.matrix.shape[0] != len(self.words):
            raise UserError(f"{len(self.words):,} words but vectors of shape {self.matrix.shape}: they do not match")

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def unit_rows(self, count: int | None = None) -> np.ndarray:
        """The first `count` rows (all by default) scaled to length 1 (an all-zero row stays zero), in float32."""
        rows = self.matrix[:count].astype(np.float32)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.where(norms > 0, norms, 1).astype(np.float32)


def standardized(words: Sequence[str]) -> np.ndarray:
    """The words as training's standardisation leaves them (`data_pipeline.tokenize.standardize`: lowercase), as a
    NumPy string array: the keys under which evaluation matches words, so that `King` finds the vector of king."""
    import tensorflow as tf

    from data_pipeline.tokenize import standardize

    if not len(words):
        return np.array([], dtype=str)
    keys = standardize(tf.constant([str(word) for word in words], tf.string)).numpy().tolist()
    return np.array([key.decode("utf-8") for key in keys], dtype=str)


@dataclasses.dataclass(frozen=True)
class SearchedVocabulary:
    """The words an evaluation may use, keyed as gensim keys them: the first `restrict_vocab` words, each under
    its standardised form (as training standardises text; gensim upper-cases, which groups the same words
    wherever lower and upper case pair letters one to one), where the most frequent spelling owns the key; or
    each under itself for an exact lookup.

    Args:
        keys: the distinct keys, sorted (for vectorised look-ups).
        key_ids: for each key, the id of the first (most frequent) word with that key.
        canonical_ids: for each searched id, the id that owns its key (itself unless a more frequent
            spelling of the same key comes first).
        exact_lookup: whether keys are the words as given rather than standardised.
    """

    keys: np.ndarray
    key_ids: np.ndarray
    canonical_ids: np.ndarray
    exact_lookup: bool

    @classmethod
    def of(cls, vectors: WordVectors, restrict_vocab: int | None, exact_lookup: bool = False) -> "SearchedVocabulary":
        return cls.of_words(vectors.words, restrict_vocab, exact_lookup)

    @classmethod
    def of_words(cls, words: tuple[str, ...], restrict_vocab: int | None,
                 exact_lookup: bool = False) -> "SearchedVocabulary":
        """The searched vocabulary of `words` (id order, most frequent first)."""
        words = words[:restrict_vocab]
        keys = np.array(list(words), dtype=str) if exact_lookup else standardized(words)
        unique_keys, first_ids, inverse = np.unique(keys, return_index=True, return_inverse=True)
        return cls(unique_keys, first_ids, first_ids[inverse].reshape(-1), exact_lookup)

    def keys_of(self, words: np.ndarray) -> np.ndarray:
        """The key of each word (an array of any shape): itself for an exact lookup, else standardised."""
        words = np.asarray(words, dtype=str)
        return words if self.exact_lookup else standardized(words.reshape(-1)).reshape(words.shape)

    def ids(self, keys: np.ndarray) -> np.ndarray:
        """The id owning each key (keys as `keys_of()` makes them), -1 for keys outside the searched words."""
        keys = np.asarray(keys, dtype=str)
        if not self.keys.size:
            return np.full(keys.shape, -1)
        positions = np.minimum(np.searchsorted(self.keys, keys), self.keys.size - 1)
        return np.where(self.keys[positions] == keys, self.key_ids[positions], -1)


def load_model_directory(model_dir: str | pathlib.Path, which: str = "latest") -> WordVectors:
    """E from the latest training checkpoint in `model_dir` (or, with `which="best"`, the best epoch's that
    train.py --keep-best kept in model_dir/best), with the words of `model_dir/vocab.tsv`."""
    import tensorflow as tf

    from data_pipeline.vocabulary import Vocabulary
    from training.model_directory import ModelDirectory
    from training.rounds import finish_committed_update

    root = pathlib.Path(model_dir)
    finish_committed_update(ModelDirectory(root))  # A new round's files, if a kill cut short moving them into place.
    checkpoints, vocabulary_path = root / ("best" if which == "best" else "checkpoints"), root / "vocab.tsv"
    # Not tf.train.latest_checkpoint, which globs the path: a folder named `runs [2024]` would hold no checkpoint.
    state = tf.train.get_checkpoint_state(str(checkpoints)) if checkpoints.is_dir() else None
    latest = state.model_checkpoint_path if state and tf.io.gfile.exists(f"{state.model_checkpoint_path}.index") \
        else None
    if which == "best" and latest is None:
        raise UserError(f"no best checkpoint in {checkpoints}: train with --keep-best SCORE to keep one")
    if latest is None or not vocabulary_path.exists():
        raise UserError(f"{root} holds no trained model (no checkpoint or no vocab.tsv): train one with train.py")
    words = Vocabulary.load(str(vocabulary_path)).words
    return WordVectors(words, np.asarray(tf.train.load_variable(latest, EMBEDDING_VARIABLE), dtype=np.float32))


def load_word2vec_text(path: str | pathlib.Path) -> WordVectors:
    """Reads a word2vec file: the text format (a `count dim` line, then `word v1 ... vdim` per line, as gensim's
    `save_word2vec_format(binary=False)` writes it) or the binary one, told apart by the content
    (exporting/interchange.py: read_word2vec)."""
    from exporting.interchange import read_word2vec

    read = read_word2vec(path)
    return WordVectors(read.words, read.vectors)
