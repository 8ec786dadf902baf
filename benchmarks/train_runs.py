"""What the benchmarks that run train.py in subprocesses share: where the corpus and the results are by
default, the corpus's first lines written out for the runs, the figures train.py prints at its end, free
loopback ports for a multi-worker run, and the results written as JSON and Markdown side by side."""

import argparse
import datetime
import gzip
import itertools
import json
import os
import pathlib
import platform
import re
import socket
from importlib.metadata import version

from errors import UserError

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpora" / "gcide.txt.gz"
DEFAULT_OUT = ROOT / "benchmarks" / "results"


def add_corpus_flags(parser: argparse.ArgumentParser, dim: int) -> None:
    """--corpus, --lines, --dim (default `dim`) and --out, as every train.py benchmark takes them."""
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="a text file, plain or .gz (default: gcide)")
    parser.add_argument("--lines", type=int, default=50_000, help="lines taken from the start of the corpus")
    parser.add_argument("--dim", type=int, default=dim, help="--dim of the training runs")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="where the results go")


def existing_corpus(path: str) -> pathlib.Path:
    source = pathlib.Path(path)
    if not source.is_file():
        raise UserError(f"corpus {source} not found: pass --corpus (the default is ../shared/corpora/gcide.txt.gz)")
    return source


def write_repeated_corpus(source: pathlib.Path, lines: int, repeats: int, target: pathlib.Path) -> tuple[int, int]:
    """Writes the first `lines` lines of `source`, `repeats` times over; returns (lines, words) written."""
    opener = gzip.open if source.suffix == ".gz" else open
    try:
        with opener(source, "rt", encoding="utf-8", errors="replace") as text:
            head = list(itertools.islice(text, lines))
    except OSError as error:
        raise UserError(f"cannot read the corpus {source}: {error}") from None
    if not head:
        raise UserError(f"corpus {source} holds no lines")
    with open(target, "w", encoding="utf-8") as out:
        for _ in range(repeats):
            out.writelines(head)
    return len(head) * repeats, sum(len(line.split()) for line in head) * repeats


def trained_figures(output: str) -> dict | None:
    """Steps and words/s from train.py's closing `trained N steps in DIR (W words/s)` line, if it printed one."""
    trained = re.search(r"trained ([\d,]+) steps .* \(([\d,]+) words/s\)", output)
    if not trained:
        return None
    return {"steps": int(trained.group(1).replace(",", "")),
            "words_per_second": int(trained.group(2).replace(",", ""))}


def free_ports(count: int) -> list[int]:
    """`count` loopback ports free right now: bound all at once so they differ, then released for the workers."""
    sockets = [socket.socket() for _ in range(count)]
    for open_socket in sockets:
        open_socket.bind(("127.0.0.1", 0))
    ports = [open_socket.getsockname()[1] for open_socket in sockets]
    for open_socket in sockets:
        open_socket.close()
    return ports


def run_context() -> dict:
    """When and where a benchmark ran: its date, the machine, and the versions of TensorFlow, gensim and Python."""
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "versions": {"tensorflow": version("tensorflow"), "gensim": version("gensim"), "python": platform.python_version()},
    }


def write_results(out: pathlib.Path, name: str, result: dict, markdown: str) -> None:
    """OUT/NAME.json and OUT/NAME.md, and the Markdown on standard output."""
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out / f"{name}.md").write_text(markdown, encoding="utf-8")
    print(markdown)
