"""Whether the rows of E a step moves could cost less, measured on real batches under XLA (one thread):

- `per pair`: what the step does, one row gathered and one scattered per pair of the batch (2,048);
- `distinct rows once`: each distinct row of the batch gathered once and scattered once (about half as many),
  through compact ids: the pairs read their rows from the small block of distinct rows, and their gradients are
  summed into it (`unsorted_segment_sum`) before the one scatter. XLA needs static shapes, so the distinct rows
  are padded to the batch size; the padding ids are out of range, which XLA's scatter skips;
- `per pair + update check`: the step's scatter with the non-finite check of its update that issue 11's step made
  (`tf.reduce_all(tf.math.is_finite(update))`), for what that check costs; the step now checks its loss instead
  (model/train_step.py), and no update is checked.

    python benchmarks/row_traffic.py                          # gcide's first 60,000 lines, dim 300
    python benchmarks/row_traffic.py --dim 100 --rows 60000   # ids spread over 60,000 rows (E beyond the cache)

Both ways of moving rows are checked to leave E equal (up to float summation order) before they are timed.
Figures: CPU microseconds per batch, the median of rounds taken in turn.
"""

import argparse
import json
import pathlib
import resource
import statistics
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.train_runs import DEFAULT_CORPUS


def flag_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="a text file, plain or .gz (default: gcide)")
    parser.add_argument("--lines", type=int, default=60_000, help="lines taken from the start of the corpus")
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--rows", type=int, default=0,
                        help="rows of E, the batch's ids spread over them (default: the vocabulary's size)")
    parser.add_argument("--batches", type=int, default=64, help="batches of the pipeline used, in turn")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", help="also write the figures here")
    return parser


def compact_ids(centres, rows: int):
    """Per batch: its distinct ids padded to the batch size with `rows` (out of range), and each pair's index
    into them."""
    import numpy as np

    distinct, index, counts = [], [], []
    for batch in centres:
        ids, inverse = np.unique(batch, return_inverse=True)
        counts.append(len(ids))
        distinct.append(np.concatenate([ids, np.full(len(batch) - len(ids), rows)]).astype(np.int32))
        index.append(inverse.astype(np.int32))
    return np.stack(distinct), np.stack(index), counts


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    flags = flag_parser().parse_args()
    from cli import import_tensorflow_quietly

    import_tensorflow_quietly()
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from config import Config
    from data_pipeline.pairs import chunk_ids, training_batches
    from data_pipeline.sources import corpus_lines
    from data_pipeline.vocabulary import build_vocabulary

    config = Config()
    lines = corpus_lines([flags.corpus]).take(flags.lines)
    vocabulary = build_vocabulary(lines, config.data.token_pattern, config.data.min_count)
    chunks = chunk_ids(lines, vocabulary, config.data.token_pattern)
    batches = training_batches(chunks, vocabulary, window_size=config.data.window_size, sample=config.data.sample,
                               batch_size=config.training.batch_size)
    held = [batch["centres"].numpy() for batch in batches.take(flags.batches)]
    rows = flags.rows or len(vocabulary)
    centres = (np.stack(held).astype(np.int64) * rows // len(vocabulary)).astype(np.int32)
    distinct, index, counts = compact_ids(centres, rows)
    batch_size, count = centres.shape[1], len(held)

    initial = np.random.default_rng(1).uniform(-0.5, 0.5, (rows, flags.dim)).astype(np.float32) / flags.dim
    embeddings = tf.Variable(initial)
    gradients = tf.constant(np.random.default_rng(2).normal(0.0, 1e-3, (count, batch_size, flags.dim)).astype(np.float32))
    centres, distinct, index = tf.constant(centres), tf.constant(distinct), tf.constant(index)

    # Each reads the rows (as a step's products do) and scatters a gradient that depends on them.
    @tf.function(jit_compile=True)
    def per_pair(step: tf.Tensor) -> tf.Tensor:
        pair_rows = tf.gather(embeddings, centres[step])
        update = gradients[step] + 1e-3 * pair_rows
        embeddings.scatter_sub(tf.IndexedSlices(update, centres[step]))
        return tf.constant(True)

    @tf.function(jit_compile=True)
    def distinct_rows_once(step: tf.Tensor) -> tf.Tensor:
        block = tf.gather(embeddings, tf.minimum(distinct[step], rows - 1))  # Padding reads the last row, unused.
        pair_rows = tf.gather(block, index[step])
        update = tf.math.unsorted_segment_sum(gradients[step] + 1e-3 * pair_rows, index[step], batch_size)
        embeddings.scatter_sub(tf.IndexedSlices(update, distinct[step]))  # Padding ids are out of range: skipped.
        return tf.constant(True)

    @tf.function(jit_compile=True)
    def per_pair_checked(step: tf.Tensor) -> tf.Tensor:
        pair_rows = tf.gather(embeddings, centres[step])
        update = gradients[step] + 1e-3 * pair_rows
        embeddings.scatter_sub(tf.IndexedSlices(update, centres[step]))
        return tf.reduce_all(tf.math.is_finite(update))

    ways = {"per pair": per_pair, "distinct rows once": distinct_rows_once, "per pair + update check": per_pair_checked}
    after = {}
    for name, way in ways.items():  # One step each from the same E: the two ways must agree.
        embeddings.assign(initial)
        way(tf.constant(0))
        after[name] = embeddings.numpy()
    if not np.allclose(after["per pair"], after["distinct rows once"], rtol=1e-5, atol=1e-7):
        raise SystemExit("distinct rows once does not update E as per pair does")

    times = {name: [] for name in ways}
    for _ in range(flags.rounds):
        for name, way in ways.items():
            start = cpu_seconds()
            for step in range(count):
                way(tf.constant(step))
            times[name].append(1e6 * (cpu_seconds() - start) / count)
    figures = {"corpus": flags.corpus, "lines": flags.lines, "dim": flags.dim, "rows": rows,
               "vocabulary": len(vocabulary), "batch_size": batch_size,
               "distinct_centres_per_batch_median": int(np.median(counts)),
               "cpu_us_per_batch": {name: round(statistics.median(values), 1) for name, values in times.items()}}
    print(json.dumps(figures, indent=2))
    if flags.json:
        pathlib.Path(flags.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
