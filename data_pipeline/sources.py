"""Corpus sources: text files (plain or .gz), the embedded WordNet corpus, or a prepared TFDS dataset.

Each yields a `tf.data.Dataset` of lines (scalar strings); a line is a sentence and windows never cross it.
"""

import difflib
import logging
import pathlib

import tensorflow as tf

from errors import UserError
from storage import shown

EMBEDDED_CORPUS = pathlib.Path(__file__).resolve().parent.parent / "data" / "wordnet_glosses.txt.gz"


def corpus_files(patterns: list[str]) -> list[str]:
    """Expands files and globs in the given order (a path naming a file is that file, whatever characters it holds);
    a pattern that matches nothing is an error, and so is a file whose name and content disagree about gzip (it
    would be read as binary junk)."""
    files = []
    for pattern in patterns:
        if tf.io.gfile.isdir(pattern):
            glob = f"{shown(pattern).rstrip('/')}/*.txt"
            raise UserError(f"corpus path {shown(pattern)!r} is a directory: name its files, e.g. '{glob}'")
        if tf.io.gfile.exists(pattern):  # A file named as it is, even when its name holds glob characters: "[1].txt".
            matches = [pattern]
        else:
            matches = sorted(path for path in tf.io.gfile.glob(pattern) if not tf.io.gfile.isdir(path))
        if not matches:
            raise UserError(f"corpus path {shown(pattern)!r} matches no file: check the path or the glob")
        files.extend(matches)
    for path in files:
        check_compression(path)
    return files


def check_compression(path: str) -> None:
    """Files ending in .gz are decompressed and others are not, so the name must match the content."""
    try:
        with tf.io.gfile.GFile(path, "rb") as file:
            start = file.read(2)
    except tf.errors.OpError as error:
        raise UserError(f"cannot read corpus file {shown(path)!r}: {error.message.splitlines()[0]}") from None
    gzipped = start == b"\x1f\x8b"
    if path.endswith(".gz") and start and not gzipped:
        raise UserError(f"corpus file {shown(path)!r} ends in .gz but is not gzip-compressed: "
                        "remove the .gz from its name")
    if gzipped and not path.endswith(".gz"):
        raise UserError(f"corpus file {shown(path)!r} is gzip-compressed: "
                        "add .gz to its name so that it is decompressed")


def file_lines(files: list[str]) -> tf.data.Dataset:
    """Lines of the files, interleaved across files (deterministically), decompressing .gz files on the fly."""

    @tf.autograph.experimental.do_not_convert
    def lines_of(path: tf.Tensor) -> tf.data.Dataset:
        is_gzip = tf.strings.regex_full_match(path, r".*\.gz")
        return tf.data.TextLineDataset(path, compression_type=tf.where(is_gzip, "GZIP", ""))

    return tf.data.Dataset.from_tensor_slices(files).interleave(
        lines_of, cycle_length=min(len(files), 4), block_length=64
    )


