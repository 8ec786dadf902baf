"""This project's train.py side by side with gensim's skip-gram Word2Vec: speed, memory and quality, in one run.

    python benchmarks/compare_gensim.py                          # gcide: rows 100, 300, default and full
    python benchmarks/compare_gensim.py --quick --rows 100 --cores 2 # the first 20k lines, for development
    python benchmarks/compare_gensim.py --corpus my.txt.gz --rows 100,full --out runs/bench

Each training runs in its own subprocess, one after the other, so that wall time and peak memory (the
child's maximum resident set size, from wait4) belong to one system only. Both get the same hyperparameters
(window 5, negatives 5, sample 1e-3, min-count 5, 5 epochs, 2 threads, seed 1), the same plain-text corpus,
and are scored by the same code (the evaluation package: analogies with restrict_vocab 30000, WordSim-353,
SimLex-999). Words/s are counted as gensim counts them: raw corpus words x epochs / training seconds.

Rows: `100` and `300` train both at that dimension with this project's default objective, on two cores and
pinned to one (`--cores 2,1`: `taskset -c 0`, gensim with workers=1), several pairs in turn (`--repeats`: ours,
gensim, ours, ...; the median of each time); `negN` (e.g. `neg15`) does the same at dim 100 with N negatives
instead of 5; `default` is a user's first run, `python train.py` on the embedded corpus with every flag at its
default, against gensim on the same text at the same settings; `full` trains this project's exact softmax
(dim 100) for a bounded number of steps and reports the FLOP/s its three B x D x V products reach, next to the
machine's matmul FLOP/s measured in the same run at the same shapes; `objectives` trains this project's three
objectives (negative, sampled, full) and gensim on equal data, bounded so that the full softmax finishes
(--objectives-epochs, --objectives-max-vocab), for their quality and cost side by side.
Results: OUT/results.md and OUT/results.json.
"""

import argparse
import dataclasses
import gzip
import json
import math
import os
import pathlib
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.train_runs import DEFAULT_CORPUS, DEFAULT_OUT, run_context
from cli import run_entry_point
from errors import UserError

# data_pipeline.sources.EMBEDDED_CORPUS, named here because importing it would load TensorFlow into this process.
EMBEDDED_CORPUS = ROOT / "data" / "wordnet_glosses.txt.gz"
QUICK_LINES = 20000  # --quick trains on this many lines of the corpus
FULL_STEPS, QUICK_FULL_STEPS = 20, 8  # steps of the bounded `full` run (a step is ~100 GFLOP on gcide)
WARMUP_STEPS = 3  # steps of the second, shorter `full` run whose time is subtracted: start-up and first steps
MATMUL_SECONDS = 10.0  # how long the matmul reference multiplies
# The objectives row: the full softmax at gcide's 43k words costs ~0.38 s a step, 70 minutes an epoch; a vocabulary
# of 10,000 words and one epoch bound it to about ten minutes.
OBJECTIVES_EPOCHS, OBJECTIVES_MAX_VOCAB = 1, 10_000
ANALOGY_RESTRICT_VOCAB = 30000


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
    """What both systems are given; the rest of each system's settings stay at its own defaults."""

    window: int = 5
    negatives: int = 5
    sample: float = 1e-3
    min_count: int = 5
    epochs: int = 5
    threads: int = 2
    seed: int = 1
    max_vocab: int = 0  # 0: every word seen min_count times


@dataclasses.dataclass(frozen=True)
class Corpus:
    path: pathlib.Path  # plain text, one sentence per line
    source: str
    lines: int
    words: int  # whitespace-separated tokens: what gensim counts as raw corpus words


@dataclasses.dataclass(frozen=True)
class Process:
    wall_seconds: float
    peak_rss_mb: float


