"""Trains skip-gram word2vec: `python train.py` trains on the embedded WordNet corpus.

    python train.py --corpus 'texts/*.txt.gz' --model-dir runs/mine --epochs 5
    tensorboard --logdir runs/mine/logs

Running it again on the same --model-dir resumes from the latest checkpoint; a larger --epochs trains further.
"""

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import tempfile

from cli import FlagParser, import_tensorflow_quietly, native_stderr_to, run_entry_point, value_text
from config import Config
from errors import UserError


def flag_parser() -> argparse.ArgumentParser:
    """One flag per config field that declares one; unset flags stay out of the namespace (SUPPRESS),
    so that resume can tell the flags a user gave from the defaults. --help shows the config's defaults."""
    parser = FlagParser(description=__doc__)
    parser.add_argument("--model-dir", default="runs/default", metavar="DIR",
                        help="checkpoints, vocabulary, config and TensorBoard logs; a run there is resumed")
    defaults = Config()
    for section in dataclasses.fields(Config):
        for field in dataclasses.fields(section.type):
            if "flag" not in field.metadata:
                continue
            options = {key: value for key, value in field.metadata.items() if key not in ("flag", "shown_default")}
            if "nargs" not in options:
                options.setdefault("type", field.type)
            if "choices" not in options:  # Without a metavar argparse would show the destination, DATA.MIN_COUNT.
                options.setdefault("metavar", field.metadata["flag"].lstrip("-").upper().replace("-", "_"))
            action = parser.add_argument(field.metadata["flag"], dest=f"{section.name}.{field.name}",
                                         default=argparse.SUPPRESS, **options)
            action.shown_default = field.metadata.get(
                "shown_default", value_text(getattr(getattr(defaults, section.name), field.name)))
    parser.add_argument("--max-steps", type=int, default=0, metavar="N",
                        help="stop after this many steps in this run; running again continues (0: no limit)")
    parser.add_argument("--metrics-file", metavar="PATH",
                        help="also write this run's steps, words and training seconds as JSON to PATH")
    parser.add_argument("--neighbours", type=int, default=8, metavar="N",
                        help="neighbours printed per probe word at the end")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    return parser


def requested_config(flags: argparse.Namespace) -> tuple[Config, set[tuple[str, str]]]:
    """The default config with the given flags applied, and which (section, field) pairs were given."""
    config, explicit = Config(), set()
    for key, value in vars(flags).items():
        if "." in key:
            section, name = key.split(".")
            setattr(getattr(config, section), name, value)
            explicit.add((section, name))
    return config, explicit


def main() -> int:
    flags = flag_parser().parse_args()
    return run_entry_point(lambda: run(flags), debug=flags.debug)


def run(flags: argparse.Namespace) -> int:
    from training.model_directory import ModelDirectory, resolved_config

    if flags.max_steps < 0:
        raise UserError("--max-steps must be 0 (no limit) or more")
    directory = ModelDirectory(pathlib.Path(flags.model_dir))
    requested, explicit = requested_config(flags)
    config = resolved_config(directory.saved_config(), requested, explicit)
    config.validate()  # Bad flag values fail here, in a second, before TensorFlow loads.
    if flags.neighbours < 0:
        raise UserError(f"--neighbours must be at least 0, not {flags.neighbours}")
    if config.training.distribute != "none" and os.environ.get("TF_CONFIG") and not flags.debug:
        # A lost worker makes TensorFlow log a page of collective and gRPC errors from C++ threads (some before
        # any log level applies) around the Python error that the loop turns into one line: on several workers
        # they go to a file of their own, kept only if something was written to it.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        native_log = pathlib.Path(tempfile.gettempdir()) / f"word2vec-worker-{os.getpid()}.log"
        native_stderr_to(native_log)
    import_tensorflow_quietly()
    # A multi-worker strategy starts the cluster, which must come before any other TensorFlow operation.
    from training.distributed import distribution_for

    distribution = distribution_for(config.training.distribute)
    from model.neighbours import nearest_neighbours
    from training.loop import train

    # Read only when asked for: a damaged checkpoint must reach train()'s checks, which explain it in one line.
    before = checkpoint_progress(directory) if flags.metrics_file else (0, 0.0, 0)
    result = train(config, directory, distribution, max_steps=flags.max_steps)
    if result.interrupted_by:
        return 130 if result.interrupted_by == "SIGINT" else 143
    # A worker other than a multi-worker run's chief sees no checkpoint here (0 steps): it adds no note.
    after = checkpoint_progress(directory) if flags.max_steps or flags.metrics_file else (0, 0.0, 0)
    finished = after[2] >= config.training.epochs
    stopped = bool(flags.max_steps) and after[0] > 0 and not finished
    print(f"trained {result.steps:,} steps in {directory.root} ({result.words_per_second:,.0f} words/s)"
          + (max_steps_note(flags.max_steps, after[2], config.training.epochs) if stopped else ""))
    if flags.metrics_file:
        # Each batch counts an equal share of its chunk's words, a fraction: the run's total is rounded to words.
        steps, words = after[0] - before[0], round(after[1] - before[1])
        metrics = {"steps": steps, "words": words, "words_per_second": result.words_per_second,
                   "training_seconds": words / max(result.words_per_second, 1e-9),
                   "vocabulary_size": len(result.vocabulary), "embedding_dim": config.model.embedding_dim,
                   "batch_size": config.training.batch_size, "loss": config.training.loss, "finished": finished}
        pathlib.Path(flags.metrics_file).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")

    ids = result.vocabulary.ids()
    probes = [word for word in config.training.probe_words if word in ids]
    if probes:
        neighbour_ids, scores = nearest_neighbours(result.model.embeddings, [ids[word] for word in probes],
                                                   flags.neighbours)
        for word, row, row_scores in zip(probes, neighbour_ids.numpy(), scores.numpy()):
            listed = ", ".join(f"{result.vocabulary.words[i]} {s:.2f}" for i, s in zip(row, row_scores))
            print(f"{word}: {listed}")
    return 0


def checkpoint_progress(directory) -> tuple[int, float, int]:
    """(steps, corpus words, epoch) trained so far, as the latest checkpoint records them; the epoch is the
    number of epochs once training is complete. (0, 0.0, 0) before the first checkpoint."""
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(str(directory.checkpoints))
    if latest is None:
        return 0, 0.0, 0
    return tuple(kind(tf.train.load_variable(latest, f"progress/{name}/.ATTRIBUTES/VARIABLE_VALUE"))
                 for kind, name in ((int, "step"), (float, "words_done"), (int, "epoch")))


def max_steps_note(max_steps: int, epoch: int, epochs: int) -> str:
    """What the final line adds when --max-steps ended the run before its last epoch was done."""
    return (f"; --max-steps {max_steps:,} stopped it in epoch {epoch + 1} of {epochs}: run again to continue "
            "(without --max-steps to finish)")


if __name__ == "__main__":
    sys.exit(main())
