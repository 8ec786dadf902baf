"""Analogy accuracy ("a is to b as c is to ?") by 3CosAdd, question for question as gensim's
`KeyedVectors.evaluate_word_analogies` scores it, but batched: one matrix product and one top-k in
TensorFlow per batch of questions.

gensim's rules, kept here: only the first `restrict_vocab` words are searched; a question with any of its four
words outside them is skipped (counted, not scored); words match whatever their case, the most frequent spelling
standing for all (by training's standardisation, lowercase, where gensim upper-cases: the same matching wherever
lower and upper case pair letters one to one, as in every standard file); the three question words are never
the answer; the total is correct / scored over all sections. An exact lookup matches words as given.
"""

import dataclasses
import pathlib

import numpy as np

from errors import UserError
from evaluation.vectors import SearchedVocabulary, WordVectors

# gensim asks most_similar for its 5 best candidates (the question words removed), then takes the first whose
# upper-cased form is not a question word; failing that, the last of the five.
CANDIDATES = 5


@dataclasses.dataclass(frozen=True)
class AnalogySection:
    name: str
    correct: int
    scored: int

    @property
    def accuracy(self) -> float:
        """correct / scored, and 0.0 for a section with nothing scored (as gensim reports it)."""
        return self.correct / self.scored if self.scored else 0.0


@dataclasses.dataclass(frozen=True)
class AnalogyResult:
    """Per-section counts; `questions` well-formed question lines, of which `skipped` had a word outside the
    searched vocabulary."""

    sections: tuple[AnalogySection, ...]
    questions: int
    skipped: int
    restrict_vocab: int | None

    @property
    def correct(self) -> int:
        return sum(section.correct for section in self.sections)

    @property
    def scored(self) -> int:
        return sum(section.scored for section in self.sections)

    @property
    def accuracy(self) -> float:
        return self.correct / self.scored if self.scored else 0.0

    def to_json(self) -> dict:
        return {
            "accuracy": self.accuracy, "correct": self.correct, "scored": self.scored, "questions": self.questions,
            "skipped": self.skipped, "restrict_vocab": self.restrict_vocab,
            "sections": [{**dataclasses.asdict(section), "accuracy": section.accuracy} for section in self.sections],
        }


Questions = list[tuple[str, ...]]


