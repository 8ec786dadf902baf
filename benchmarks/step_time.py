"""Where a training step's time goes: the input pipeline alone, the compiled step alone, both together, and the
step's own compiled operations grouped by what they do.

    python benchmarks/step_time.py                       # gcide's first 60,000 lines, dim 100
    python benchmarks/step_time.py --dim 300 --ops       # also the per-operation profile (TensorFlow's profiler)

Timings are per batch of 2,048 pairs: wall milliseconds and CPU milliseconds (this process's user + system time;
CPU / wall is the number of cores kept busy). "Pipeline alone" drains one epoch of `training_batches` from cached
token ids inside TensorFlow (no Python per batch); "step alone" runs the step runner on batches held in memory;
"both" is the training loop's own arrangement, the runner pulling from the live pipeline. With `--ops`, XLA's
operations of the step are traced (XLA_FLAGS=--xla_cpu_enable_xprof_traceme) and their CPU time summed by kind.
"""

import argparse
import collections
import glob
import json
import os
import pathlib
import resource
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.train_runs import DEFAULT_CORPUS

# XLA operation names (after fusion) by what they do, first match wins.
KINDS = [("gather rows", ("gather",)), ("scatter rows", ("scatter",)), ("matrix products", ("dot", "matmul")),
         ("reductions", ("reduce",)), ("softplus / sigmoid", ("select", "exp", "log")),
         ("elementwise", ("multiply", "add", "concatenate", "compare", "convert", "divide", "broadcast"))]


def flag_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="a text file, plain or .gz (default: gcide)")
    parser.add_argument("--lines", type=int, default=60_000, help="lines taken from the start of the corpus")
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1500, help="batches held in memory for the step alone")
    parser.add_argument("--ops", action="store_true", help="also profile the step's compiled operations")
    parser.add_argument("--json", help="also write the figures here")
    return parser


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(run, batches: int) -> dict:
    """Wall and CPU milliseconds per batch of `run()`, which handles `batches` batches."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    run()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    return {"wall_ms": 1e3 * wall / batches, "cpu_ms": 1e3 * cpu / batches, "cores": cpu / max(wall, 1e-9)}


def operation_kinds(trace_dir: str, steps: int) -> dict:
    """CPU microseconds per step of the traced XLA operations, summed by kind (KINDS)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(pathlib.Path(max(glob.glob(f"{trace_dir}/plugins/profile/*/*.xplane.pb"))).read_bytes())
    kinds = collections.Counter()
    for plane in space.planes:
        names = {key: value.name for key, value in plane.event_metadata.items()}
        for line in plane.lines:
            if "Eigen" not in line.name and "tf_Compute" not in line.name:
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if name.startswith(("Executor", "Thunk", "CpuExecutable", "BlockUntil", "while", "Slinky", "end:")):
                    continue
                kind = next((kind for kind, words in KINDS if any(word in name.lower() for word in words)), "other")
                kinds[kind] += event.duration_ps / 1e6 / steps
    return dict(kinds.most_common())


def main() -> int:
    flags = flag_parser().parse_args()
    if flags.ops:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_enable_xprof_traceme=true").strip()
    from cli import import_tensorflow_quietly

    import_tensorflow_quietly()
    import tensorflow as tf

    from config import Config
    from data_pipeline.pairs import chunk_ids, training_batches
    from data_pipeline.sources import corpus_lines
    from data_pipeline.vocabulary import build_vocabulary
    from model.optimizer import BatchSGD
    from model.replica_exchange import Collectives, ReplicaExchange
    from model.skipgram import SkipGram
    from model.train_step import make_train_step
    from training.checkpoints import Progress
    from training.loop import objective_for
    from training.step_runner import linear_decay, make_step_runner

    config = Config()
    config.data.corpus, config.model.embedding_dim = [flags.corpus], flags.dim
    lines = corpus_lines(config.data.corpus).take(flags.lines)
    vocabulary = build_vocabulary(lines, config.data.token_pattern, config.data.min_count)
    chunks = chunk_ids(lines, vocabulary, config.data.token_pattern).cache()
    chunks.reduce(0, lambda count, _: count + 1)
    objective, noise_shape = objective_for(config, vocabulary)

    def batches(epoch: int) -> tf.data.Dataset:
        return training_batches(chunks, vocabulary, window_size=config.data.window_size, sample=config.data.sample,
                                batch_size=config.training.batch_size, noise_shape=noise_shape, epoch=epoch)

    count = lambda dataset: dataset.reduce(tf.constant(0, tf.int64), lambda total, _: total + 1)
    epoch_batches = int(count(batches(0)))
    figures = {"corpus": flags.corpus, "lines": flags.lines, "dim": flags.dim, "vocabulary": len(vocabulary),
               "batches_per_epoch": epoch_batches,
               "pipeline alone": timed(lambda: count(batches(1)), epoch_batches)}

    held = list(batches(2).take(flags.steps))
    in_memory = tf.data.Dataset.from_tensor_slices({key: tf.stack([batch[key] for batch in held]) for key in held[0]})
    model = SkipGram(len(vocabulary), flags.dim, name="skipgram")
    strategy = tf.distribute.get_strategy()
    run_steps = make_step_runner(strategy, make_train_step(model, objective, BatchSGD()), Progress(),
                                 linear_decay(config.training.learning_rate, 1e-4, 1e12),
                                 ReplicaExchange(strategy, Collectives(1), None), 1)
    memory_iterator = iter(in_memory.repeat())
    run_steps([memory_iterator], 20, False)  # Traces and compiles the step.
    figures["step alone"] = timed(lambda: run_steps([memory_iterator], len(held), False), len(held))
    live_iterator = iter(batches(3).repeat())
    run_steps([live_iterator], 20, False)
    figures["both"] = timed(lambda: run_steps([live_iterator], epoch_batches, False), epoch_batches)
    if flags.ops:
        with tempfile.TemporaryDirectory() as trace_dir:
            tf.profiler.experimental.start(trace_dir)
            run_steps([memory_iterator], 300, False)
            tf.profiler.experimental.stop()
            figures["step operations, CPU us per step"] = operation_kinds(trace_dir, 300)
    print(json.dumps(figures, indent=2))
    if flags.json:
        pathlib.Path(flags.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
