"""Continuing a trained model on new text, against training from scratch, for this project and for gensim.

    python benchmarks/continue_training.py                              # gcide, split in halves A and B
    python benchmarks/continue_training.py --quick                      # the first 20k lines, for development
    python benchmarks/continue_training.py --learning-rates 0.025,0.01  # also updates at these starting rates
    python benchmarks/continue_training.py --update-corpus data/wordnet_glosses.txt.gz   # A = gcide, B = WordNet
    python benchmarks/continue_training.py --alternate       # A = the odd lines, B = the even lines: alike texts
    python benchmarks/continue_training.py --replays 0.5,0.75  # also updates that replay this share of A's lines
    python benchmarks/continue_training.py --seed 2          # every run with another seed: the noise of the figures

The corpus is split by lines into its first half A and its second half B (gcide is a dictionary in alphabetical
order, so B defines other headwords than A and brings words A lacks); with --alternate, into its odd and even
lines (two samples of the same text); with --update-corpus, A is the whole corpus and B that one. For each system:
1. train on A; 2. continue that model on B, adding B's new words (`train.py --update-vocab`; gensim's
`build_vocab(update=True)` then `train`); 3. train on A + B (the whole corpus) from scratch.
Every model is scored by evaluate.py (analogies with restrict_vocab 30000, WordSim-353, SimLex-999); the table
also gives the words B added and the nearest neighbours of the most frequent words that only B holds.
With --replays, (2) is also run with `train.py --replay R` (B plus a share R of A's lines, rehearsed), each
checked against the same targets, with its time against (3).
Both systems get the hyperparameters of compare_gensim.py. Results: OUT/continue_training.md and .json
(OUT/continue_training_alternate.*, or OUT/continue_training_<B's name>.* with --update-corpus).
"""

import argparse
import dataclasses
import json
import pathlib
import shlex
import shutil
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.compare_gensim import (
    QUICK_LINES,
    Corpus,
    Hyperparameters,
    plain_corpus,
    run_measured,
    scores,
    train_gensim,
    train_ours,
    without_nan,
)
from benchmarks.train_runs import DEFAULT_CORPUS, DEFAULT_OUT, run_context, write_results
from cli import run_entry_point
from errors import UserError

QUALITY = ("analogy", "wordsim353", "simlex999")
TARGET_GAP = 0.02  # (2) within this of (3) on each score
GENSIM_MARGIN = 0.01  # (2) at least gensim's (2) minus this
PROBE_WORDS, NEIGHBOURS = 6, 8
DIM = 100