def read_analogy_questions(path: str | pathlib.Path) -> list[tuple[str, Questions]]:
    """The sections of a questions-words.txt file: `: name` lines, then `a b c expected` lines.

    As in gensim, a line that is not four words is skipped, and a question before any section is an error.
    """
    sections: list[tuple[str, Questions]] = []
    try:
        with open(path, "rb") as questions_file:
            for line_number, raw_line in enumerate(questions_file, start=1):
                line = raw_line.decode("utf-8")
                if line.startswith(": "):
                    sections.append((line.lstrip(": ").strip(), []))
                elif not sections:
                    raise UserError(f"{path}:{line_number}: a question before the first ': section' line")
                elif len(words := line.split()) == 4:
                    sections[-1][1].append(tuple(words))
    except OSError as error:
        raise UserError(f"cannot read the analogy file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise UserError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    if not any(questions for _, questions in sections):
        raise UserError(f"{path} holds no analogy questions (lines of four words under ': section' lines)")
    return sections


def answer_analogies(unit: np.ndarray, canonical_ids: np.ndarray, questions: np.ndarray,
                     batch_size: int = 512) -> np.ndarray:
    """The predicted id for each question [a, b, c] (ids into `unit`): the word nearest by cosine to
    b - a + c, never a, b or c themselves nor another spelling of them.

    Args:
        unit: [searched words, dim] unit vectors.
        canonical_ids: for each searched id, the id owning its key (see SearchedVocabulary).
        questions: int [n, 3] the ids of a, b and c (owners of their keys).
    Returns:
        int [n] predicted ids (owners of their keys), -1 where no word is left to predict.
    """
    import tensorflow as tf

    predictions = np.full(len(questions), -1)
    candidates = min(CANDIDATES, unit.shape[0])
    # When no key has a second spelling (always so for this project's lowercased vocabularies), gensim's first
    # candidate that is not a question word is simply the best word once the question words are set aside: one
    # argmax instead of a top-k, which on CPU costs more than the matrix product itself. Training scores the
    # analogies at every epoch end, so this matters: `evaluate.py` on a 5-epoch gcide model with the standard
    # files went from 4.0 s to 3.6 s (whole process, same scores).
    one_spelling_per_key = bool(np.array_equal(canonical_ids, np.arange(len(canonical_ids))))
    unit_tensor = tf.constant(unit, tf.float32)
    for start in range(0, len(questions), batch_size):
        batch = questions[start:start + batch_size]
        rows = np.arange(len(batch))[:, None]
        first, second, third = (tf.gather(unit_tensor, batch[:, column]) for column in range(3))
        targets = second - first + third
        scores = tf.matmul(targets, unit_tensor, transpose_b=True)
        question_words = np.stack(np.broadcast_arrays(rows, batch), axis=-1).reshape(-1, 2)
        scores = tf.tensor_scatter_nd_update(scores, question_words, tf.fill([len(question_words)], -np.inf))
        if one_spelling_per_key:
            sorted_words = np.sort(batch, axis=1)
            distinct_question_words = 1 + (np.diff(sorted_words, axis=1) != 0).sum(axis=1)
            best = tf.argmax(scores, axis=1, output_type=tf.int64).numpy()
            predictions[start:start + len(batch)] = np.where(unit.shape[0] > distinct_question_words, best, -1)
            continue
        best_scores, best = (tensor.numpy() for tensor in tf.math.top_k(scores, k=candidates))
        usable = np.isfinite(best_scores)
        owners = canonical_ids[best]
        allowed = usable & (owners[:, :, None] != batch[:, None, :]).all(axis=2)
        pick = np.where(allowed.any(axis=1), allowed.argmax(axis=1), usable.sum(axis=1) - 1)
        predictions[start:start + len(batch)] = np.where(usable.any(axis=1), owners[rows[:, 0], pick], -1)
    return predictions


@dataclasses.dataclass(frozen=True)
class AnalogyQuestions:
    """The questions of a questions-words.txt file looked up once in a vocabulary, ready to score any vectors of
    those words: what training scores at every epoch end without reading the file again.

    Args:
        sections: the section names, in file order.
        section_of: int [questions] the section of each well-formed question.
        ids: int [questions, 4] the ids of a, b, c and the expected word (owners of their keys), -1 outside
            the searched words.
        canonical_ids: for each searched id, the id owning its key (see SearchedVocabulary).
        restrict_vocab: how many of the most frequent words are searched (None: all).
    """

    sections: tuple[str, ...]
    section_of: np.ndarray
    ids: np.ndarray
    canonical_ids: np.ndarray
    restrict_vocab: int | None

    @classmethod
    def prepare(cls, words: tuple[str, ...], path: str | pathlib.Path, restrict_vocab: int | None = 30000,
                exact_lookup: bool = False) -> "AnalogyQuestions":
        """Reads `path` and looks its words up among the first `restrict_vocab` of `words` (id order),
        standardised (or as given with `exact_lookup`)."""
        sections = read_analogy_questions(path)
        searched = SearchedVocabulary.of_words(words, restrict_vocab, exact_lookup)
        all_questions = [question for _, questions in sections for question in questions]
        section_of = np.repeat(np.arange(len(sections)), [len(questions) for _, questions in sections])
        ids = searched.ids(searched.keys_of(np.array(all_questions, dtype=str).reshape(-1, 4)))
        return cls(tuple(name for name, _ in sections), section_of, ids, searched.canonical_ids, restrict_vocab)

    def score(self, vectors: WordVectors, batch_size: int = 512) -> AnalogyResult:
        """3CosAdd accuracy of `vectors` (the same words, in the same order, as prepared), per section and in total."""
        answerable = (self.ids >= 0).all(axis=1)
        predictions = answer_analogies(vectors.unit_rows(self.restrict_vocab), self.canonical_ids,
                                       self.ids[answerable, :3], batch_size)
        correct = predictions == self.ids[answerable, 3]
        scored_per_section = np.bincount(self.section_of[answerable], minlength=len(self.sections))
        correct_per_section = np.bincount(self.section_of[answerable], weights=correct, minlength=len(self.sections))
        return AnalogyResult(
            sections=tuple(AnalogySection(name, int(right), int(scored)) for name, right, scored
                           in zip(self.sections, correct_per_section, scored_per_section)),
            questions=len(self.ids),
            skipped=int((~answerable).sum()),
            restrict_vocab=self.restrict_vocab,
        )


def evaluate_analogies(vectors: WordVectors, path: str | pathlib.Path, restrict_vocab: int | None = 30000,
                       exact_lookup: bool = False, batch_size: int = 512) -> AnalogyResult:
    """3CosAdd accuracy on a questions-words.txt file, per section and in total, searching the first
    `restrict_vocab` words (None: all); words are matched standardised, or as given with `exact_lookup`."""
    return AnalogyQuestions.prepare(vectors.words, path, restrict_vocab, exact_lookup).score(vectors, batch_size)
