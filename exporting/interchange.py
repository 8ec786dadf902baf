"""Word vectors in the files other tools read: word2vec's text and binary formats, and the projector's TSV pair.

Words never contain whitespace (the tokenizer splits on it), so a space or tab always ends a word.
"""

import pathlib
from collections.abc import Sequence

import numpy as np

WORD2VEC_TEXT = "word2vec.txt"
WORD2VEC_BINARY = "word2vec.bin"
PROJECTOR_VECTORS = "vectors.tsv"
PROJECTOR_METADATA = "metadata.tsv"


def format_rows(vectors: np.ndarray, separator: str) -> list[str]:
    """Each row as text; `%.9g` is enough digits for every float32 to read back bit for bit."""
    return [separator.join(row) for row in np.char.mod("%.9g", vectors.astype(np.float32)).tolist()]


def write_word2vec_text(path: pathlib.Path, words: Sequence[str], vectors: np.ndarray) -> None:
    """word2vec's text format: a `V D` header, then one `word x1 x2 ... xD` line per word, in id order."""
    with open(path, "w", encoding="utf-8") as out:
        out.write(f"{len(words)} {vectors.shape[1]}\n")
        out.writelines(f"{word} {row}\n" for word, row in zip(words, format_rows(vectors, " ")))


def write_word2vec_binary(path: pathlib.Path, words: Sequence[str], vectors: np.ndarray) -> None:
    """word2vec's binary format: a `V D` text header, then per word its UTF-8 bytes, a space, D little-endian
    float32s and a newline (as the original word2vec.c writes it)."""
    rows = vectors.astype("<f4")
    with open(path, "wb") as out:
        out.write(f"{len(words)} {vectors.shape[1]}\n".encode())
        out.writelines(word.encode("utf-8") + b" " + row.tobytes() + b"\n" for word, row in zip(words, rows))


def write_projector_tsv(directory: pathlib.Path, words: Sequence[str], vectors: np.ndarray) -> None:
    """projector.tensorflow.org's pair: vectors.tsv (one tab-separated vector per line, no header) and
    metadata.tsv (one word per line, in the same order; a single column takes no header)."""
    with open(directory / PROJECTOR_VECTORS, "w", encoding="utf-8") as out:
        out.writelines(f"{row}\n" for row in format_rows(vectors, "\t"))
    with open(directory / PROJECTOR_METADATA, "w", encoding="utf-8") as out:
        out.writelines(f"{word}\n" for word in words)