def flag_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="a text corpus, plain or .gz, a sentence a line")
    parser.add_argument("--out", help=f"where the results go (default {DEFAULT_OUT.relative_to(ROOT)}, or its "
                                      "quick/ folder with --quick)")
    parser.add_argument("--update-corpus", help="B, the text of the update (default: the corpus's second half)")
    parser.add_argument("--alternate", action="store_true",
                        help="split the corpus into its odd lines (A) and even lines (B) instead of two halves")
    parser.add_argument("--quick", action="store_true", help=f"use the first {QUICK_LINES:,} lines (of each) only")
    parser.add_argument("--learning-rates", default="",
                        help="comma-separated --learning-rate values for extra update runs (default: none)")
    parser.add_argument("--replays", default="",
                        help="comma-separated --replay values for extra update runs (default: none)")
    parser.add_argument("--seed", type=int, default=Hyperparameters.seed,
                        help="--seed of every run, both systems (default %(default)s)")
    parser.add_argument("--work-dir", help="keep the corpora, models and logs here (default: a temporary directory)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def split_corpus(corpus: Corpus, work_dir: pathlib.Path, alternate: bool = False) -> tuple[Corpus, Corpus]:
    """The corpus's first and second half of lines (or, `alternate`, its odd and even lines), as plain-text files."""
    lines = corpus.path.read_text(encoding="utf-8").splitlines(keepends=True)
    middle = len(lines) // 2
    parts = {"A": (lines[0::2], "odd lines"), "B": (lines[1::2], "even lines")} if alternate else {
        "A": (lines[:middle], f"lines 1 to {middle:,}"), "B": (lines[middle:], f"lines {middle + 1:,} to {len(lines):,}")}
    halves = []
    for name, (part, which) in parts.items():
        path = work_dir / f"{name}.txt"
        path.write_text("".join(part), encoding="utf-8")
        halves.append(Corpus(path, f"{corpus.source}, {which}", len(part), sum(len(line.split()) for line in part)))
    return halves[0], halves[1]


def joined_corpus(first: Corpus, second: Corpus, work_dir: pathlib.Path) -> Corpus:
    """A + B in one plain-text file, A's lines first."""
    path = work_dir / "A+B.txt"
    with open(path, "w", encoding="utf-8") as out:
        for part in (first, second):
            text = part.path.read_text(encoding="utf-8")
            out.write(text if text.endswith("\n") else text + "\n")
    return Corpus(path, f"{first.source} + {second.source}", first.lines + second.lines, first.words + second.words)


def update_ours(trained: pathlib.Path, corpus: Corpus, work_dir: pathlib.Path, name: str,
                learning_rate: float | None = None, replay: float = 0.0) -> dict:
    """A copy of the model trained on A, continued on `corpus` with train.py --update-vocab (and `replay`, a share
    of A's lines trained again beside it); its time and scores."""
    model_dir, metrics_path = work_dir / name, work_dir / f"{name}.metrics.json"
    shutil.copytree(trained, model_dir)
    command = [sys.executable, str(ROOT / "train.py"), "--model-dir", str(model_dir), "--corpus", str(corpus.path),
               "--update-vocab", "--metrics-file", str(metrics_path)]
    command += ["--learning-rate", str(learning_rate)] if learning_rate else []
    command += ["--replay", str(replay)] if replay else []
    print(f"[{name}] {shlex.join(command)}", flush=True)
    process = run_measured(command, work_dir / f"{name}.log")
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    update = config["training"]["rounds"][-1]
    return {"command": shlex.join(command), "wall_seconds": process.wall_seconds, "peak_rss_mb": process.peak_rss_mb,
            "training_seconds": metrics["training_seconds"], "steps": metrics["steps"],
            "vocabulary_size": metrics["vocabulary_size"], "words_added": update["words_added"],
            "learning_rate": update["learning_rate"], "replay": update.get("replay", 0.0),
            "corpus_words": update["corpus_words"], "replay_words": update.get("replay_words", 0), **scores(["--model-dir", str(model_dir)], work_dir, name)}


def gensim_with_update(first: Corpus, second: Corpus, work_dir: pathlib.Path, settings: Hyperparameters) -> tuple:
    """gensim trained on `first`, then continued on `second` in the same process; both models' figures."""
    vectors = {step: work_dir / f"gensim-{step}.vectors.txt" for step in ("A", "update")}
    metrics_path = work_dir / "gensim-A-update.metrics.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "gensim_word2vec.py"), "--corpus", str(first.path),
               "--vectors", str(vectors["A"]), "--metrics-file", str(metrics_path), "--dim", str(DIM),
               "--window", str(settings.window), "--negatives", str(settings.negatives),
               "--sample", str(settings.sample), "--min-count", str(settings.min_count),
               "--epochs", str(settings.epochs), "--workers", str(settings.threads), "--seed", str(settings.seed),
               "--update-corpus", str(second.path), "--update-vectors", str(vectors["update"])]
    print(f"[gensim-A-update] {shlex.join(command)}", flush=True)
    process = run_measured(command, work_dir / "gensim-A-update.log")
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    update = metrics["update"]
    trained = {"command": shlex.join(command), "training_seconds": metrics["training_seconds"],
               "vocabulary_size": metrics["vocabulary_size"],
               **scores(["--vectors", str(vectors["A"])], work_dir, "gensim-A")}
    # One process does both: the update's time is its vocabulary scan and training, without start-up.
    continued = {"command": shlex.join(command), "wall_seconds": update["vocabulary_seconds"] +
                 update["training_seconds"], "training_seconds": update["training_seconds"],
                 "vocabulary_size": update["vocabulary_size"], "words_added": update["words_added"],
                 "process_wall_seconds": process.wall_seconds,
                 **scores(["--vectors", str(vectors["update"])], work_dir, "gensim-update")}
    return trained, continued