def flag_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="a text corpus, plain or .gz, a sentence a line")
    parser.add_argument("--out", help="where results.md and results.json go "
                                      f"(default {DEFAULT_OUT.relative_to(ROOT)}, or its quick/ folder with --quick)")
    parser.add_argument("--rows", default="100,300,default,full",
                        help="comma-separated rows: dims (100, 300), negN (dim 100, N negatives), default (a first "
                             "run), full, objectives")
    parser.add_argument("--cores", default="2,1", help="comma-separated core counts for the dim rows (1: taskset -c 0)")
    parser.add_argument("--repeats", type=int, default=1, help="pairs of runs in turn per row; times are medians")
    parser.add_argument("--quick", action="store_true", help=f"train on the first {QUICK_LINES:,} lines only")
    parser.add_argument("--full-steps", type=int,
                        help=f"steps of the full-softmax row (default {FULL_STEPS}; {QUICK_FULL_STEPS} with --quick)")
    parser.add_argument("--matmul-seconds", type=float, default=MATMUL_SECONDS, help="how long the matmul runs")
    parser.add_argument("--objectives-epochs", type=int, default=OBJECTIVES_EPOCHS,
                        help="epochs of the objectives row (the full softmax costs a B x D x V product per step)")
    parser.add_argument("--objectives-max-vocab", type=int, default=OBJECTIVES_MAX_VOCAB,
                        help="vocabulary cap of the objectives row, for both systems (0: none)")
    parser.add_argument("--work-dir", help="keep the trained models and logs here (default: a temporary directory)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def parsed_rows(text: str) -> list[str]:
    rows = [row.strip() for row in text.split(",") if row.strip()]
    for row in rows:
        if row not in ("full", "default", "objectives") and row_dimension_and_negatives(row) is None:
            raise UserError(f"--rows: {row!r} is none of a dimension (e.g. 100), negN (e.g. neg15), default, full, "
                            "objectives")
    if not rows:
        raise UserError("--rows names no row: give e.g. 100,300,full")
    return rows


def parsed_cores(text: str) -> list[int]:
    """--cores: 2 (the machine's two cores) and/or 1 (pinned to the first core with taskset)."""
    cores = [part.strip() for part in text.split(",") if part.strip()]
    if not cores or any(part not in ("1", "2") for part in cores):
        raise UserError(f"--cores: {text!r} must list 1 and/or 2, e.g. 2,1")
    return [int(part) for part in cores]


def pinned(cores: int) -> list[str]:
    """The command prefix that keeps a process on one core, or none for the whole machine."""
    return ["taskset", "-c", "0"] if cores == 1 else []


def row_dimension_and_negatives(row: str) -> tuple[int, int | None] | None:
    """(dimension, negatives or None for the default) of a compared row: `100` -> (100, None), `neg15` -> (100, 15)."""
    if row.isdigit() and int(row) > 0:
        return int(row), None
    if row.startswith("neg") and row[3:].isdigit() and int(row[3:]) > 0:
        return 100, int(row[3:])
    return None


def plain_corpus(source: pathlib.Path, work_dir: pathlib.Path, max_lines: int | None) -> Corpus:
    """The corpus as plain text (gensim's corpus_file needs it; decompressing is timed for neither system),
    cut to `max_lines` lines, with its line and word counts."""
    if not source.is_file():
        raise UserError(f"corpus {source} not found: pass --corpus PATH")
    opener = gzip.open if source.suffix == ".gz" else open
    needs_copy = source.suffix == ".gz" or max_lines is not None
    work_dir.mkdir(parents=True, exist_ok=True)
    target = work_dir / "corpus.txt" if needs_copy else source
    lines = words = 0
    try:
        with opener(source, "rt", encoding="utf-8") as text, open(target if needs_copy else os.devnull, "w",
                                                                   encoding="utf-8") as copy:
            for line in text:
                if max_lines is not None and lines >= max_lines:
                    break
                lines += 1
                words += len(line.split())
                copy.write(line)
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read the corpus {source}: {error}") from None
    if not words:
        raise UserError(f"corpus {source} holds no words")
    return Corpus(target, str(source), lines, words)


def run_measured(command: list[str], log_path: pathlib.Path) -> Process:
    """Runs one command to completion, its output in `log_path`; its wall time and peak resident memory.

    Linux carries the parent's own peak into a child's ru_maxrss (at exec, from the vforked image): this process
    therefore never loads TensorFlow or vectors itself, and stays far below what it measures."""
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
    wall_seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = "".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-15:])
        raise UserError(f"{shlex.join(command)} failed (exit {process.returncode}); its last lines:\n{tail}")
    # Linux reports ru_maxrss in kilobytes.
    return Process(wall_seconds, usage.ru_maxrss / 1024)


