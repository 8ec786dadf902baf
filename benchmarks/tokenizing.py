"""What tokenising costs: lines/s and words/s of the tokeniser on a corpus, with and without standardisation.

    python benchmarks/tokenizing.py                      # the first 100,000 lines of gcide
    python benchmarks/tokenizing.py --corpus my.txt.gz --lines 20000

Tokenising is the first epoch's hot path (later epochs read cached ids). This times, in chunks of 2,048 lines as
training reads them, on one core's worth of tf.data (the chunks one after the other):

- `before`: lowercase and split on the old separator pattern `[^\\pL\\pN]+` (what the project did before NFC);
- `split only`: lowercase and split on today's default pattern, without NFC;
- `tokenize`: what training does now: lowercase, NFC, split on today's default pattern;

each on the corpus as it is, and on the same lines decomposed (NFD: every accented letter a base letter and a
combining mark, and one combining acute added after every fifth letter, so that every line takes NFC's slow path):
the worst case, text that is not NFC. Medians of --repeats passes; results as JSON on standard output.
"""

import argparse
import gzip
import itertools
import json
import pathlib
import statistics
import sys
import time
import unicodedata

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.train_runs import DEFAULT_CORPUS, existing_corpus
from cli import import_tensorflow_quietly, run_entry_point
from config import TOKEN_PATTERN

OLD_PATTERN = r"[^\pL\pN]+"


def flag_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="a text file, plain or .gz (default: gcide)")
    parser.add_argument("--lines", type=int, default=100_000, help="lines taken from the start of the corpus")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes over the lines; the median is reported")
    return parser


def decomposed(line: str) -> str:
    """The line in NFD, with a combining acute after every fifth letter: text NFC must work on."""
    letters = unicodedata.normalize("NFD", line)
    return "".join(character + ("\u0301" if index % 5 == 4 and character.isalpha() else "")
                   for index, character in enumerate(letters))


def timed_passes(tokenizer, chunks: list, repeats: int) -> float:
    """The median seconds of one pass tokenising every chunk (after one untimed pass that traces the function)."""
    for chunk in chunks:
        tokenizer(chunk)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for chunk in chunks:
            tokenizer(chunk).flat_values.numpy()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> int:
    flags = flag_parser().parse_args()
    return run_entry_point(lambda: run(flags))


def run(flags: argparse.Namespace) -> int:
    source = existing_corpus(flags.corpus)
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8", errors="replace") as text:
        lines = [line.rstrip("\n") for line in itertools.islice(text, flags.lines)]
    import_tensorflow_quietly()
    import tensorflow as tf

    from data_pipeline.normalization import nfc
    from data_pipeline.tokenize import tokenize

    def lowered(chunk: tf.Tensor) -> tf.Tensor:
        return tf.strings.lower(tf.strings.unicode_transcode(chunk, "UTF-8", "UTF-8", errors="replace"),
                                encoding="utf-8")

    tokenizers = {
        "before": tf.function(lambda chunk: tf.strings.split(tf.strings.regex_replace(lowered(chunk), OLD_PATTERN, " "))),
        "split only": tf.function(lambda chunk: tf.strings.split(tf.strings.regex_replace(lowered(chunk), TOKEN_PATTERN,
                                                                                         " "))),
        "tokenize": tf.function(lambda chunk: tokenize(chunk, TOKEN_PATTERN)),
    }
    nfc_lines = nfc(tf.constant(lines[:1000])).numpy()  # Checks the corpus decodes; NFC of NFC text is itself.
    del nfc_lines
    results = {"corpus": str(source), "lines": len(lines), "repeats": flags.repeats, "texts": {}}
    for name, text_lines in [("as is", lines), ("decomposed", [decomposed(line) for line in lines])]:
        chunks = [tf.constant(text_lines[start:start + 2048]) for start in range(0, len(text_lines), 2048)]
        words = sum(int(tf.size(tokenizers["tokenize"](chunk).flat_values)) for chunk in chunks)
        timings = {}
        for tokenizer_name, tokenizer in tokenizers.items():
            seconds = timed_passes(tokenizer, chunks, flags.repeats)
            timings[tokenizer_name] = {"seconds": seconds, "lines_per_second": len(lines) / seconds,
                                       "words_per_second": words / seconds}
        results["texts"][name] = {"words": words, "timings": timings,
                                  "tokenize_over_before": timings["tokenize"]["seconds"] / timings["before"]["seconds"]}
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