def vocabulary_words(model_dir: pathlib.Path) -> list[tuple[str, int]]:
    rows = (model_dir / "vocab.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [(word, int(count)) for word, count in (row.rsplit("\t", 1) for row in rows)]


def vector_file_words(path: pathlib.Path) -> set[str]:
    with open(path, encoding="utf-8") as vectors:
        next(vectors)
        return {line.split(" ", 1)[0] for line in vectors}


def neighbours(source: list[str], words: list[str], work_dir: pathlib.Path, name: str) -> dict:
    """The nearest neighbours of `words` by evaluate.py, in the model `source` names."""
    json_path = work_dir / f"{name}.neighbours.json"
    command = [sys.executable, str(ROOT / "evaluate.py"), *source, "--neighbours", *words, "--top", str(NEIGHBOURS),
               "--json", str(json_path)]
    run_measured(command, work_dir / f"{name}.neighbours.log")
    return json.loads(json_path.read_text(encoding="utf-8"))["neighbours"]


def target_checks(rows: dict, update: dict | None = None) -> dict:
    """Per score: (2) - (3) and (2) - gensim's (2), and whether each target is met; `update` stands for ours (2)."""
    ours, gensim = rows["ours"], rows["gensim"]
    update = update or ours["update"]
    checks = {}
    for key in QUALITY:
        versus_scratch = update[key] - ours["scratch"][key]
        versus_gensim = update[key] - gensim["update"][key]
        checks[key] = {"update_minus_scratch": versus_scratch, "within_target": abs(versus_scratch) <= TARGET_GAP,
                       "update_minus_gensim_update": versus_gensim, "at_least_gensim": versus_gensim >= -GENSIM_MARGIN}
    return checks


def markdown(results: dict) -> str:
    corpus, settings, rows = results["corpus"], results["hyperparameters"], results["rows"]
    lines = [
        "# Continuing training on new text (`--update-vocab`) against training from scratch",
        "",
        f"Command: `{results['command']}`  ",
        (f"Run: {results['date']} on {results['machine']['cpus']} CPUs; TensorFlow {results['versions']['tensorflow']}, "
         f"gensim {results['versions']['gensim']}.  "),
        f"Corpus A + B: `{corpus['source']}`, {corpus['lines']:,} lines, {corpus['words']:,} words"
        + (" (--quick slices)" if results["quick"] else "") + ". " + "; ".join(
            f"{name}: `{half['source']}`, {half['lines']:,} lines, {half['words']:,} words"
            for name, half in results["halves"].items()) + ".  ",
        (f"Both systems: dim {DIM}, window {settings['window']}, negatives {settings['negatives']}, sample "
         f"{settings['sample']}, min-count {settings['min_count']}, {settings['epochs']} epochs (each round), "
         f"{settings['threads']} threads, seed {settings['seed']}."),
        "",
        "| system | run | vocabulary | words added | time (s) | training (s) | analogy | WordSim-353 | SimLex-999 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    labels = {"trained": "1. A", "update": "2. A, then B added (update)", "scratch": "3. A + B from scratch"}
    for system in ("ours", "gensim"):
        for run, label in labels.items():
            row = rows[system][run]
            added = f"{row['words_added']:,}" if "words_added" in row else ""
            wall = f"{row['wall_seconds']:.1f}" if "wall_seconds" in row else ""
            lines.append(f"| {system} | {label} | {row['vocabulary_size']:,} | {added} | {wall} "
                         f"| {row['training_seconds']:.1f} | " + " | ".join(f"{row[key]:.3f}" for key in QUALITY) + " |")
    lines += ["", "Targets: (2) within 0.02 of (3) on each score; (2) at least gensim's (2) minus 0.01.", "",
              "| score | ours (2) - ours (3) | within 0.02 | ours (2) - gensim (2) | at least -0.01 |",
              "| --- | ---: | --- | ---: | --- |"]
    for key, check in results["targets"].items():
        lines.append(f"| {key} | {check['update_minus_scratch']:+.3f} | {'yes' if check['within_target'] else 'no'} "
                     f"| {check['update_minus_gensim_update']:+.3f} | {'yes' if check['at_least_gensim'] else 'no'} |")
    ours = rows["ours"]
    lines += ["", (f"Time: ours (2) took {ours['update']['wall_seconds']:.1f} s as a whole process "
                   f"({ours['update']['training_seconds']:.1f} s training), (3) {ours['scratch']['wall_seconds']:.1f} s "
                   f"({ours['scratch']['training_seconds']:.1f} s): "
                   f"{ours['update']['wall_seconds'] / ours['scratch']['wall_seconds']:.2f} of the time. gensim's (2) "
                   f"is timed inside its process (vocabulary update and training, no start-up)."), ""]
    if results["learning_rates"]:
        lines += ["Our update at other starting learning rates (`--learning-rate`; the row marked * is the default):",
                  "", "| learning rate | analogy | WordSim-353 | SimLex-999 | mean - (3)'s mean |",
                  "| ---: | ---: | ---: | ---: | ---: |"]
        scratch_mean = sum(ours["scratch"][key] for key in QUALITY) / 3
        for row in [ours["update"], *results["learning_rates"]]:
            mean = sum(row[key] for key in QUALITY) / 3
            mark = " *" if row is ours["update"] else ""
            lines.append(f"| {row['learning_rate']:g}{mark} | " + " | ".join(f"{row[key]:.3f}" for key in QUALITY)
                         + f" | {mean - scratch_mean:+.3f} |")
        lines.append("")
    if results["replays"]:
        lines += [("Our update with `--replay R`: B plus the share R of A's lines (sampled once, trained again every "
                  "epoch beside B), against (3):"), "",
                  ("| --replay | words per epoch (B + A's replayed) | time (s) | training (s) | time / (3)'s "
                  "| analogy | WordSim-353 | SimLex-999 | (2) - (3) | within 0.02 | (2) - gensim (2) |"),
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"]
        for row, checks in zip(results["replays"], results["replay_targets"]):
            gaps = " / ".join(f"{check['update_minus_scratch']:+.3f}" for check in checks.values())
            within = "yes" if all(check["within_target"] for check in checks.values()) else "no"
            versus_gensim = " / ".join(f"{check['update_minus_gensim_update']:+.3f}" for check in checks.values())
            lines.append(f"| {row['replay']:g} | {row['corpus_words']:,} + {row['replay_words']:,} "
                         f"| {row['wall_seconds']:.1f} | {row['training_seconds']:.1f} "
                         f"| {row['wall_seconds'] / ours['scratch']['wall_seconds']:.2f} | "
                         + " | ".join(f"{row[key]:.3f}" for key in QUALITY) + f" | {gaps} | {within} | {versus_gensim} |")
        lines.append("")
    lines += [(f"Nearest neighbours of the {len(results['probe_words'])} most frequent words that only B holds (added "
              "by both updates):"), "", "| word | count in B | ours (2) | ours (3) | gensim (2) | gensim (3) |",
              "| --- | ---: | --- | --- | --- | --- |"]
    for word, count in results["probe_words"]:
        cells = []
        for source in ("ours-update", "ours-scratch", "gensim-update", "gensim-scratch"):
            found = results["neighbours"][source].get(word)
            cells.append(", ".join(other for other, _ in found) if found else "(not in the vocabulary)")
        lines.append(f"| {word} | {count:,} | " + " | ".join(cells) + " |")
    lines += ["", ("Time: the whole training process (start-up, counting, growing the model, training, saving); "
                   "training: the training loop alone. Scores: evaluate.py, analogies 3CosAdd with restrict_vocab "
                   "30000 (an update appends B's words after A's, so they rank by id, as in gensim's updated model), "
                   "Spearman for the word pairs."), ""]
    return "\n".join(lines)


def number_list(text: str, flag: str) -> list[float]:
    try:
        return [float(value) for value in text.split(",") if value.strip()]
    except ValueError:
        raise UserError(f"{flag} must be numbers separated by commas, not {text!r}") from None


def main() -> int:
    flags = flag_parser().parse_args()
    return run_entry_point(lambda: run(flags), debug=flags.debug)


def run(flags: argparse.Namespace) -> int:
    rates, replays = number_list(flags.learning_rates, "--learning-rates"), number_list(flags.replays, "--replays")
    if any(not 0 < replay <= 1 for replay in replays):
        raise UserError(f"--replays must be shares above 0 and at most 1, not {flags.replays!r}")
    out = pathlib.Path(flags.out) if flags.out else (DEFAULT_OUT / "quick" if flags.quick else DEFAULT_OUT)
    settings = Hyperparameters(seed=flags.seed)
    work_dir = pathlib.Path(flags.work_dir or tempfile.mkdtemp(prefix="continue_training_"))
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        lines = QUICK_LINES if flags.quick else None
        whole = plain_corpus(pathlib.Path(flags.corpus), work_dir, lines)
        if flags.update_corpus:
            (work_dir / "B").mkdir(exist_ok=True)
            first, second = whole, plain_corpus(pathlib.Path(flags.update_corpus), work_dir / "B", lines)
            whole = joined_corpus(first, second, work_dir)
        else:
            first, second = split_corpus(whole, work_dir, flags.alternate)
        print(f"corpus: {whole.source}: {whole.lines:,} lines; A {first.words:,} words, B {second.words:,}", flush=True)
        ours = {"trained": train_ours(first, work_dir, "ours-A", DIM, settings)}
        ours["update"] = update_ours(work_dir / "ours-A", second, work_dir, "ours-update")
        extra = [update_ours(work_dir / "ours-A", second, work_dir, f"ours-update-{rate:g}", rate) for rate in rates]
        replayed = [update_ours(work_dir / "ours-A", second, work_dir, f"ours-update-replay-{replay:g}", replay=replay)
                    for replay in replays]
        ours["scratch"] = train_ours(whole, work_dir, "ours-AB", DIM, settings)
        gensim = dict(zip(("trained", "update"), gensim_with_update(first, second, work_dir, settings)))
        gensim["scratch"] = train_gensim(whole, work_dir, "gensim-AB", DIM, settings)

        # The words only B brings, added by both updates; the most frequent of them.
        trained_words = {word for word, _ in vocabulary_words(work_dir / "ours-A")}
        gensim_added = vector_file_words(work_dir / "gensim-update.vectors.txt") - vector_file_words(
            work_dir / "gensim-A.vectors.txt")
        added = [(word, count) for word, count in vocabulary_words(work_dir / "ours-update")
                 if word not in trained_words and word in gensim_added]
        probes = sorted(added, key=lambda item: -item[1])[:PROBE_WORDS]
        probe_words = [word for word, _ in probes]
        found = {"ours-update": neighbours(["--model-dir", str(work_dir / "ours-update")], probe_words, work_dir,
                                           "ours-update"),
                 "ours-scratch": neighbours(["--model-dir", str(work_dir / "ours-AB")], probe_words, work_dir,
                                            "ours-AB"),
                 "gensim-update": neighbours(["--vectors", str(work_dir / "gensim-update.vectors.txt")], probe_words,
                                             work_dir, "gensim-update"),
                 "gensim-scratch": neighbours(["--vectors", str(work_dir / "gensim-AB.vectors.txt")], probe_words,
                                              work_dir, "gensim-AB")}
        results = {
            "command": shlex.join(["python", "benchmarks/continue_training.py", *sys.argv[1:]]),
            **run_context(),
            "quick": flags.quick,
            "corpus": {"source": whole.source, "lines": whole.lines, "words": whole.words},
            "halves": {name: {"source": part.source, "lines": part.lines, "words": part.words}
                       for name, part in (("A", first), ("B", second))},
            "hyperparameters": dataclasses.asdict(settings),
            "rows": {"ours": ours, "gensim": gensim},
            "learning_rates": extra,
            "replays": replayed,
            "probe_words": probes,
            "neighbours": found,
        }
        results["targets"] = target_checks(results["rows"])
        results["replay_targets"] = [target_checks(results["rows"], row) for row in replayed]
    finally:
        if not flags.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    # One file per kind of B: the corpus's second half, or another corpus (named after it).
    name = "continue_training" + (f"_{pathlib.Path(flags.update_corpus).name.split('.')[0]}" if flags.update_corpus
                                  else "_alternate" if flags.alternate else "")
    write_results(out, name, without_nan(results), markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