def tfds_lines(name: str, split: str, feature: str, data_dir: str = "") -> tf.data.Dataset:
    """The text feature of a TFDS dataset that is already prepared in `data_dir` (nothing is downloaded)."""
    import tensorflow_datasets as tfds

    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)  # TFDS warns about the missing files before the error below says it clearly.
    try:
        builder = tfds.builder(name, data_dir=data_dir or None)
        prepared = builder.is_prepared()
    except tfds.core.registered.DatasetNotFoundError:
        raise UserError(unknown_dataset_message(name, tfds.list_builders(with_community_datasets=False))) from None
    except Exception as error:  # noqa: BLE001 - TFDS raises several types for unreadable datasets.
        raise UserError(f"TFDS dataset {name!r} cannot be read ({type(error).__name__}); "
                        f"{prepare_hint(name, data_dir)}") from None
    finally:
        absl_logger.setLevel(level)
    if not prepared:
        raise UserError(f"TFDS dataset {name!r} is not prepared in {shown(builder.data_dir)}; "
                        f"{prepare_hint(name, data_dir)}")
    if split not in builder.info.splits:
        raise UserError(f"TFDS dataset {name!r} has no split {split!r}; it has {sorted(builder.info.splits)}")
    if feature not in builder.info.features:
        raise UserError(f"TFDS dataset {name!r} has no feature {feature!r}; it has {sorted(builder.info.features)}")
    examples = builder.as_dataset(split=split, shuffle_files=False)
    return examples.map(lambda example: example[feature], num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def unknown_dataset_message(name: str, known_names: list[str]) -> str:
    """Says that TFDS knows no dataset by this name (neither in its catalogue nor prepared in the data
    directory), with the catalogue's closest names when some are close."""
    dataset = name.split("/")[0].split(":")[0]  # A config or version may follow: imdb_reviews/plain_text:1.0.0.
    close = difflib.get_close_matches(dataset, sorted(set(known_names)), n=3)  # TFDS may list a name twice.
    suggestion = (f"did you mean {' or '.join(close)}?" if close
                  else "check the spelling (tfds.list_builders() lists the names TFDS knows)")
    return f"TFDS knows no dataset named {dataset!r}: {suggestion}"


def prepare_hint(name: str, data_dir: str) -> str:
    where = f" --data_dir {shown(data_dir)}" if data_dir else ""
    return f"prepare it where downloads work with `tfds build {name}{where}` and pass --tfds-data-dir"


def corpus_lines(corpus: list[str], tfds_name: str = "", tfds_split: str = "train", tfds_feature: str = "text",
                 tfds_data_dir: str = "") -> tf.data.Dataset:
    """The lines of whichever source is configured: TFDS by name, else files, else the embedded corpus."""
    if tfds_name:
        return tfds_lines(tfds_name, tfds_split, tfds_feature, tfds_data_dir)
    return file_lines(corpus_files(corpus) if corpus else [str(EMBEDDED_CORPUS)])


def sampled_lines(lines: tf.data.Dataset, fraction: float, seed: tuple[int, int], block: int = 1024) -> tf.data.Dataset:
    """About `fraction` of the lines, each kept or not by a stateless draw seeded by `seed` and its place in the
    text, so that every pass (and a resumed run) keeps the same lines, in their order."""
    seed = tf.constant(seed, tf.int64)

    @tf.autograph.experimental.do_not_convert
    def kept(index: tf.Tensor, block_lines: tf.Tensor) -> tf.Tensor:
        draws = tf.random.stateless_uniform(tf.shape(block_lines), tf.random.experimental.stateless_fold_in(seed, index))
        return tf.boolean_mask(block_lines, draws < fraction)

    return lines.batch(block).enumerate().map(kept).unbatch()


def mixed_lines(first: tf.data.Dataset, second: tf.data.Dataset, second_share: float, seed: int) -> tf.data.Dataset:
    """The lines of both, each next line drawn from `second` with probability `second_share` (seeded, so every
    pass gives the same order) until one runs out, then the rest of the other: `second` spread through `first`."""
    return tf.data.Dataset.sample_from_datasets([first, second], weights=[1.0 - second_share, second_share],
                                                seed=seed, stop_on_empty_dataset=False)


# The most text one chunk of lines holds, and the longest piece of a line. A chunk of 2,048 lines of ordinary text
# holds 100-300 KB (gcide: at most 257 KB, its longest line 13 KB); longer lines are cut into pieces and a chunk with
# more text is split, so that tokenising a chunk (about 20 bytes of memory per byte of text, and 65 to count its
# words) stays small however long a line is: a whole book on one line, a file without line breaks.
MAX_LINE_BYTES = 65_536
MAX_CHUNK_BYTES = 1_048_576


def text_chunks(lines: tf.data.Dataset, lines_per_chunk: int, max_chunk_bytes: int = MAX_CHUNK_BYTES,
                max_line_bytes: int = MAX_LINE_BYTES) -> tf.data.Dataset:
    """Chunks of up to `lines_per_chunk` lines (string vectors) holding at most `max_chunk_bytes` of text, except a
    single piece of a line: lines longer than `max_line_bytes` are cut into pieces (`cut_long_lines`), then a chunk
    with more text is split in order. A chunk within both limits is passed on as it is."""

    @tf.autograph.experimental.do_not_convert
    def split(chunk: tf.Tensor) -> tf.RaggedTensor:
        pieces = cut_long_lines(chunk, max_line_bytes)
        before = tf.cumsum(tf.strings.length(pieces) + 1, exclusive=True)  # + 1: each line's line break
        part = before // max_chunk_bytes
        renumbered = tf.cumsum(tf.cast(part != tf.concat([[-1], part], axis=0)[:-1], tf.int64)) - 1
        return tf.RaggedTensor.from_value_rowids(pieces, renumbered)

    chunks = lines.batch(lines_per_chunk).map(split, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return chunks.unbatch()


def cut_long_lines(lines: tf.Tensor, max_bytes: int) -> tf.Tensor:
    """The lines with each one longer than `max_bytes` cut into pieces of about that size, at the last whitespace
    before each cut (whitespace always separates tokens, so no token is cut unless it is longer than a piece) and
    never inside a UTF-8 character. Lines within the limit, and every line of a chunk without a long one, are kept
    as they are."""

    def cut() -> tf.Tensor:
        lengths = tf.strings.length(lines)
        is_long = lengths > max_bytes
        pieces_per_line = tf.where(is_long, (lengths + max_bytes - 1) // max_bytes, 1)
        first_piece = tf.cumsum(pieces_per_line, exclusive=True)  # where each line's pieces go in the result
        long_counts = tf.boolean_mask(pieces_per_line, is_long)
        long_first = tf.boolean_mask(first_piece, is_long)
        long_pieces = pieces_of(tf.boolean_mask(lines, is_long), tf.boolean_mask(lengths, is_long), long_counts,
                                max_bytes)
        return tf.dynamic_stitch(
            [tf.boolean_mask(first_piece, ~is_long), tf.ragged.range(long_first, long_first + long_counts).flat_values],
            [tf.boolean_mask(lines, ~is_long), long_pieces])

    return tf.cond(tf.reduce_any(tf.strings.length(lines) > max_bytes), cut, lambda: lines)


def pieces_of(lines: tf.Tensor, lengths: tf.Tensor, counts: tf.Tensor, max_bytes: int) -> tf.Tensor:
    """Long lines cut into `counts` pieces each, in order. Pieces are [lines, most pieces] substrings of the lines
    (broadcast, so a line is never copied once per piece), padded with empty ones."""
    index = tf.range(tf.reduce_max(counts))[None, :]
    valid, later, last = index < counts[:, None], (index > 0) & (index < counts[:, None]), index == counts[:, None] - 1
    lines = lines[:, None]
    start = index * max_bytes + tf.zeros_like(counts)[:, None]
    # A cut inside a character moves back to its first byte: past the continuation bytes (10xxxxxx) before it.
    window = tf.io.decode_raw(tf.strings.substr(lines, tf.where(later, start - 3, 0), tf.where(later, 4, 0)),
                              tf.uint8, fixed_length=4)
    continuation = tf.cast(tf.bitwise.bitwise_and(window, 0xC0) == 0x80, tf.int32)
    start -= tf.reduce_sum(tf.math.cumprod(tf.reverse(continuation, axis=[2])[..., :3], axis=2), axis=2)
    end = tf.where(last, lengths[:, None], tf.concat([start[:, 1:], tf.zeros_like(start[:, :1])], axis=1))
    pieces = tf.strings.substr(lines, tf.where(valid, start, 0), tf.where(valid, end - start, 0))
    # Each piece's last partial word moves to the next piece of its line; a line's last piece keeps its own.
    heads = tf.strings.regex_replace(pieces, r"\S*$", "")
    head_lengths = tf.strings.length(heads)
    tails = tf.strings.substr(pieces, head_lengths, tf.strings.length(pieces) - head_lengths)
    carried = tf.where(index > 0, tf.concat([tf.fill(tf.shape(tails[:, :1]), ""), tails[:, :-1]], axis=1), "")
    return tf.boolean_mask(tf.strings.join([carried, heads, tf.where(last, tails, "")]), valid)
