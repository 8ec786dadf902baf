"""Where a step of the training loop goes, against the step and the pipeline timed alone (issue 12).

    python benchmarks/loop_profile.py                    # gcide's first 60,000 lines, dim 100, 3 rounds
    python benchmarks/loop_profile.py --lines 100000000 --calls 50,200 --rounds 5   # gcide whole, its vocabulary

Every row runs the step runner (training/step_runner.py) as the training loop does, per batch of 2,048 pairs,
wall ms and CPU ms (this process's user + system time), each row's median over `--rounds` rounds taken in turn:
"pipeline alone" drains the batches inside TensorFlow; "step alone" trains on batches held in memory; "live"
rows pull from the live pipeline (`training_batches` over cached token ids, as the loop does); "no-op step" is
a step that reads the batch's weights and does nothing else (the graph loop, the tallies and the pipeline
alone). `--calls` gives the steps per call of the step runner (the loop's are `WAKE_EVERY`, training/loop.py);
one call of all the row's steps shows what the calls cost.
The threading flags set TensorFlow's inter-/intra-op pools and the batches' tf.data options, to compare them.
"""

import argparse
import json
import pathlib
import statistics
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.step_time import timed
from benchmarks.train_runs import DEFAULT_CORPUS


def flag_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="a text file, plain or .gz (default: gcide)")
    parser.add_argument("--lines", type=int, default=60_000, help="lines taken from the start of the corpus")
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1500, help="batches per row and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--inter-op", type=int, default=0, help="tf.config.threading inter-op threads (0: TF's)")
    parser.add_argument("--intra-op", type=int, default=0, help="tf.config.threading intra-op threads (0: TF's)")
    parser.add_argument("--private-pool", type=int, default=0, help="the batches' private tf.data pool (0: none)")
    parser.add_argument("--prefetch", type=int, default=0, help="a further prefetch of this many batches (0: none)")
    parser.add_argument("--calls", default="50,200", help="steps per call of the loop's rows, comma-separated")
    parser.add_argument("--json", help="also write the figures here")
    return parser


def in_calls(run_steps, iterator, steps: int, per_call: int) -> None:
    """`steps` steps in calls of `per_call`, as the loop makes them."""
    done = 0
    while done < steps:
        done += run_steps([iterator], min(per_call, steps - done), False).steps


def main() -> int:
    flags = flag_parser().parse_args()
    from cli import import_tensorflow_quietly

    import_tensorflow_quietly()
    import tensorflow as tf

    if flags.inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(flags.inter_op)
    if flags.intra_op:
        tf.config.threading.set_intra_op_parallelism_threads(flags.intra_op)

    from config import Config
    from data_pipeline.pairs import chunk_ids, training_batches
    from data_pipeline.sources import corpus_lines
    from data_pipeline.vocabulary import build_vocabulary
    from model.optimizer import BatchSGD
    from model.replica_exchange import Collectives, ReplicaExchange
    from model.skipgram import SkipGram
    from model.train_step import make_train_step
    from training.checkpoints import Progress
    from training.loop import WAKE_EVERY, objective_for
    from training.step_runner import linear_decay, make_step_runner

    config = Config()
    config.data.corpus, config.model.embedding_dim = [flags.corpus], flags.dim
    lines = corpus_lines(config.data.corpus).take(flags.lines)
    vocabulary = build_vocabulary(lines, config.data.token_pattern, config.data.min_count)
    chunks = chunk_ids(lines, vocabulary, config.data.token_pattern).cache()
    chunks.reduce(0, lambda count, _: count + 1)
    objective, noise_shape = objective_for(config, vocabulary)

    def batches(epoch: int) -> tf.data.Dataset:
        made = training_batches(chunks, vocabulary, window_size=config.data.window_size, sample=config.data.sample,
                                batch_size=config.training.batch_size, noise_shape=noise_shape, epoch=epoch)
        if flags.private_pool:
            options = tf.data.Options()
            options.threading.private_threadpool_size = flags.private_pool
            made = made.with_options(options)
        if flags.prefetch:
            made = made.prefetch(flags.prefetch)
        return made.repeat()

    def runner(step) -> callable:
        strategy = tf.distribute.get_strategy()
        return make_step_runner(strategy, step, Progress(), linear_decay(config.training.learning_rate, 1e-4, 1e12),
                                ReplicaExchange(strategy, Collectives(1), None), 1)

    @tf.function(autograph=False)
    def no_op_step(batch: dict, learning_rate: tf.Tensor):
        return tf.reduce_sum(batch["weights"]) * 0.0 + learning_rate * 0.0 + 1.0

    steps = flags.steps
    held = list(batches(2).take(steps))
    in_memory = tf.data.Dataset.from_tensor_slices({key: tf.stack([batch[key] for batch in held]) for key in held[0]})
    model = SkipGram(len(vocabulary), flags.dim, name="skipgram")
    real, no_op = runner(make_train_step(model, objective, BatchSGD())), runner(no_op_step)
    memory, live, live_no_op = iter(in_memory.repeat()), iter(batches(3)), iter(batches(4))
    count = lambda dataset: dataset.take(steps).reduce(tf.constant(0, tf.int64), lambda total, _: total + 1)
    per_call = [int(value) for value in flags.calls.split(",")]
    rows = {"pipeline alone (drained in TensorFlow)": lambda: count(batches(1))}
    for calls in per_call:
        rows[f"step alone, calls of {calls}"] = lambda calls=calls: in_calls(real, memory, steps, calls)
    rows["step alone, one call"] = lambda: in_calls(real, memory, steps, steps)
    for calls in per_call:
        rows[f"live pipeline + step, calls of {calls}"] = lambda calls=calls: in_calls(real, live, steps, calls)
    rows["live pipeline + step, one call"] = lambda: in_calls(real, live, steps, steps)
    rows[f"live pipeline + no-op step, calls of {WAKE_EVERY}"] = lambda: in_calls(no_op, live_no_op, steps, WAKE_EVERY)
    for run in (lambda: in_calls(real, memory, 100, 50), lambda: in_calls(real, live, 100, 50),
                lambda: in_calls(no_op, live_no_op, 100, 50)):
        run()  # Traces and compiles.
    measured = {name: [] for name in rows}
    for _ in range(flags.rounds):
        for name, run in rows.items():
            measured[name].append(timed(run, steps))
    figures = {"corpus": flags.corpus, "lines": flags.lines, "dim": flags.dim, "vocabulary": len(vocabulary),
               "steps": steps, "rounds": flags.rounds, "inter_op": flags.inter_op, "intra_op": flags.intra_op,
               "private_pool": flags.private_pool, "prefetch": flags.prefetch, "rows": {
                   name: {"wall_ms": statistics.median(r["wall_ms"] for r in runs),
                          "cpu_ms": statistics.median(r["cpu_ms"] for r in runs),
                          "wall_ms_rounds": [round(r["wall_ms"], 3) for r in runs]}
                   for name, runs in measured.items()}}
    width = max(map(len, rows))
    for name, row in figures["rows"].items():
        print(f"{name:<{width}}  {row['wall_ms']:6.3f} / {row['cpu_ms']:6.3f} ms  (wall: {row['wall_ms_rounds']})")
    if flags.json:
        pathlib.Path(flags.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
