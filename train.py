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

from cli import FlagParser, import_tensorflow_quietly, native_stderr_to, run_entry_point, value_text
from config import Config
from errors import ResourceError, UserError
from storage import process_temporary_file, shown, unwritable_reason, write_text_atomically


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
            if "nargs" not in options and "action" not in options:
                options.setdefault("type", field.type)
            if "choices" not in options and "action" not in options:  # Else argparse shows DATA.MIN_COUNT.
                options.setdefault("metavar", field.metadata["flag"].lstrip("-").upper().replace("-", "_"))
            action = parser.add_argument(field.metadata["flag"], dest=f"{section.name}.{field.name}",
                                         default=argparse.SUPPRESS, **options)
            action.shown_default = field.metadata.get(
                "shown_default", value_text(getattr(getattr(defaults, section.name), field.name)))
    parser.add_argument("--max-steps", type=int, default=0, metavar="N",
                        help="stop after this many steps in this run; running again continues (0: no limit)")
    parser.add_argument("--metrics-file", metavar="PATH",
                        help="also write this run's steps, words and training seconds as JSON to PATH")
    # Renamed: `--neighbours` means words in evaluate.py; here the count is --probe-neighbours (see run()).
    parser.add_argument("--neighbours", nargs="*", metavar="N", help=argparse.SUPPRESS)
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
    from training.rounds import check_request, finish_committed_update

    if flags.max_steps < 0:
        raise UserError("--max-steps must be 0 (no limit) or more")
    if flags.neighbours is not None:
        raise UserError("train.py has no --neighbours: --probe-neighbours N sets how many neighbours are listed, "
                        "--probe-words WORD... for which words (evaluate.py --neighbours WORD... lists a trained "
                        "model's)")
    directory = ModelDirectory(pathlib.Path(flags.model_dir))
    if "[" in str(directory.root.absolute()):
        # TensorFlow finds a checkpoint's files through a glob, where "[2024]" matches one character, not itself.
        raise UserError(f"--model-dir {flags.model_dir}: TensorFlow cannot read checkpoints in a folder whose path "
                        "holds '[': choose a --model-dir without brackets")
    finish_committed_update(directory)  # A round's start cut short after its commit point (training/rounds.py).
    requested, explicit = requested_config(flags)
    saved = directory.saved_config()
    check_request(directory, saved, requested)
    config = resolved_config(saved, requested, explicit)
    config.validate()  # Bad flag values fail here, in a second, before TensorFlow loads.
    check_evaluation_files(config)
    if flags.metrics_file:
        check_writable_file(pathlib.Path(flags.metrics_file), "--metrics-file")
    if config.training.distribute != "none" and os.environ.get("TF_CONFIG") and not flags.debug:
        # A lost worker makes TensorFlow log a page of collective and gRPC errors from C++ threads (some before
        # any log level applies) around the Python error that the loop turns into one line: on several workers
        # they go to a file of their own, kept only if something was written to it.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        # Named after the process: the next run removes those of processes that ended (a SIGKILL leaves one).
        native_log = process_temporary_file("word2vec-worker-stderr-", "native.log")
        native_stderr_to(native_log)
    import_tensorflow_quietly()
    # A multi-worker strategy starts the cluster, which must come before any other TensorFlow operation.
    from training.distributed import distribution_for
    from training.rounds import check_single_process

    distribution = distribution_for(config.training.distribute)
    if not distribution.single_process:
        check_single_process(config)
    from training.failures import explained_failures
    from training.loop import train

    # Read only when asked for: a damaged checkpoint must reach train()'s checks, which explain it in one line.
    before = checkpoint_progress(directory) if flags.metrics_file else (0, 0.0, 0)
    with explained_failures(directory):
        result = train(config, directory, distribution, max_steps=flags.max_steps)
    if result.interrupted_by:
        return 130 if result.interrupted_by == "SIGINT" else 143
    if result.already_finished:
        return 0
    # A worker other than a multi-worker run's chief sees no checkpoint here (0 steps): it adds no note.
    after = checkpoint_progress(directory) if flags.max_steps or flags.metrics_file else (0, 0.0, 0)
    hit_max_steps = bool(flags.max_steps) and result.steps_this_run >= flags.max_steps
    # Training is over when every epoch is done, or when it ended before that on its own (--early-stop).
    finished = after[2] >= config.training.epochs or (after[0] > 0 and not hit_max_steps)
    stopped = hit_max_steps and after[0] > 0 and not finished
    resumed = f" (step {result.steps:,} in all)" if result.steps != result.steps_this_run else ""
    print(f"trained {result.steps_this_run:,} steps{resumed} in {directory.root} "
          f"({result.words_per_second:,.0f} words/s)"
          + (max_steps_note(flags.max_steps, after[2], config.training.epochs) if stopped else ""))
    if flags.metrics_file:
        # Each batch counts an equal share of its chunk's words, a fraction: the run's total is rounded to words.
        # Words done count from the start of a round: a run that started one read all of its words.
        round_start = config.training.rounds[-1].start_step if config.training.rounds else 0
        steps, words = after[0] - before[0], round(after[1] - (before[1] if before[0] > round_start else 0.0))
        metrics = {"steps": steps, "words": words, "words_per_second": result.words_per_second,
                   "training_seconds": words / max(result.words_per_second, 1e-9),
                   "vocabulary_size": len(result.vocabulary), "embedding_dim": config.model.embedding_dim,
                   "batch_size": config.training.batch_size, "loss": config.training.loss, "finished": finished}
        write_text_atomically(pathlib.Path(flags.metrics_file), json.dumps(metrics, indent=2) + "\n",
                              "the metrics file")

    print_probe_neighbours(result.model.embeddings, result.vocabulary, config)
    return 0


