"""Rebuilds data/wordnet_glosses.txt.gz, the embedded default corpus, from WordNet 3.0's data files.

The data files come from Debian's `wordnet-base` package (/usr/share/wordnet). Every synset line ends with
`| gloss`, where the gloss is a definition followed by example sentences in double quotes, separated by
semicolons. Each definition and each example becomes one line of the corpus, in file order.

    apt-get install wordnet-base
    python data/build_wordnet_corpus.py --wordnet-dir /usr/share/wordnet --output data/wordnet_glosses.txt.gz
"""

import argparse
import gzip
import pathlib
import re

PARTS_OF_SPEECH = ("noun", "verb", "adj", "adv")
EXAMPLE = re.compile(r'"([^"]+)"')


def gloss_sentences(gloss: str) -> list[str]:
    """Splits one gloss into its definition and its quoted example sentences."""
    examples = EXAMPLE.findall(gloss)
    definition = "; ".join(part.strip() for part in EXAMPLE.sub("", gloss).split(";") if part.strip())
    return [text.strip() for text in [definition, *examples] if text.strip()]


def corpus_lines(wordnet_dir: pathlib.Path) -> list[str]:
    lines = []
    for part_of_speech in PARTS_OF_SPEECH:
        with open(wordnet_dir / f"data.{part_of_speech}", encoding="utf-8") as data_file:
            for line in data_file:
                # The licence header lines start with two spaces; synset lines start with their offset.
                if line.startswith("  ") or " | " not in line:
                    continue
                lines.extend(gloss_sentences(line.split(" | ", 1)[1]))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wordnet-dir", type=pathlib.Path, default=pathlib.Path("/usr/share/wordnet"))
    parser.add_argument("--output", type=pathlib.Path, default=pathlib.Path(__file__).parent / "wordnet_glosses.txt.gz")
    args = parser.parse_args()
    lines = corpus_lines(args.wordnet_dir)
    # mtime=0 keeps the compressed file byte-identical from one rebuild to the next.
    with open(args.output, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as out:
        out.write(("\n".join(lines) + "\n").encode("utf-8"))
    words = sum(len(line.split()) for line in lines)
    print(f"wrote {args.output}: {len(lines):,} lines, {words:,} words")


if __name__ == "__main__":
    main()
