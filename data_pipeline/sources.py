"""Corpus sources: text files (plain or .gz), the embedded WordNet corpus, or a prepared TFDS dataset.

Each yields a `tf.data.Dataset` of lines (scalar strings); a line is a sentence and windows never cross it.
"""

import difflib
import logging
import pathlib

import tensorflow as tf

from errors import UserError

EMBEDDED_CORPUS = pathlib.Path(__file__).resolve().parent.parent / "data" / "wordnet_glosses.txt.gz"


def corpus_files(patterns: list[str]) -> list[str]:
    """Expands files and globs in the given order; a pattern that matches nothing is an error, and so is a file
    whose name and content disagree about gzip (it would be read as binary junk)."""
    files = []
    for pattern in patterns:
        if tf.io.gfile.isdir(pattern):
            glob = f"{pattern.rstrip('/')}/*.txt"
            raise UserError(f"corpus path {pattern!r} is a directory: name its files, e.g. '{glob}'")
        matches = sorted(path for path in tf.io.gfile.glob(pattern) if not tf.io.gfile.isdir(path))
        if not matches:
            raise UserError(f"corpus path {pattern!r} matches no file: check the path or the glob")
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
        raise UserError(f"cannot read corpus file {path!r}: {error.message.splitlines()[0]}") from None
    gzipped = start == b"\x1f\x8b"
    if path.endswith(".gz") and start and not gzipped:
        raise UserError(f"corpus file {path!r} ends in .gz but is not gzip-compressed: remove the .gz from its name")
    if gzipped and not path.endswith(".gz"):
        raise UserError(f"corpus file {path!r} is gzip-compressed: add .gz to its name so that it is decompressed")


def file_lines(files: list[str]) -> tf.data.Dataset:
    """Lines of the files, interleaved across files (deterministically), decompressing .gz files on the fly."""

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
        raise UserError(f"TFDS dataset {name!r} is not prepared in {builder.data_dir}; {prepare_hint(name, data_dir)}")
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
    where = f" --data_dir {data_dir}" if data_dir else ""
    return f"prepare it where downloads work with `tfds build {name}{where}` and pass --tfds-data-dir"


def corpus_lines(corpus: list[str], tfds_name: str = "", tfds_split: str = "train", tfds_feature: str = "text",
                 tfds_data_dir: str = "") -> tf.data.Dataset:
    """The lines of whichever source is configured: TFDS by name, else files, else the embedded corpus."""
    if tfds_name:
        return tfds_lines(tfds_name, tfds_split, tfds_feature, tfds_data_dir)
    return file_lines(corpus_files(corpus) if corpus else [str(EMBEDDED_CORPUS)])