def check_writable_file(path: pathlib.Path, flag: str) -> None:
    """Refuses, before a long run, a file that could not be written at its end: in a missing or unwritable folder."""
    if path.is_dir():
        raise UserError(f"{flag} {path} is a directory: name a file in it")
    folder = path.absolute().parent
    if not folder.is_dir():
        raise UserError(f"{flag} {path}: the folder {shown(folder)} does not exist; create it first")
    reason = unwritable_reason(folder)
    if reason:
        raise ResourceError(f"cannot write {flag} {path}: {shown(folder)} {reason}")


def check_evaluation_files(config: Config) -> None:
    """Reads every --eval-analogies / --eval-similarity file once, so that a missing or malformed one stops the
    run in one line before anything is written (and before TensorFlow loads: reading needs none)."""
    from evaluation.analogies import read_analogy_questions
    from evaluation.similarity import read_word_pairs

    if config.training.eval_analogies:
        read_analogy_questions(config.training.eval_analogies)
    for path in config.training.eval_similarity:
        read_word_pairs(path)


def print_probe_neighbours(embeddings, vocabulary, config: Config) -> None:
    """The probe words' nearest neighbours (or frequent words standing in for them, saying so), then a line when
    the vectors have not learned yet."""
    from training.evaluation_hooks import mean_cosine, random_pairs, unlearned_hint
    from training.tensorboard import chosen_probe_words, neighbours_text, probe_neighbours

    words, missing, note = chosen_probe_words(vocabulary, config.training.probe_words)
    if note:
        print(note)
    if config.training.probe_neighbours:
        for word, neighbours in probe_neighbours(embeddings, vocabulary, words, config.training.probe_neighbours):
            print(f"{word}: {neighbours_text(neighbours)}")
        if missing:
            print(f"not in the vocabulary: {', '.join(missing)}")
    hint = unlearned_hint(mean_cosine(embeddings.numpy(), random_pairs(len(vocabulary))))
    if hint:
        print(hint)


def checkpoint_progress(directory) -> tuple[int, float, int]:
    """(steps, corpus words, epoch) trained so far, as the latest checkpoint records them; the epoch is the
    number of epochs once training is complete. (0, 0.0, 0) before the first checkpoint."""
    import tensorflow as tf

    from training.checkpoints import latest_listed_checkpoint

    latest = latest_listed_checkpoint(str(directory.checkpoints))
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
