"""Evaluates word vectors: analogy accuracy, word-similarity correlation and nearest neighbours.

    python evaluate.py --model-dir runs/default
    python evaluate.py --vectors gensim_vectors.txt --restrict-vocab 30000
    python evaluate.py --model-dir runs/default --neighbours king water --top 10
    python evaluate.py --model-dir runs/default --analogies my-questions.txt --similarity my-pairs.tsv --json out.json

Without --analogies, --similarity or --neighbours it runs the standard three files (questions-words.txt,
wordsim353.tsv, simlex999.txt) that an installed gensim ships; nothing is downloaded. The scores are
gensim's `evaluate_word_analogies` / `evaluate_word_pairs`, question for question.
"""

import argparse
import json
import pathlib
import sys

from cli import FlagParser, import_tensorflow_quietly, run_entry_point
from errors import UserError
from evaluation import ANALOGY_RESTRICT_VOCAB, SIMILARITY_RESTRICT_VOCAB
from evaluation.data_files import ANALOGIES, SIMLEX999, WORDSIM353
from storage import write_text_atomically

NEIGHBOURS = 8  # neighbours shown per --neighbours word


def flag_parser() -> argparse.ArgumentParser:
    parser = FlagParser(description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", metavar="DIR",
                        help="a model directory trained by train.py (E from its latest checkpoint, or see --checkpoint)")
    source.add_argument("--vectors", metavar="PATH",
                        help="a word2vec file of vectors (text or binary), e.g. gensim's save_word2vec_format")
    parser.add_argument("--checkpoint", choices=["latest", "best"], default="latest",
                        help="with --model-dir: latest, or best (the best epoch's, kept by train.py --keep-best)")
    analogies = parser.add_argument("--analogies", metavar="PATH",
                                    help="an analogy file in questions-words.txt format")
    similarity = parser.add_argument("--similarity", nargs="+", metavar="PATH",
                                     help="word-pair files: word<TAB>word<TAB>score, # comments")
    parser.add_argument("--neighbours", nargs="+", metavar="WORD", help="show the nearest neighbours of these words")
    parser.add_argument("--top", type=int, default=NEIGHBOURS, metavar="N", help="neighbours per --neighbours word")
    parser.add_argument("--restrict-vocab", type=int, default=ANALOGY_RESTRICT_VOCAB, metavar="N",
                        help="analogies search only this many most frequent words (0: all)")
    parser.add_argument("--similarity-restrict-vocab", type=int, default=SIMILARITY_RESTRICT_VOCAB, metavar="N",
                        help="word pairs use only this many most frequent words (0: all)")
    parser.add_argument("--exact-lookup", action="store_true",
                        help="match words exactly as given, not standardised (lowercased, NFC) as in training")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    # Shown in --help: what runs when no --analogies, --similarity or --neighbours is given.
    when = "when none of --analogies, --similarity, --neighbours is given"
    analogies.shown_default = f"gensim's {ANALOGIES}, {when}"
    similarity.shown_default = f"gensim's {WORDSIM353} and {SIMLEX999}, {when}"
    return parser


def default_files() -> tuple[pathlib.Path, list[pathlib.Path]]:
    """gensim's bundled questions-words.txt, wordsim353.tsv and simlex999.txt."""
    from evaluation.data_files import gensim_test_data

    paths = [gensim_test_data(name) for name in (ANALOGIES, WORDSIM353, SIMLEX999)]
    if None in paths:
        raise UserError("no evaluation files given and gensim's bundled test files were not found: "
                        "pass --analogies / --similarity, or pip install -r requirements-dev.txt")
    return paths[0], paths[1:]


def main() -> int:
    flags = flag_parser().parse_args()
    return run_entry_point(lambda: run(flags), debug=flags.debug)


def run(flags: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    from evaluation.analogies import evaluate_analogies
    from evaluation.neighbours import nearest_neighbours
    from evaluation.similarity import evaluate_word_pairs
    from evaluation.vectors import load_model_directory, load_word2vec_text

    for name in ("restrict_vocab", "similarity_restrict_vocab", "top"):
        if getattr(flags, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} must be 0 or more")
    analogies, similarity = flags.analogies, flags.similarity or []
    if not (analogies or similarity or flags.neighbours):
        analogies, similarity = default_files()
    vectors = (load_model_directory(flags.model_dir, flags.checkpoint) if flags.model_dir
               else load_word2vec_text(flags.vectors))
    lookup = "exact" if flags.exact_lookup else "standardized"
    print(f"vectors: {flags.model_dir or flags.vectors} ({len(vectors.words):,} words, dimension {vectors.dim}; "
          f"words looked up {'exactly as given' if flags.exact_lookup else 'lowercased and NFC-normalised, as in training'})")
    # Every key is always there, null for what was not asked for, so a reader of the JSON needs no key checks.
    results: dict = {"vectors": str(flags.model_dir or flags.vectors), "words": len(vectors.words), "dim": vectors.dim,
                     "lookup": lookup, "analogies": None, "similarity": None, "neighbours": None}

    if analogies:
        searched = clipped(flags.restrict_vocab, len(vectors.words), "--restrict-vocab")
        analogy = evaluate_analogies(vectors, analogies, searched, flags.exact_lookup)
        print(f"analogies {pathlib.Path(analogies).name} (3CosAdd, {searched:,} words searched): "
              f"{analogy.accuracy:.4f} = {analogy.correct:,}/{analogy.scored:,}; "
              f"{analogy.skipped:,} of {analogy.questions:,} questions skipped (out of vocabulary)")
        for section in analogy.sections:
            print(f"  {section.name:<30} {section.accuracy:.4f} = {section.correct:,}/{section.scored:,}")
        results["analogies"] = {"file": str(analogies), **analogy.to_json()}

    if similarity:
        results["similarity"] = []
        restrict = min(flags.similarity_restrict_vocab or len(vectors.words), len(vectors.words))
        for path in similarity:
            pairs = evaluate_word_pairs(vectors, path, restrict, flags.exact_lookup)
            print(f"{pathlib.Path(path).name}: Spearman {pairs.spearman:.4f}, Pearson {pairs.pearson:.4f} over "
                  f"{pairs.pairs:,} pairs; {pairs.out_of_vocabulary:,} pairs out of vocabulary")
            results["similarity"].append({"file": str(path), **pairs.to_json()})

    if flags.neighbours:
        results["neighbours"] = nearest_neighbours(vectors, flags.neighbours, flags.top,
                                                   exact_lookup=flags.exact_lookup)
        for word, neighbours in results["neighbours"].items():
            listed = "(not in the vocabulary)"
            if neighbours is not None:
                listed = ", ".join(f"{other} {score:.3f}" for other, score in neighbours)
            print(f"{word}: {listed}")

    if flags.json:
        write_text_atomically(pathlib.Path(flags.json), json.dumps(results, indent=2) + "\n", "the results")
    return 0


def clipped(restrict_vocab: int, vocabulary_size: int, flag: str) -> int:
    """The number of words an evaluation searches: `restrict_vocab` (0: all) up to the vocabulary's size, saying
    so when a larger value is clipped."""
    if restrict_vocab > vocabulary_size:
        print(f"note: {flag} {restrict_vocab:,} is more than the {vocabulary_size:,} words there are: "
              f"searching all {vocabulary_size:,}")
    return min(restrict_vocab or vocabulary_size, vocabulary_size)


if __name__ == "__main__":
    sys.exit(main())
