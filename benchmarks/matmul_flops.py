"""The machine's matrix-multiply speed at the shapes of the `full` objective, measured with TensorFlow.

    python benchmarks/matmul_flops.py --batch 4096 --dim 100 --vocab 43353

A batch of the full softmax costs three B x D x V products: the logits (B x D times D x V), and the gradients
for the hidden vectors (B x V times V x D) and for W (V x B times B x D); 2 FLOPs per multiply-add, so
6·B·D·V FLOPs. This runs exactly those three products, repeatedly, and prints the FLOP/s they reach as JSON.
"""

import argparse
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from cli import import_tensorflow_quietly


def flag_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, required=True, help="B, pairs per batch")
    parser.add_argument("--dim", type=int, required=True, help="D, the embedding size")
    parser.add_argument("--vocab", type=int, required=True, help="V, the vocabulary size")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to keep multiplying")
    return parser


def matmul_flops_per_second(batch: int, dim: int, vocab: int, seconds: float) -> dict:
    """Runs the three products until `seconds` have passed (after one warm-up call); FLOP/s over all calls."""
    import tensorflow as tf

    generator = tf.random.Generator.from_seed(1)
    hidden = generator.normal([batch, dim])
    weights = generator.normal([vocab, dim])
    logit_gradients = generator.normal([batch, vocab])

    @tf.function
    def three_products():
        logits = tf.matmul(hidden, weights, transpose_b=True)
        hidden_gradients = tf.matmul(logit_gradients, weights)
        weight_gradients = tf.matmul(logit_gradients, hidden, transpose_a=True)
        return logits, hidden_gradients, weight_gradients

    three_products()
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        three_products()
        calls += 1
    flops = 6.0 * batch * dim * vocab * calls
    return {"batch": batch, "dim": dim, "vocab": vocab, "calls": calls, "seconds": elapsed,
            "flops_per_second": flops / elapsed}


def main() -> int:
    flags = flag_parser().parse_args()
    import_tensorflow_quietly()
    print(json.dumps(matmul_flops_per_second(flags.batch, flags.dim, flags.vocab, flags.seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
