"""Measures docs/reproducibility.md's table: train.py twice with the same threads and once on one thread, per
objective, and how far the trained E, W and W's bias lie apart.

    python benchmarks/weights_reproducibility.py              # 8,000 lines of the default corpus, 1 epoch

Each run: `--dim 64 --min-count 3 --batch-size 1024 --epochs 1` in a process of its own; "one thread" sets
TF_NUM_INTRAOP_THREADS and TF_NUM_INTEROP_THREADS to 1. Prints one JSON line per objective.
"""

import argparse
import gzip
import itertools
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EMBEDDED_CORPUS = ROOT / "data" / "wordnet_glosses.txt.gz"
VARIABLES = ["E", "W", "W_bias"]


def trained(corpus: pathlib.Path, model_dir: pathlib.Path, loss: str, one_thread: bool) -> dict:
    """Trains in a subprocess and returns the final checkpoint's variables, step and vocabulary."""
    import numpy as np
    import tensorflow as tf

    environment = dict(os.environ)
    if one_thread:
        environment.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    command = [sys.executable, str(ROOT / "train.py"), "--corpus", str(corpus), "--model-dir", str(model_dir),
               "--dim", "64", "--min-count", "3", "--batch-size", "1024", "--epochs", "1", "--loss", loss]
    subprocess.run(command, check=True, env=environment, capture_output=True, cwd=ROOT)
    latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    values = {name: np.asarray(tf.train.load_variable(latest, f"{name}/.ATTRIBUTES/VARIABLE_VALUE"))
              for name in VARIABLES}
    values["step"] = int(tf.train.load_variable(latest, "progress/step/.ATTRIBUTES/VARIABLE_VALUE"))
    values["vocabulary"] = (model_dir / "vocab.tsv").read_text(encoding="utf-8")
    return values


def differences(first: dict, second: dict) -> dict:
    """The largest absolute difference per variable (0.0: bit-identical), and whether step and vocabulary agree."""
    import numpy as np

    return {**{name: float(np.max(np.abs(first[name] - second[name]))) for name in VARIABLES},
            "same_step": first["step"] == second["step"], "same_vocabulary": first["vocabulary"] == second["vocabulary"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=8000)
    parser.add_argument("--losses", default="negative,full,sampled")
    flags = parser.parse_args()
    from cli import import_tensorflow_quietly

    import_tensorflow_quietly()
    with tempfile.TemporaryDirectory() as work:
        corpus = pathlib.Path(work) / "corpus.txt"
        with gzip.open(EMBEDDED_CORPUS, "rt", encoding="utf-8") as text:
            corpus.write_text("".join(itertools.islice(text, flags.lines)), encoding="utf-8")
        for loss in flags.losses.split(","):
            runs = [trained(corpus, pathlib.Path(work) / f"{loss}-{name}", loss, name == "one")
                    for name in ("first", "again", "one")]
            print(json.dumps({"loss": loss, "steps": runs[0]["step"],
                              "same threads, two runs": differences(runs[0], runs[1]),
                              "1 thread vs default": differences(runs[0], runs[2])}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
