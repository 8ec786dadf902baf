"""Trains gensim's skip-gram Word2Vec in a process of its own, so that its wall time and peak memory are measured
apart from this project's; the benchmark (compare_gensim.py) runs it.

    python benchmarks/gensim_word2vec.py --corpus corpus.txt --dim 100 --vectors vectors.txt --metrics-file m.json

It does what `Word2Vec(corpus_file=..., sg=1, ...)` does (build the vocabulary, then train) in two timed calls, so
that the training seconds leave out the vocabulary scan, as gensim's own words/s figure does. The vectors are
saved in the word2vec text format, which evaluate.py --vectors reads.

With --update-corpus it then continues the model on that corpus as gensim's online training does
(`build_vocab(update=True)`, then `train` at the model's own learning rates), and saves those vectors too.
"""

import argparse
import json
import logging
import pathlib
import sys
import time


def flag_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, help="a plain-text corpus, one sentence per line")
    parser.add_argument("--vectors", required=True, help="where the word2vec text file of vectors goes")
    parser.add_argument("--metrics-file", required=True, help="where the timings go, as JSON")
    parser.add_argument("--dim", type=int, default=100, help="vector_size")
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negatives", type=int, default=5)
    parser.add_argument("--sample", type=float, default=1e-3)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-vocab", type=int, default=0, help="max_final_vocab: keep the most frequent (0: all)")
    parser.add_argument("--update-corpus", help="then continue training on this corpus, adding its new words")
    parser.add_argument("--update-vectors", help="where the vectors after the update go (with --update-corpus)")
    return parser


def main() -> int:
    flags = flag_parser().parse_args()
    logging.basicConfig(level=logging.WARNING)
    from gensim.models import Word2Vec

    model = Word2Vec(vector_size=flags.dim, sg=1, window=flags.window, negative=flags.negatives, sample=flags.sample,
                     min_count=flags.min_count, epochs=flags.epochs, workers=flags.workers, seed=flags.seed,
                     max_final_vocab=flags.max_vocab or None)
    start = time.perf_counter()
    model.build_vocab(corpus_file=flags.corpus)
    vocabulary_done = time.perf_counter()
    model.train(corpus_file=flags.corpus, total_examples=model.corpus_count, total_words=model.corpus_total_words,
                epochs=model.epochs)
    training_done = time.perf_counter()
    model.wv.save_word2vec_format(flags.vectors, binary=False)
    metrics = {
        "vocabulary_seconds": vocabulary_done - start,
        "training_seconds": training_done - vocabulary_done,
        "save_seconds": time.perf_counter() - training_done,
        "corpus_words": model.corpus_total_words,
        "vocabulary_size": len(model.wv),
        "embedding_dim": flags.dim,
    }
    if flags.update_corpus:
        metrics["update"] = updated(model, flags.update_corpus, flags.update_vectors)
    pathlib.Path(flags.metrics_file).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return 0


def updated(model, corpus: str, vectors: str) -> dict:
    """Continues `model` on `corpus` (its new words reaching min_count added), saves the vectors; the timings."""
    words_before = len(model.wv)
    start = time.perf_counter()
    model.build_vocab(corpus_file=corpus, update=True)
    vocabulary_done = time.perf_counter()
    model.train(corpus_file=corpus, total_examples=model.corpus_count, total_words=model.corpus_total_words,
                epochs=model.epochs)
    training_done = time.perf_counter()
    model.wv.save_word2vec_format(vectors, binary=False)
    return {"vocabulary_seconds": vocabulary_done - start, "training_seconds": training_done - vocabulary_done,
            "corpus_words": model.corpus_total_words, "vocabulary_size": len(model.wv),
            "words_added": len(model.wv) - words_before}


if __name__ == "__main__":
    sys.exit(main())
