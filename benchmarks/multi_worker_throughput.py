"""Words per second of train.py in one process and on two workers (MultiWorkerMirroredStrategy on loopback).

    python benchmarks/multi_worker_throughput.py                  # the first 50k lines of gcide, one epoch
    python benchmarks/multi_worker_throughput.py --corpus my.txt.gz --lines 20000 --out runs/throughput

Both runs train the same corpus, one after the other: once with `--distribute none`, once as two worker
processes given TF_CONFIG with two loopback addresses. On one machine the two workers share its cores, so
this measures what the collectives cost per step, not the speed-up of two machines: each worker's rate is
what one machine of a real cluster would contribute, less the network time it would add.
Results: OUT/multi_worker_throughput.md and .json, headed by the command that made them.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import shlex
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.train_runs import (
    add_corpus_flags,
    existing_corpus,
    free_ports,
    trained_figures,
    write_repeated_corpus,
    write_results,
)
from cli import run_entry_point
from config import Config
from errors import UserError


def flag_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_flags(parser, dim=100)
    return parser


def run_workers(flags: list[str], workers: int, log_dir: pathlib.Path) -> list[dict]:
    """Runs train.py as `workers` processes (plain, with --distribute none, for one) and parses each one's end."""
    ports = free_ports(workers)
    processes, start = [], time.perf_counter()
    for index in range(workers):
        environment = dict(os.environ)
        if workers > 1:
            cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
            environment["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        mode = ["--distribute", "multi-worker" if workers > 1 else "none"]
        log = open(log_dir / f"workers-{workers}-{index}.log", "w", encoding="utf-8")  # noqa: SIM115 (closed below)
        processes.append((subprocess.Popen([sys.executable, str(ROOT / "train.py"), *flags, *mode], cwd=ROOT,
                                           env=environment, stdout=log, stderr=subprocess.STDOUT), log))
    results = []
    for index, (process, log) in enumerate(processes):
        process.wait()
        log.close()
        output = (log_dir / f"workers-{workers}-{index}.log").read_text(encoding="utf-8", errors="replace")
        trained = trained_figures(output)
        if process.returncode != 0 or not trained:
            raise UserError(f"worker {index} of {workers} failed; its last lines:\n" + "\n".join(output.splitlines()[-15:]))
        results.append({"wall_seconds": round(time.perf_counter() - start, 1), **trained})
    return results


def markdown(command: str, rows: list[dict], words: int) -> str:
    setting = (f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, shared with other work "
               f"(load average {os.getloadavg()[0]:.1f} at the end); one "
               f"epoch of {words:,} words. Words/s are train.py's own (vocabulary words trained, over the training "
               "time, tracing and compilation included), summed over the workers.")
    lines = [
        "# Words per second: one process, and two workers on one machine",
        "",
        f"Command: `{command}`",
        "",
        setting,
        "",
        "| workers | steps | pairs per step | wall s | words/s in all | words/s per worker |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(f"| {row['workers']} | {row['steps']:,} | {row['pairs_per_step']} | {row['wall_seconds']:,.1f} | "
                     f"{row['words_per_second']:,} | {row['words_per_second'] // row['workers']:,} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    flags = flag_parser().parse_args()
    return run_entry_point(lambda: run(flags))


def run(flags: argparse.Namespace) -> int:
    source = existing_corpus(flags.corpus)
    out = pathlib.Path(flags.out)
    out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "benchmarks/multi_worker_throughput.py", *sys.argv[1:]])
    rows = []
    with tempfile.TemporaryDirectory(prefix="multi-worker-throughput-") as work:
        work_dir = pathlib.Path(work)
        corpus = work_dir / "corpus.txt"
        _, words = write_repeated_corpus(source, flags.lines, 1, corpus)
        for workers in (1, 2):
            train = ["--corpus", str(corpus), "--model-dir", str(work_dir / f"model-{workers}"), "--epochs", "1",
                     "--dim", str(flags.dim), "--projector-rows", "1000"]
            chief = run_workers(train, workers, work_dir)[0]
            rows.append({"workers": workers, "pairs_per_step": f"{workers} x {Config().training.batch_size}", **chief})
            print(json.dumps(rows[-1]), flush=True)
    result = {"command": command, "corpus": str(source), "lines": flags.lines, "words": words, "rows": rows}
    write_results(out, "multi_worker_throughput", result, markdown(command, rows, words))
    return 0


if __name__ == "__main__":
    sys.exit(main())
