"""Words per second of train.py in one process and on two workers (MultiWorkerMirroredStrategy on loopback), and
optionally the quality of both.

    python benchmarks/multi_worker_throughput.py --pin --repeats 3     # each process on a core of its own
    python benchmarks/multi_worker_throughput.py --pin --sync-every 1 16 256 --repeats 1
    python benchmarks/multi_worker_throughput.py --lines 0 --epochs 5 --quality   # whole gcide, scored

Each round trains the same corpus once with `--distribute none` and once as two worker processes given TF_CONFIG
with two loopback addresses (one two-worker run per --sync-every value), one after the other; --repeats rounds
alternate them, and the table reports each setting's median. With --pin, the single process runs on core 0
(`taskset -c 0`) and worker i on core i, so that each process stands for one machine of one core: the ratio of
the two is what a second machine adds, less the network time a real one would add. Without --pin the processes
share all cores.
Results: OUT/multi_worker_throughput.md and .json, headed by the command that made them.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import re
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
    parser.add_argument("--epochs", type=int, default=1, help="--epochs of the training runs")
    parser.add_argument("--sync-every", type=int, nargs="+", default=[Config().training.sync_every],
                        help="--sync-every values of the two-worker runs (one run each per round)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of runs, alternating; medians reported")
    parser.add_argument("--pin", action="store_true", help="each process on a core of its own (taskset -c)")
    parser.add_argument("--quality", action="store_true", help="score each run's E with evaluate.py")
    parser.add_argument("--baseline", metavar="CHECKOUT", help="another checkout (e.g. main before a change) whose "
                        "train.py also runs the one-process setting in every round, for a before/after pair")
    return parser


def run_workers(flags: list[str], workers: int, log_dir: pathlib.Path, pin: bool, checkout: pathlib.Path = ROOT) -> list[dict]:
    """Runs `checkout`'s train.py as `workers` processes (plain, with --distribute none, for one) and parses each
    one's end; with `pin`, process i runs on core i only."""
    ports = free_ports(workers)
    processes, start = [], time.perf_counter()
    for index in range(workers):
        environment = dict(os.environ)
        if workers > 1:
            cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
            environment["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        mode = ["--distribute", "multi-worker" if workers > 1 else "none"]
        pinned = ["taskset", "-c", str(index % os.cpu_count())] if pin else []
        log = open(log_dir / f"workers-{workers}-{index}.log", "w", encoding="utf-8")  # noqa: SIM115 (closed below)
        processes.append((subprocess.Popen([*pinned, sys.executable, str(checkout / "train.py"), *flags, *mode],
                                           cwd=checkout,
                                           env=environment, stdout=log, stderr=subprocess.STDOUT), log))
    results = []
    for index, (process, log) in enumerate(processes):
        process.wait()
        log.close()
        output = (log_dir / f"workers-{workers}-{index}.log").read_text(encoding="utf-8", errors="replace")
        trained = trained_figures(output)
        if process.returncode != 0 or not trained:
            raise UserError(f"worker {index} of {workers} failed; its last lines:\n" + "\n".join(output.splitlines()[-15:]))
        exchanged = re.search(r"([\d,]+) changed rows exchanged per step", output)
        results.append({"wall_seconds": round(time.perf_counter() - start, 1), **trained,
                        "rows_per_exchange_step": int(exchanged.group(1).replace(",", "")) if exchanged else 0})
    return results


def markdown(command: str, rows: list[dict], words: int, epochs: int, pin: bool) -> str:
    placement = ("each process pinned to a core of its own (`taskset -c`: the single process on core 0, worker i "
                 "on core i), so each stands for a one-core machine" if pin else "the processes share all cores")
    setting = (f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, {placement}; load average "
               f"{os.getloadavg()[0]:.1f} at the end; {epochs} epoch(s) of {words:,} words. Words/s are train.py's "
               "own (vocabulary words trained by all workers, over the training time, tracing and compilation "
               "included); each figure is the median over the rounds.")
    quality = any("analogy" in row for row in rows)
    lines = [
        "# Words per second: one process, and two workers on one machine",
        "",
        f"Command: `{command}`",
        "",
        setting,
        "",
        "| workers | --sync-every | steps | pairs per step | changed rows per step | wall s | words/s in all | "
        "ratio to 1 worker | runs |" + (" analogy | WordSim-353 | SimLex-999 |" if quality else ""),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |" + (" --- | --- | --- |" if quality else ""),
    ]
    single = rows[0]["words_per_second"]
    for row in rows:
        workers = f"1, {row['checkout']}" if row["checkout"] else row["workers"]
        line = (f"| {workers} | {row['sync_every'] or '-'} | {row['steps']:,} | {row['pairs_per_step']} | "
                f"{row['rows_per_exchange_step']:,} | {row['wall_seconds']:,.1f} | {row['words_per_second']:,} | "
                f"{row['words_per_second'] / single:.2f} | {', '.join(f'{rate:,}' for rate in row['all_words_per_second'])} |")
        if quality:
            line += f" {row['analogy']:.3f} | {row['wordsim353']:.3f} | {row['simlex999']:.3f} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main() -> int:
    flags = flag_parser().parse_args()
    return run_entry_point(lambda: run(flags))


def median_run(runs: list[dict]) -> dict:
    """The run with the median words/s (the lower middle one for an even count), with every run's words/s."""
    ordered = sorted(runs, key=lambda run: run["words_per_second"])
    return {**ordered[(len(ordered) - 1) // 2], "all_words_per_second": [run["words_per_second"] for run in runs]}


def run(flags: argparse.Namespace) -> int:
    source = existing_corpus(flags.corpus)
    if flags.repeats < 1 or flags.epochs < 1 or min(flags.sync_every) < 1:
        raise UserError("--repeats, --epochs and every --sync-every must be at least 1")
    out = pathlib.Path(flags.out)
    out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "benchmarks/multi_worker_throughput.py", *sys.argv[1:]])
    baseline = [(1, 0, flags.baseline)] if flags.baseline else []
    settings = [(1, 0, ""), *baseline, *[(2, sync_every, "") for sync_every in flags.sync_every]]
    runs: dict[tuple[int, int, str], list[dict]] = {setting: [] for setting in settings}
    with tempfile.TemporaryDirectory(prefix="multi-worker-throughput-") as work:
        work_dir = pathlib.Path(work)
        corpus = work_dir / "corpus.txt"
        _, words = write_repeated_corpus(source, flags.lines or 10**9, 1, corpus)
        for round_number in range(flags.repeats):
            for workers, sync_every, checkout in settings:
                name = f"model-{workers}-{sync_every}-{'baseline-' if checkout else ''}{round_number}"
                train = ["--corpus", str(corpus), "--model-dir", str(work_dir / name), "--epochs", str(flags.epochs),
                         "--dim", str(flags.dim), "--projector-rows", "1000"]
                train += ["--sync-every", str(sync_every)] if sync_every else []
                chief = run_workers(train, workers, work_dir, flags.pin,
                                    pathlib.Path(checkout).resolve() if checkout else ROOT)[0]
                row = {"workers": workers, "sync_every": sync_every, "checkout": checkout, "round": round_number,
                       "pairs_per_step": f"{workers} x {Config().training.batch_size}", **chief}
                if flags.quality:
                    from benchmarks.compare_gensim import scores

                    row.update(scores(["--model-dir", str(work_dir / name)], work_dir, name))
                runs[(workers, sync_every, checkout)].append(row)
                print(json.dumps(row), flush=True)
    rows = [median_run(runs[setting]) for setting in settings]
    result = {"command": command, "corpus": str(source), "lines": flags.lines, "words": words, "epochs": flags.epochs,
              "pinned": flags.pin, "rows": rows, "runs": [run for setting in settings for run in runs[setting]]}
    write_results(out, "multi_worker_throughput", result, markdown(command, rows, words, flags.epochs, flags.pin))
    return 0


if __name__ == "__main__":
    sys.exit(main())
