"""Exports a trained model's E (never W) for serving and for other tools.

    python export.py --model-dir runs/default --export-dir exports/word2vec
    python export.py --model-dir runs/default --export-dir exports/files --format word2vec tsv
    python export.py --model-dir runs/default --export-dir exports/best --checkpoint best   # after --keep-best

Writes `EXPORT_DIR/<version>/` (TF Serving's layout; the version defaults to the checkpoint's training step)
atomically: a model server watching EXPORT_DIR never sees half an export. An existing version is kept unless
--overwrite is given.
"""

import argparse
import pathlib
import sys

from cli import FlagParser, import_tensorflow_quietly, run_entry_point
from exporting import FORMATS


def flag_parser() -> argparse.ArgumentParser:
    parser = FlagParser(description=__doc__)
    parser.add_argument("--model-dir", default="runs/default", metavar="DIR",
                        help="the directory train.py wrote; its latest checkpoint is read (see --checkpoint)")
    parser.add_argument("--export-dir", required=True, metavar="BASE",
                        help="the export goes to BASE/<version>/, TF Serving's layout")
    version = parser.add_argument("--version", type=int, metavar="N", help="the version directory's number")
    version.shown_default = "the checkpoint's training step"
    parser.add_argument("--checkpoint", choices=["latest", "best"], default="latest",
                        help="latest, or best: the best epoch's, kept by train.py --keep-best")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing BASE/<version>/ (refused otherwise)")
    parser.add_argument("--format", nargs="+", choices=FORMATS, default=["savedmodel"], dest="formats",
                        metavar="FORMAT",
                        help="any of savedmodel (TF Serving, Keras), word2vec (word2vec.txt), word2vec-binary "
                        "(word2vec.bin), tsv (vectors.tsv + metadata.tsv for projector.tensorflow.org)")
    parser.add_argument("--exact-lookup", action="store_true",
                        help="the SavedModel looks words up exactly as given, not standardised (lowercased, NFC) as in "
                        "training")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    return parser


def main() -> int:
    flags = flag_parser().parse_args()
    return run_entry_point(lambda: run(flags), debug=flags.debug)


def run(flags: argparse.Namespace) -> int:
    import_tensorflow_quietly()
    from exporting.export_directory import write_export
    from exporting.trained_embeddings import read_trained_embeddings

    trained = read_trained_embeddings(pathlib.Path(flags.model_dir), flags.checkpoint)
    version = trained.step if flags.version is None else flags.version
    path = write_export(trained, pathlib.Path(flags.export_dir), version, flags.formats, flags.overwrite,
                        flags.exact_lookup)
    which = "the best epoch's checkpoint, " if flags.checkpoint == "best" else ""
    print(f"exported E ({len(trained.words):,} words x {trained.embedding_dim}, {which}step {trained.step:,}) "
          f"as {', '.join(flags.formats)} to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
