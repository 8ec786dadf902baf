"""Word vectors in the files other tools read: word2vec's text and binary formats (written and read), and the
projector's TSV pair.

Words never contain whitespace (the tokenizer splits on it), so a space or tab always ends a word.
"""

import dataclasses
import io
import pathlib
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO

import numpy as np

from errors import UserError

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


@dataclasses.dataclass(frozen=True)
class Word2VecFile:
    """What `read_word2vec` read: the kept words in file order and their vectors.

    Attributes:
        words: the words kept, in the file's order.
        vectors: float32 [len(words), dim].
        dim: the vector size the file's first line gives.
        count: how many vectors the file holds (kept or not).
        binary: whether the file is in word2vec's binary format.
    """

    words: tuple[str, ...]
    vectors: np.ndarray
    dim: int
    count: int
    binary: bool


# A binary file's first record holds raw float32 bytes, which are not UTF-8 text without NULs (a float's low bytes
# are mostly zero or run into invalid sequences); a text file's first vector line is. Other control characters
# are text in a word (a custom --token-pattern can keep them), not among the numbers after it.


def is_text_record(first_line: bytes) -> bool:
    """Whether the line after a word2vec file's header is a text record, `word x1 ... xD`: UTF-8 without NULs,
    with printable characters after the word. A float's byte can be a newline, which ends a binary record's
    "line" early: right after the word (nothing after it, seen on a dim-8 export) or after bytes that are
    rarely all printable."""
    try:
        text = first_line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    values = text.removesuffix("\n").removesuffix("\r").rstrip(" \t").partition(" ")[2]
    return "\x00" not in text and bool(values) and values.replace("\t", " ").isprintable()


def read_word2vec(path: str | pathlib.Path, wanted: Callable[[str], bool] | None = None) -> Word2VecFile:
    """Reads a word2vec file in the text or the binary format (told apart by its content, not its name), keeping the
    vectors of the words `wanted` accepts (all by default). The file is streamed: memory holds the kept rows only.

    Both formats start with a `<count> <dimension>` line; text then has a `word x1 ... xD` line per word, binary
    the word, a space and D little-endian float32s per word (then a newline, as word2vec.c writes it). Anything
    else, or a file that holds fewer vectors or numbers than its first line promises, is a UserError.
    """
    try:
        with open(path, "rb") as file:
            count, dim = word2vec_header(file, path)
            start = file.tell()
            first_line = file.readline(1 << 16)
            file.seek(start)
            binary = not is_text_record(first_line)
            read_rows = binary_rows if binary else text_rows
            keep = wanted or (lambda word: True)
            words, rows = [], []
            for word, row in read_rows(file, path, count, dim, keep):
                words.append(word)
                rows.append(row)
    except OSError as error:
        raise UserError(f"cannot read the vectors file {path}: {error.strerror or error}") from None
    vectors = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
    return Word2VecFile(tuple(words), vectors, dim, count, binary)


def word2vec_header(file: BinaryIO, path: str | pathlib.Path) -> tuple[int, int]:
    """The `<count> <dimension>` of a word2vec file's first line."""
    header = file.readline(100).split()
    if len(header) != 2 or not all(part.isdigit() for part in header) or int(header[1]) < 1:
        raise UserError(f"{path} is not a word2vec file: its first line should be '<word count> <dimension>' "
                        "(GloVe files lack that line: add it)")
    return int(header[0]), int(header[1])


def text_rows(file: BinaryIO, path, count: int, dim: int, keep: Callable[[str], bool]) -> Iterator[tuple]:
    """The kept (word, vector) rows of word2vec's text format, checked line by line. Lines end at "\n" only (a "\r"
    before it is dropped), as gensim reads them: a word may hold characters that `str.splitlines` splits on."""
    lines = 0
    for number, line in enumerate(io.TextIOWrapper(file, encoding="utf-8", errors="replace", newline="\n"), start=2):
        word, _, values = line.removesuffix("\n").removesuffix("\r").rstrip(" \t").partition(" ")
        if not word:
            continue
        lines += 1
        if lines > count:
            raise UserError(f"{path} holds more vectors than the {count:,} its first line promises (line {number})")
        if not keep(word):
            continue
        try:
            row = np.array(values.split(), dtype=np.float32)
        except ValueError as error:
            raise UserError(f"{path} holds a vector value that is not a number on line {number} ({error})") from None
        if row.size != dim:
            raise UserError(f"{path} line {number} holds {row.size} numbers, but its first line promises {dim}")
        yield word, row
    if lines < count:
        raise UserError(f"{path} promises {count:,} vectors but holds {lines:,}: it is truncated or damaged")


def binary_rows(file: BinaryIO, path, count: int, dim: int, keep: Callable[[str], bool]) -> Iterator[tuple]:
    """The kept (word, vector) rows of word2vec's binary format, read in blocks of a megabyte."""
    row_bytes, buffer, position = 4 * dim, b"", 0
    for index in range(count):
        while True:
            space = buffer.find(b" ", position)
            if space >= 0 and len(buffer) - space - 1 >= row_bytes:
                break
            block = file.read(1 << 20)
            if not block:
                raise UserError(f"{path} ends after {index:,} of the {count:,} vectors its first line promises: it "
                                "is truncated or damaged")
            buffer, position = buffer[position:] + block, 0
        word = buffer[position:space].lstrip(b"\n").decode("utf-8", errors="replace")
        position = space + 1 + row_bytes
        if keep(word):
            # A copy: a view would keep the whole block alive for as long as the row.
            yield word, np.frombuffer(buffer, dtype="<f4", count=dim, offset=space + 1).copy()
    if buffer[position:].strip(b"\n") or file.read(64).strip(b"\n"):
        raise UserError(f"{path} holds more than the {count:,} vectors its first line promises: it is damaged, or "
                        "not a binary word2vec file")
