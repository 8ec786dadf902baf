"""Reading word2vec files (exporting/interchange.py) and taking E's starting rows from them (data_pipeline/pretrained.py):
text and binary, written by this project and by gensim, told apart by content; damaged files are one UserError."""

import numpy as np
import pytest
from gensim.models import KeyedVectors

from data_pipeline.pretrained import pretrained_rows
from data_pipeline.vocabulary import Vocabulary
from errors import UserError
from exporting.interchange import read_word2vec, write_word2vec_binary, write_word2vec_text

WORDS = ["king", "Queen", "queen", "castle"]
VECTORS = np.array([[1.0, 2.0, 3.0], [-1.5, 0.25, 7.0], [0.5, -0.5, 0.125], [1e-7, -3e5, 0.0]], np.float32)


def gensim_file(path, binary: bool) -> None:
    vectors = KeyedVectors(3)
    vectors.add_vectors(WORDS, VECTORS)
    vectors.save_word2vec_format(str(path), binary=binary)


WRITERS = {
    "ours-text": lambda path: write_word2vec_text(path, WORDS, VECTORS),
    "ours-binary": lambda path: write_word2vec_binary(path, WORDS, VECTORS),
    "gensim-text": lambda path: gensim_file(path, binary=False),
    "gensim-binary": lambda path: gensim_file(path, binary=True),  # gensim writes no newline after each vector.
}


@pytest.mark.parametrize("writer", WRITERS)
def test_every_writer_reads_back_bit_for_bit_whatever_the_file_is_called(tmp_path, writer):
    path = tmp_path / "vectors.txt"  # A binary file named .txt too: the format comes from the content.
    WRITERS[writer](path)
    read = read_word2vec(path)
    assert read.binary == writer.endswith("binary") and read.words == tuple(WORDS) and read.count == 4
    np.testing.assert_array_equal(read.vectors, VECTORS)


@pytest.mark.parametrize("first_bytes", [b"\x0a\x11\x22\x3e", b"\x41\x05\x43\x3e\x0a\x11\x22\x3e"])
def test_a_binary_file_whose_floats_hold_a_newline_is_read_as_binary(tmp_path, first_bytes):
    # The first vector's bytes make its "line" end right after the word, or after bytes that are not all
    # printable: the record still reads as binary (a dim-8 export of test_continuation's model ended after "the ").
    first = np.frombuffer(first_bytes + b"\x00\x00\x80\x3f" * (3 - len(first_bytes) // 4), "<f4")
    vectors = np.concatenate([first[None, :], VECTORS[1:]])
    write_word2vec_binary(tmp_path / "vectors.bin", WORDS, vectors)
    read = read_word2vec(tmp_path / "vectors.bin")
    assert read.binary and read.words == tuple(WORDS)
    np.testing.assert_array_equal(read.vectors, vectors)


@pytest.mark.parametrize("writer", ["ours-text", "gensim-binary"])
def test_only_the_wanted_rows_are_kept(tmp_path, writer):
    WRITERS[writer](tmp_path / "vectors")
    read = read_word2vec(tmp_path / "vectors", wanted=lambda word: word.lower() == "queen")
    assert read.words == ("Queen", "queen") and read.count == 4
    np.testing.assert_array_equal(read.vectors, VECTORS[1:3])


def truncated_binary(tmp_path):
    write_word2vec_binary(tmp_path / "full.bin", WORDS, VECTORS)
    return (tmp_path / "full.bin").read_bytes()[:-20]  # The last vector lacks 8 of its 12 bytes.


@pytest.mark.parametrize("content, message", [
    (b"", r"first line should be '<word count> <dimension>'"),
    (b"king 1 2 3\n", r"first line should be '<word count> <dimension>' \(GloVe files lack that line"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", r"first line should be"),
    (b"2 3\nking 1 2 3\n", r"promises 2 vectors but holds 1: it is truncated or damaged"),
    (b"1 3\nking 1 2\n", r"line 2 holds 2 numbers, but its first line promises 3"),
    (b"1 3\nking 1 two 3\n", r"holds a vector value that is not a number on line 2"),
    (b"1 3\nking 1 2 3\nqueen 4 5 6\n", r"holds more vectors than the 1 its first line promises \(line 3\)"),
    (truncated_binary, r"ends after 3 of the 4 vectors its first line promises: it is truncated or damaged"),
])
def test_a_damaged_file_is_one_user_error(tmp_path, content, message):
    path = tmp_path / "vectors"
    path.write_bytes(content(tmp_path) if callable(content) else content)
    with pytest.raises(UserError, match=message):
        read_word2vec(path)


def test_pretrained_rows_prefer_the_exact_spelling_then_the_first_capitalised_one(tmp_path):
    write_word2vec_text(tmp_path / "vectors.txt", ["Queen", "KING", "King", "queen", "moat"], VECTORS[[0, 1, 2, 3, 0]])
    vocabulary = Vocabulary(("the", "queen", "king", "castle"), (10, 3, 2, 1))
    rows = pretrained_rows(tmp_path / "vectors.txt", vocabulary, 3)
    # "queen" (id 1) is in the file as itself (row 3), although "Queen" comes first; "king" (id 2) only capitalised,
    # first as "KING" (row 1). "the" and "castle" are missing: 2 of 4 words, 5 of the corpus's 16 words.
    np.testing.assert_array_equal(rows.ids, [1, 2])
    np.testing.assert_array_equal(rows.vectors, VECTORS[[3, 1]])
    assert rows.by_lowercase == 1 and rows.file_words == 5
    assert rows.coverage(vocabulary, "v.txt") == ("--init-vectors v.txt: 2 of the vocabulary's 4 words found (50.0%, "
                                                 "31.2% of the corpus's words, 1 of them under another capitalisation) "
                                                 "among its 5 vectors")


def test_a_file_of_another_dimension_is_refused_before_its_vectors_are_read(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_bytes(b"3 300\nking not even numbers\n")  # Damaged after its first line, which is all that is read.
    with pytest.raises(UserError, match=r"holds vectors of 300 numbers, but --dim is 100: pass --dim 300"):
        pretrained_rows(path, Vocabulary(("king",), (1,)), 100)