def own_peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: its own, unlike ru_maxrss, which it inherited at exec)."""
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scores(source: list[str], work_dir: pathlib.Path, name: str) -> dict:
    """Analogy accuracy and the two similarity correlations, by evaluate.py (in a subprocess, see run_measured)
    on `source` (["--model-dir", DIR] or ["--vectors", FILE])."""
    from evaluation.data_files import ANALOGIES, SIMLEX999, WORDSIM353, gensim_test_data

    json_path = work_dir / f"{name}.scores.json"
    command = [sys.executable, str(ROOT / "evaluate.py"), *source, "--analogies", str(gensim_test_data(ANALOGIES)),
               "--similarity", str(gensim_test_data(WORDSIM353)), str(gensim_test_data(SIMLEX999)),
               "--restrict-vocab", str(ANALOGY_RESTRICT_VOCAB), "--json", str(json_path)]
    run_measured(command, work_dir / f"{name}.scores.log")
    evaluated = json.loads(json_path.read_text(encoding="utf-8"))
    wordsim, simlex = evaluated["similarity"]
    nan = float("nan")
    return {"analogy": evaluated["analogies"]["accuracy"], "wordsim353": nan if wordsim["spearman"] is None
            else wordsim["spearman"], "simlex999": nan if simlex["spearman"] is None else simlex["spearman"],
            "analogy_scored": evaluated["analogies"]["scored"], "wordsim353_pairs": wordsim["pairs"],
            "simlex999_pairs": simlex["pairs"]}


def train_ours(corpus: Corpus, work_dir: pathlib.Path, name: str, dim: int, settings: Hyperparameters,
               loss: str | None = None, max_steps: int = 0, evaluate: bool = True, cores: int = 2,
               first_run: bool = False) -> dict:
    """train.py in a subprocess; its training seconds from --metrics-file, then (`evaluate`) the scores of its E.
    `first_run`: as a user's first command, `python train.py` with no flags but where its output goes (the
    embedded corpus; `corpus` is then its text, for the word count)."""
    model_dir, metrics_path = work_dir / name, work_dir / f"{name}.metrics.json"
    shutil.rmtree(model_dir, ignore_errors=True)  # A repeat trains afresh rather than resuming.
    command = [*pinned(cores), sys.executable, str(ROOT / "train.py"), "--model-dir", str(model_dir),
               "--metrics-file", str(metrics_path)]
    if not first_run:
        command += ["--corpus", str(corpus.path), "--dim", str(dim), "--window", str(settings.window),
                    "--negatives", str(settings.negatives), "--sample", str(settings.sample),
                    "--min-count", str(settings.min_count), "--epochs", str(settings.epochs), "--seed", str(settings.seed)]
    command += ["--loss", loss] if loss else []
    command += ["--max-steps", str(max_steps)] if max_steps else []
    command += ["--max-vocab", str(settings.max_vocab)] if settings.max_vocab else []
    print(f"[{name}] {shlex.join(command)}", flush=True)
    process = run_measured(command, work_dir / f"{name}.log")
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    vocabulary_words = sum(int(row.rsplit("\t", 1)[1]) for row in
                           (model_dir / "vocab.tsv").read_text(encoding="utf-8").splitlines()[1:])
    # train.py counts the vocabulary's words; in raw corpus words (gensim's count) the run read this many.
    raw_words_read = metrics["words"] * corpus.words / vocabulary_words
    return {"command": shlex.join(command), "wall_seconds": process.wall_seconds, "peak_rss_mb": process.peak_rss_mb,
            "training_seconds": metrics["training_seconds"],
            "words_per_second": raw_words_read / metrics["training_seconds"],
            "words_per_wall_second": raw_words_read / process.wall_seconds, "steps": metrics["steps"],
            "batch_size": metrics["batch_size"], "vocabulary_size": metrics["vocabulary_size"],
            "embedding_dim": dim, **(scores(["--model-dir", str(model_dir)], work_dir, name) if evaluate else {})}


def train_gensim(corpus: Corpus, work_dir: pathlib.Path, name: str, dim: int, settings: Hyperparameters,
                 evaluate: bool = True, cores: int = 2) -> dict:
    """gensim's Word2Vec(sg=1) in a subprocess (gensim_word2vec.py), then (`evaluate`) the scores of its vectors.
    On one core it runs pinned with workers=1, its own best there."""
    vectors_path, metrics_path = work_dir / f"{name}.vectors.txt", work_dir / f"{name}.metrics.json"
    workers = settings.threads if cores > 1 else 1
    command = [*pinned(cores), sys.executable, str(ROOT / "benchmarks" / "gensim_word2vec.py"), "--corpus", str(corpus.path),
               "--vectors", str(vectors_path), "--metrics-file", str(metrics_path), "--dim", str(dim),
               "--window", str(settings.window), "--negatives", str(settings.negatives),
               "--sample", str(settings.sample), "--min-count", str(settings.min_count),
               "--epochs", str(settings.epochs), "--workers", str(workers), "--seed", str(settings.seed)]
    command += ["--max-vocab", str(settings.max_vocab)] if settings.max_vocab else []
    print(f"[{name}] {shlex.join(command)}", flush=True)
    process = run_measured(command, work_dir / f"{name}.log")
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    return {"command": shlex.join(command), "wall_seconds": process.wall_seconds, "peak_rss_mb": process.peak_rss_mb,
            "training_seconds": metrics["training_seconds"],
            "words_per_second": metrics["corpus_words"] * settings.epochs / metrics["training_seconds"],
            "words_per_wall_second": metrics["corpus_words"] * settings.epochs / process.wall_seconds,
            "save_seconds": metrics["save_seconds"], "corpus_words": metrics["corpus_words"],
            "vocabulary_size": metrics["vocabulary_size"], "embedding_dim": dim,
            **(scores(["--vectors", str(vectors_path)], work_dir, name) if evaluate else {})}


def measure_matmul(batch: int, dim: int, vocab: int, seconds: float, work_dir: pathlib.Path) -> dict:
    command = [sys.executable, str(ROOT / "benchmarks" / "matmul_flops.py"), "--batch", str(batch),
               "--dim", str(dim), "--vocab", str(vocab), "--seconds", str(seconds)]
    print(f"[matmul] {shlex.join(command)}", flush=True)
    log_path = work_dir / "matmul.log"
    run_measured(command, log_path)
    return json.loads(log_path.read_text(encoding="utf-8").strip().splitlines()[-1])


COMPARED = ["wall_seconds", "training_seconds", "words_per_second", "words_per_wall_second", "peak_rss_mb", "analogy",
            "wordsim353", "simlex999"]
TIMED = ["wall_seconds", "training_seconds", "words_per_second", "words_per_wall_second"]
QUALITY = ["analogy", "wordsim353", "simlex999"]


def comparison(ours: dict, gensim: dict) -> tuple[dict, dict]:
    """ours / gensim for every compared figure, and ours - gensim for the quality scores."""
    nan = float("nan")
    ratio = {key: ours.get(key, nan) / gensim[key] if gensim.get(key) else None for key in COMPARED}
    difference = {key: ours.get(key, nan) - gensim.get(key, nan) for key in QUALITY}
    return ratio, difference


def side_by_side(run_ours, run_gensim, repeats: int) -> dict:
    """`repeats` pairs of runs in turn (ours, gensim, ours, ...), each `run_*(repeat)` a result dict; the first
    run's figures with each time replaced by the median over the repeats, the ratios, and every run's times."""
    runs = {"ours": [], "gensim": []}
    for repeat in range(repeats):
        runs["ours"].append(run_ours(repeat))
        runs["gensim"].append(run_gensim(repeat))
    row = {}
    for system, results in runs.items():
        row[system] = {**results[0], **{key: statistics.median(result[key] for result in results) for key in TIMED}}
    row["ratio"], row["difference"] = comparison(row["ours"], row["gensim"])
    row["runs"] = {system: [{key: result[key] for key in TIMED} for result in results] for system, results in runs.items()}
    return row


def full_row(corpus: Corpus, work_dir: pathlib.Path, settings: Hyperparameters, steps: int,
             matmul_seconds: float) -> dict:
    """The full softmax for `steps` steps, and for WARMUP_STEPS in a run of its own: the difference of the two
    times is the steady rate, without the start-up (tracing the step, filling the pipeline) that both share."""
    warmup = train_ours(corpus, work_dir, "ours-full-warmup", 100, settings, loss="full", max_steps=WARMUP_STEPS,
                        evaluate=False)
    ours = train_ours(corpus, work_dir, "ours-full", 100, settings, loss="full", max_steps=steps)
    batch, dim, vocab = ours["batch_size"], ours["embedding_dim"], ours["vocabulary_size"]
    # Every step but a chunk's last is a full batch of B pairs; a bounded run of a few steps stays in the first chunk.
    flops_per_step = 6.0 * batch * dim * vocab
    steady_seconds = ours["training_seconds"] - warmup["training_seconds"]
    steady = flops_per_step * (ours["steps"] - warmup["steps"]) / steady_seconds if steady_seconds > 0 else None
    with_start_up = flops_per_step * ours["steps"] / ours["training_seconds"]
    matmul = measure_matmul(batch, dim, vocab, matmul_seconds, work_dir)
    return {"ours": ours, "warmup": warmup, "flops_per_second": steady, "flops_per_second_with_start_up": with_start_up,
            "matmul": matmul, "share_of_matmul": steady / matmul["flops_per_second"] if steady else None}


def dim_row(corpus: Corpus, work_dir: pathlib.Path, row: str, settings: Hyperparameters, cores: int,
            repeats: int, evaluate: bool) -> dict:
    """Both systems at the row's dimension (and negatives: `negN`) on `cores` cores, `repeats` pairs in turn; scores
    from the first pair (`evaluate`)."""
    dim, negatives = row_dimension_and_negatives(row)
    settings = dataclasses.replace(settings, negatives=negatives or settings.negatives)
    suffix = "" if cores == 2 else "-1core"
    return side_by_side(
        lambda repeat: train_ours(corpus, work_dir, f"ours-{row}{suffix}", dim, settings, cores=cores,
                                  evaluate=evaluate and repeat == 0),
        lambda repeat: train_gensim(corpus, work_dir, f"gensim-{row}{suffix}", dim, settings, cores=cores,
                                    evaluate=evaluate and repeat == 0),
        repeats)


def first_run_row(work_dir: pathlib.Path, settings: Hyperparameters, repeats: int) -> dict:
    """A user's first run, `python train.py` (the embedded corpus, every default), against gensim on the same text
    with the same settings (this project's defaults are word2vec's: dim 100, window 5, 5 negatives, 5 epochs)."""
    text = plain_corpus(EMBEDDED_CORPUS, work_dir / "default-corpus", None)
    row = side_by_side(
        lambda repeat: train_ours(text, work_dir, "ours-default", 100, settings, first_run=True, evaluate=repeat == 0),
        lambda repeat: train_gensim(text, work_dir, "gensim-default", 100, settings, evaluate=repeat == 0),
        repeats)
    return {**row, "corpus": {"source": text.source, "lines": text.lines, "words": text.words}}


OBJECTIVES = ["negative", "sampled", "full"]


def objectives_row(corpus: Corpus, work_dir: pathlib.Path, settings: Hyperparameters) -> dict:
    """The three objectives of this project and gensim, dim 100, trained on the same bounded data (`settings`)."""
    runs = {loss: train_ours(corpus, work_dir, f"objective-{loss}", 100, settings, loss=loss) for loss in OBJECTIVES}
    for run in runs.values():
        run["seconds_per_step"] = run["training_seconds"] / run["steps"]
    runs["gensim"] = train_gensim(corpus, work_dir, "objective-gensim", 100, settings)
    return {"settings": dataclasses.asdict(settings), "runs": runs}


def without_nan(value):
    """JSON has no NaN (an undefined correlation, say): it becomes null."""
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nan(item) for item in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def figure(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def signed(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.3f}"


def markdown(results: dict) -> str:
    """The results as Markdown: one table for the rows compared with gensim, one for the full objective."""
    corpus, settings = results["corpus"], results["hyperparameters"]
    lines = [
        "# This project vs gensim: skip-gram word2vec side by side",
        "",
        f"Command: `{results['command']}`  ",
        (f"Run: {results['date']} on {results['machine']['cpus']} CPUs ({results['machine']['processor']}); "
        f"TensorFlow {results['versions']['tensorflow']}, gensim {results['versions']['gensim']}.  "),
        f"Corpus: `{corpus['source']}`, {corpus['lines']:,} lines, {corpus['words']:,} words"
        + (" (a --quick slice)" if results["quick"] else "") + ".  ",
        (f"Both: window {settings['window']}, negatives {settings['negatives']}, sample {settings['sample']}, "
        f"min-count {settings['min_count']}, {settings['epochs']} epochs, {settings['threads']} threads, "
        f"seed {settings['seed']}; everything else at each system's defaults (rows named negN: N negatives)."),
        "",
    ]
    compared = {name: row for name, row in results["rows"].items() if name not in ("full", "objectives")}
    one_core = results.get("one_core", {})
    if compared or one_core:
        lines += speed_summary(compared, one_core)
        lines += [
            ("| run | cores | wall time (s) | training (s) | words/s, training | words/s, wall | peak RSS (MB) | analogy "
            "| WordSim-353 | SimLex-999 |"),
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        digits = {"wall_seconds": 1, "training_seconds": 1, "words_per_second": 0, "words_per_wall_second": 0,
                  "peak_rss_mb": 0, "analogy": 3, "wordsim353": 3, "simlex999": 3}
        for cores, table in ((2, compared), (1, one_core)):
            for name, row in table.items():
                what = row_label(name, "default corpus, `python train.py`")
                for label, values, places in [(f"ours, {what}", row["ours"], digits),
                                              (f"gensim, {what}", row["gensim"], digits),
                                              ("ratio ours / gensim", row["ratio"], dict.fromkeys(digits, 2))]:
                    lines.append(f"| {label} | {cores} | "
                                 + " | ".join(figure(values.get(key), places[key]) for key in COMPARED) + " |")
                if "analogy" in row["ours"]:
                    lines.append("| difference ours - gensim | | | | | | | "
                                 + " | ".join(signed(row["difference"][key]) for key in QUALITY) + " |")
        lines += [
            "",
            ("Wall time: the whole training process (start-up, vocabulary, training, saving; gensim's includes writing "
            "its vectors as text). Training: the training loop alone, as each system times it. Words/s: raw corpus "
            "words x epochs / training seconds (as gensim counts them), or / wall time. Cores: 2, the machine; 1, both "
            "pinned with `taskset -c 0` (gensim with workers=1); quality is scored on the two-core runs. Times are "
            f"medians of {results.get('repeats', 1)} pair(s) of runs taken in turn. Peak RSS: the training process's "
            "maximum resident memory. Analogy: questions-words.txt, 3CosAdd, restrict_vocab 30000; WordSim-353 and "
            "SimLex-999: Spearman correlation; all by this project's evaluate.py. The default-corpus row is a user's "
            "first run: `python train.py` with no flags (the embedded WordNet corpus, dim 100), and gensim on the same "
            "text at the same settings. (Linux counts a parent's peak memory into its children's: this script's own "
            f"was {results['benchmark_peak_rss_mb']:,.0f} MB.)"),
            "",
        ]
    if "full" in results["rows"]:
        full = results["rows"]["full"]
        ours, matmul = full["ours"], full["matmul"]
        lines += [
            f"## The `full` objective (exact softmax), a bounded run of {ours['steps']} steps",
            "",
            ("| steps | B | D | V | training (s) | GFLOP/s with start-up | steady GFLOP/s | matmul GFLOP/s | share "
            "| wall time (s) | peak RSS (MB) |"),
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            (f"| {ours['steps']} | {ours['batch_size']} | {ours['embedding_dim']} | {ours['vocabulary_size']:,} "
            f"| {ours['training_seconds']:.1f} | {full['flops_per_second_with_start_up'] / 1e9:.1f} "
            f"| {figure(full['flops_per_second'] and full['flops_per_second'] / 1e9, 1)} "
            f"| {matmul['flops_per_second'] / 1e9:.1f} | {figure(full['share_of_matmul'], 2)} "
            f"| {ours['wall_seconds']:.1f} | {ours['peak_rss_mb']:,.0f} |"),
            "",
            ("FLOP/s: 6·B·D·V FLOPs per step (its three B x D x V products) x steps / training seconds; with start-up "
            f"over the whole run, steady over the steps after the first {full['warmup']['steps']} (the time of a "
            f"separate {full['warmup']['steps']}-step run subtracted). Matmul: those three products alone in "
            f"TensorFlow at the same shapes, for {matmul['seconds']:.0f} s in the same run. Share: steady / matmul."),
            "",
        ]
    if "objectives" in results["rows"]:
        lines += objectives_markdown(results["rows"]["objectives"])
    return "\n".join(lines)


def row_label(row: str, default: str) -> str:
    """How a compared row is named in the tables: `dim 100`, `dim 100, negatives 15`, or `default` for a first run."""
    if row == "default":
        return default
    dim, negatives = row_dimension_and_negatives(row)
    return f"dim {dim}" + (f", negatives {negatives}" if negatives else "")


def speed_summary(two_cores: dict, one_core: dict) -> list[str]:
    """The words/s ratios ours / gensim in one small table: by training seconds and by whole-process wall time."""
    lines = [("| words/s, ours / gensim | 2 cores, training | 2 cores, whole process | 1 core, training "
              "| 1 core, whole process |"), "| --- | ---: | ---: | ---: | ---: |"]
    for name in dict.fromkeys([*two_cores, *one_core]):
        what = row_label(name, "default corpus, first run (dim 100)")
        cells = []
        for table in (two_cores, one_core):
            ratio = table[name]["ratio"] if name in table else {}
            cells += [figure(ratio.get("words_per_second"), 2), figure(ratio.get("words_per_wall_second"), 2)]
        lines.append(f"| {what} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def objectives_markdown(row: dict) -> list[str]:
    settings, runs = row["settings"], row["runs"]
    bound = (f"{settings['epochs']} epoch{'s' if settings['epochs'] > 1 else ''}"
             + (f", the {settings['max_vocab']:,} most frequent words" if settings["max_vocab"] else ""))
    lines = [
        f"## The three objectives on equal data ({bound}; dim 100)",
        "",
        "| run | V | steps | training (s) | s per step | words/s | analogy | WordSim-353 | SimLex-999 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, run in runs.items():
        label = "gensim (negative sampling)" if name == "gensim" else f"ours, {name}"
        per_step = figure(run["seconds_per_step"], 4) if "seconds_per_step" in run else ""
        steps = f"{run['steps']:,}" if "steps" in run else ""
        lines.append(f"| {label} | {run['vocabulary_size']:,} | {steps} | {run['training_seconds']:.1f} | {per_step} "
                     f"| {run['words_per_second']:,.0f} | " + " | ".join(figure(run[key], 3) for key in QUALITY) + " |")
    lines += [
        "",
        ("The full softmax costs a B x D x V product per step, three per batch with its gradients; the bound (one epoch, "
         "a capped vocabulary) keeps it to minutes. Every run reads the same corpus with the same settings otherwise."),
        "",
    ]
    return lines


def script_path() -> str:
    """This script as the user would type it from the repository root."""
    path = pathlib.Path(sys.argv[0]).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main() -> int:
    flags = flag_parser().parse_args()
    return run_entry_point(lambda: run(flags), debug=flags.debug)


def run(flags: argparse.Namespace) -> int:
    from evaluation.data_files import ANALOGIES, SIMLEX999, WORDSIM353, gensim_test_data

    rows, cores = parsed_rows(flags.rows), parsed_cores(flags.cores)
    if flags.repeats < 1:
        raise UserError(f"--repeats must be at least 1, not {flags.repeats}")
    if None in (gensim_test_data(name) for name in (ANALOGIES, WORDSIM353, SIMLEX999)):
        raise UserError("gensim (and the evaluation files it ships) is missing: pip install -r requirements-dev.txt")
    full_steps = flags.full_steps or (QUICK_FULL_STEPS if flags.quick else FULL_STEPS)
    if "full" in rows and full_steps <= WARMUP_STEPS:
        raise UserError(f"--full-steps must be more than the {WARMUP_STEPS} warm-up steps it is measured against")
    out = pathlib.Path(flags.out) if flags.out else (DEFAULT_OUT / "quick" if flags.quick else DEFAULT_OUT)
    settings = Hyperparameters()
    work_dir = pathlib.Path(flags.work_dir or tempfile.mkdtemp(prefix="compare_gensim_"))
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        corpus = plain_corpus(pathlib.Path(flags.corpus), work_dir, QUICK_LINES if flags.quick else None)
        print(f"corpus: {corpus.source}: {corpus.lines:,} lines, {corpus.words:,} words", flush=True)
        results = {
            "command": shlex.join(["python", script_path(), *sys.argv[1:]]),
            **run_context(),
            "quick": flags.quick,
            "corpus": {"source": corpus.source, "lines": corpus.lines, "words": corpus.words},
            "hyperparameters": dataclasses.asdict(settings),
            "repeats": flags.repeats,
            "rows": {},
            "one_core": {},
        }
        for row in rows:
            if row == "full":
                results["rows"]["full"] = full_row(corpus, work_dir, settings, full_steps, flags.matmul_seconds)
            elif row == "default":
                results["rows"]["default"] = first_run_row(work_dir, settings, flags.repeats)
            elif row == "objectives":
                bounded = dataclasses.replace(settings, epochs=flags.objectives_epochs,
                                              max_vocab=flags.objectives_max_vocab)
                results["rows"]["objectives"] = objectives_row(corpus, work_dir, bounded)
            else:
                for count in cores:
                    table = results["rows"] if count == 2 else results["one_core"]
                    table[row] = dim_row(corpus, work_dir, row, settings, count, flags.repeats,
                                         evaluate=count == cores[0])
        results["benchmark_peak_rss_mb"] = own_peak_rss_mb()
    finally:
        if not flags.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(without_nan(results), indent=2) + "\n", encoding="utf-8")
    table = markdown(results)
    (out / "results.md").write_text(table, encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
