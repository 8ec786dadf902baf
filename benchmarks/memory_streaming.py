"""Peak memory of train.py on a corpus and on the same corpus repeated: streaming means it barely grows.

    python benchmarks/memory_streaming.py                        # the first 50k lines of gcide, 1x and 4x
    python benchmarks/memory_streaming.py --corpus my.txt.gz --lines 20000 --repeats 1 2 8 --out runs/memory
    python benchmarks/memory_streaming.py --one-line --repeats 4     # the same text, also as one single line

The corpus's first `--lines` lines are written N times over into a temporary plain-text file, and train.py
trains one epoch on each in a subprocess of its own. With --min-count 1 the vocabulary is the same for every N
(the same lines, N times the counts), so whatever memory grows with N is memory that holds the corpus: the issue's target is
under 10% from 1x to 4x. Peak memory is the child's maximum resident set size (wait4); the resident set is
also sampled from /proc while it runs, to show that it levels off instead of climbing.
With --one-line, each corpus is also trained written as one single line (its line breaks turned into spaces), as
a file without line breaks would be: chunks are cut at MAX_CHUNK_WORDS words, so its peak should stay near the
same text's in lines.
Results: OUT/memory_streaming.md and OUT/memory_streaming.json (OUT/memory_long_line.* with --one-line), headed
by the command that made them.
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
    trained_figures,
    write_repeated_corpus,
    write_results,
)
from cli import run_entry_point
from errors import UserError

SAMPLE_SECONDS = 0.25  # how often the child's resident set is read from /proc
TARGET_GROWTH = 0.10  # the bound on peak-memory growth from 1x to 4x


def flag_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_flags(parser, dim=50)
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 4], help="how many times the lines are repeated")
    parser.add_argument("--one-line", action="store_true", help="also train each corpus written as one single line")
    return parser


def resident_mb(pid: int) -> float | None:
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else None


def run_measured(command: list[str], log_path: pathlib.Path) -> dict:
    """Runs train.py to completion; its wall time, peak resident memory (wait4) and sampled resident memory.

    Linux carries a parent's own peak into its child's ru_maxrss at exec, so this process never imports
    TensorFlow and stays far below what it measures."""
    samples, start = [], time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            megabytes = resident_mb(process.pid)
            if megabytes is not None:
                samples.append((time.perf_counter() - start, megabytes))
            time.sleep(SAMPLE_SECONDS)
    wall_seconds = time.perf_counter() - start
    output = log_path.read_text(encoding="utf-8", errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise UserError(f"{shlex.join(command)} failed; its last lines:\n" + "\n".join(output.splitlines()[-15:]))
    vocabulary = re.search(r"vocabulary: ([\d,]+) words", output)
    return {
        "wall_seconds": round(wall_seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux reports ru_maxrss in kilobytes.
        "rss_quartiles_mb": [round(rss_at(samples, wall_seconds * quarter / 4), 1) for quarter in (1, 2, 3, 4)],
        **trained_figures(output),
        "vocabulary": int(vocabulary.group(1).replace(",", "")),
    }


def rss_at(samples: list[tuple[float, float]], seconds: float) -> float:
    """The last sampled resident set at or before `seconds` into the run."""
    earlier = [megabytes for at, megabytes in samples if at <= seconds]
    return earlier[-1] if earlier else float("nan")


def markdown(command: str, rows: list[dict], growth: float) -> str:
    lines = [
        "# Peak memory of train.py on a corpus repeated N times",
        "",
        f"Command: `{command}`",
        "",
        f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores; one epoch each.",
        "",
        "| repeats | lines | words | vocabulary | steps | wall s | words/s | peak RSS MB | RSS at 25/50/75/100% of the run, MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        quartiles = " / ".join(f"{value:,.0f}" for value in row["rss_quartiles_mb"])
        lines.append(
            f"| {row['repeats']}x | {row['lines']:,} | {row['words']:,} | {row['vocabulary']:,} | {row['steps']:,} | "
            f"{row['wall_seconds']:,.1f} | {row['words_per_second']:,} | {row['peak_rss_mb']:,.0f} | {quartiles} |"
        )
    in_lines = [row for row in rows if row["lines"] > 1]
    verdict = "within" if growth < TARGET_GROWTH else "OVER"
    summary = (f"Peak growth from {in_lines[0]['repeats']}x to {in_lines[-1]['repeats']}x: {100 * growth:+.1f}% "
               f"({verdict} the {100 * TARGET_GROWTH:.0f}% target).")
    lines += ["", summary] if in_lines[0]["repeats"] != in_lines[-1]["repeats"] else [""]
    for one_line in (row for row in rows if row["lines"] == 1):
        same = next(row for row in in_lines if row["repeats"] == one_line["repeats"])
        lines.append(f"The {one_line['repeats']}x text as one line of {one_line['words']:,} words: peak "
                     f"{one_line['peak_rss_mb']:,.0f} MB, {100 * (one_line['peak_rss_mb'] / same['peak_rss_mb'] - 1):+.1f}% "
                     f"on the same text in {same['lines']:,} lines.")
    return "\n".join(lines) + "\n"


def main() -> int:
    flags = flag_parser().parse_args()
    return run_entry_point(lambda: run(flags))


def run(flags: argparse.Namespace) -> int:
    source = existing_corpus(flags.corpus)
    if flags.lines < 1 or min(flags.repeats) < 1:
        raise UserError("--lines and --repeats must be at least 1")
    out = pathlib.Path(flags.out)
    out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "benchmarks/memory_streaming.py", *sys.argv[1:]])
    rows = []
    with tempfile.TemporaryDirectory(prefix="memory-streaming-") as work:
        work_dir = pathlib.Path(work)
        for repeats in sorted(flags.repeats):
            corpus = work_dir / f"corpus-{repeats}x.txt"
            lines, words = write_repeated_corpus(source, flags.lines, repeats, corpus)
            layouts = [("lines", lines)] + [("one-line", 1)] * flags.one_line
            for layout, line_count in layouts:
                if layout == "one-line":
                    text = corpus.read_text(encoding="utf-8")
                    corpus.write_text(" ".join(text.split("\n")).strip() + "\n", encoding="utf-8")
                train = [sys.executable, str(ROOT / "train.py"), "--corpus", str(corpus), "--model-dir",
                         str(work_dir / f"model-{repeats}x-{layout}"), "--epochs", "1", "--dim", str(flags.dim),
                         "--min-count", "1", "--projector-rows", "1000"]
                measured = run_measured(train, work_dir / f"train-{repeats}x-{layout}.log")
                rows.append({"repeats": repeats, "lines": line_count, "words": words, **measured})
                print(json.dumps(rows[-1]), flush=True)
            corpus.unlink()
    in_lines = [row for row in rows if row["lines"] > 1]
    growth = in_lines[-1]["peak_rss_mb"] / in_lines[0]["peak_rss_mb"] - 1.0
    result = {"command": command, "corpus": str(source), "dim": flags.dim, "rows": rows, "peak_growth": growth}
    name = "memory_long_line" if flags.one_line else "memory_streaming"
    write_results(out, name, result, markdown(command, rows, growth))
    return 0


if __name__ == "__main__":
    sys.exit(main())
