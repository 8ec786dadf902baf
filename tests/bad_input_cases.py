"""Every user mistake the entry points must answer with one clear line, as a table of cases.

tests/test_bad_input.py runs each case as a real subprocess and checks it; this file also writes the README's
table of bad input and the message a user sees, from the same cases and real runs, so the table stays true:

    python tests/bad_input_cases.py      # reruns every case and rewrites the table in README.md
"""

import concurrent.futures
import dataclasses
import json
import os
import pathlib
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TABLE_START, TABLE_END = "<!-- bad-input-table:start -->", "<!-- bad-input-table:end -->"

# Every case runs in its own directory holding this corpus (as corpus.txt) and, when the case asks for it,
# a copy of a finished tiny run (as model/), so paths in the messages are short and the same on every machine.
CORPUS_LINES = [
    "the king and the queen rule the old kingdom",
    "a cat and a dog play in the green garden",
]
TINY_RUN = ["--corpus", "corpus.txt", "--model-dir", "model", "--dim", "2", "--min-count", "1", "--batch-size", "64",
            "--epochs", "1", "--sample", "0", "--checkpoint-every", "20"]
# The same run stopped inside its epoch: batches of 8 pairs (about 14 in the epoch), stopped after 5.
STOPPED_RUN = [*TINY_RUN[:TINY_RUN.index("--batch-size")], "--batch-size", "8", "--epochs", "1", "--sample", "0",
               "--max-steps", "5"]
SMALL_DISK = "small-disk"  # where the cases that need one mount a tmpfs


@dataclasses.dataclass
class Case:
    """One bad input: how to make it, the command, and a regular expression the one line on stderr must match."""

    name: str
    description: str
    arguments: list[str]
    expected: str
    setup: Callable[[pathlib.Path], None] = lambda directory: None
    needs_model: bool = False
    exit_code: int = 2
    script: str = "train.py"
    model: str = "finished"  # the run copied as model/ when needs_model: "finished", or "stopped" inside its epoch
    needs_mount: bool = False  # mounts a file system (root only); unmounted by teardown
    teardown: Callable[[pathlib.Path], None] = lambda directory: None
    trains: bool = False  # The run starts training: it may add logs and record its flags in config.json, no more.


def write(name: str, content: bytes) -> Callable[[pathlib.Path], None]:
    return lambda directory: (directory / name).write_bytes(content)


def edit_config(change: Callable[[dict], None]) -> Callable[[pathlib.Path], None]:
    def setup(directory: pathlib.Path) -> None:
        config = json.loads((directory / "model/config.json").read_text())
        change(config)
        (directory / "model/config.json").write_text(json.dumps(config, indent=2))

    return setup


def flip_a_byte_of_the_checkpoint(directory: pathlib.Path) -> None:
    data = next((directory / "model/checkpoints").glob("ckpt-*.data-*"))
    content = bytearray(data.read_bytes())
    content[len(content) // 2] ^= 0xFF
    data.write_bytes(bytes(content))


def an_earlier_export(directory: pathlib.Path) -> None:
    (directory / "exports/7").mkdir(parents=True)
    (directory / "exports/7/saved_model.pb").write_bytes(b"an earlier export, which must survive")


def lift_row_bounds(config: dict) -> None:
    config["training"].update(max_row_updates=1e30, max_noise_row_updates=1e30)


def make_directory(name: str) -> Callable[[pathlib.Path], None]:
    return lambda directory: (directory / name).mkdir()


def full_small_disk(directory: pathlib.Path) -> None:
    """A 256 KB tmpfs at small-disk/, filled to the last byte."""
    from mounts import fill, mount_tmpfs

    mount_tmpfs(directory / SMALL_DISK, "256k")
    fill(directory / SMALL_DISK)


def model_on_a_read_only_file_system(directory: pathlib.Path) -> None:
    from mounts import mount_read_only

    mount_read_only(directory / "model")


def unmount(name: str) -> Callable[[pathlib.Path], None]:
    def teardown(directory: pathlib.Path) -> None:
        from mounts import unmount

        unmount(directory / name)

    return teardown


def corpus_changed(directory: pathlib.Path) -> None:
    with open(directory / "corpus.txt", "a") as corpus:
        corpus.write("the queen and the king sit in the royal castle\n")


CASES = [
    # Flags: refused before TensorFlow even loads.
    Case("dim", "a vector size of 0", ["--dim", "0"], r"--dim must be at least 1, not 0"),
    Case("window", "a window of 0", ["--window", "0"], r"--window must be at least 1, not 0"),
    Case("epochs", "a negative number of epochs", ["--epochs", "-1"], r"--epochs must be at least 1, not -1"),
    Case("batch-size", "a batch size of 0", ["--batch-size", "0"], r"--batch-size must be at least 1, not 0"),
    Case("sample", "a negative subsampling threshold", ["--sample", "-0.5"], r"--sample must be at least 0, not -0.5"),
    Case("negatives", "no noise words for negative sampling", ["--negatives", "0"],
         r"--negatives must be at least 1 with --loss negative"),
    Case("loss", "an unknown loss", ["--loss", "hinge"], r"argument --loss: invalid choice: 'hinge'"),
    Case("not-a-number", "text where a number belongs", ["--dim", "ten"], r"argument --dim: invalid int value: 'ten'"),
    Case("unknown-flag", "a flag that does not exist", ["--dimension", "10"],
         r"unrecognized arguments: --dimension 10; see train.py --help"),
    Case("two-corpora", "both a corpus and a TFDS dataset", ["--corpus", "corpus.txt", "--tfds", "imdb_reviews"],
         r"--corpus and --tfds both name a corpus: give only one of them"),
    # Watching quality: evaluation files, --keep-best, --early-stop, probe words.
    Case("eval-analogies", "an analogy file that does not exist", ["--eval-analogies", "missing.txt"],
         r"cannot read the analogy file missing.txt: No such file or directory"),
    Case("eval-similarity", "a word-pairs file that holds no pairs", ["--eval-similarity", "corpus.txt"],
         r"corpus.txt holds no word pairs \(lines 'word<TAB>word<TAB>score'\)"),
    Case("eval-similarity-names", "two word-pairs files of the same name",
         ["--eval-similarity", "a/pairs.tsv", "b/pairs.tsv"],
         r"two evaluation files would both log eval/pairs \(a word-pairs file logs eval/<its name without "
         r"extension>\): rename one"),
    Case("keep-best", "--keep-best naming a score the run does not log", ["--keep-best", "eval/analogy"],
         r"--keep-best eval/analogy is not a score this run logs: choose epoch/mean_loss \(--eval-analogies and "
         r"--eval-similarity add eval/ scores\)"),
    Case("early-stop", "--early-stop without --keep-best", ["--early-stop", "2"],
         r"--early-stop needs --keep-best SCORE, the score it waits to improve"),
    Case("early-stop-negative", "a negative --early-stop", ["--early-stop", "-1"],
         r"argument --early-stop: must be a whole number from 0 to 1,000,000, not '-1'"),
    Case("probe-neighbours", "a negative --probe-neighbours", ["--probe-neighbours", "-1"],
         r"argument --probe-neighbours: must be a whole number from 0 to 1,000,000, not '-1'"),
    Case("old-neighbours", "train.py --neighbours, which was a count", ["--neighbours", "8"],
         r"train.py has no --neighbours: --probe-neighbours N sets how many neighbours are listed, --probe-words "
         r"WORD\.\.\. for which words"),
    # The corpus.
    # The corpus.
    Case("missing-corpus", "a corpus path that does not exist", ["--corpus", "missing.txt"],
         r"corpus path 'missing.txt' matches no file: check the path or the glob"),
    Case("empty-corpus", "an empty corpus", ["--corpus", "empty.txt"],
         r"the corpus has no words: it is empty", write("empty.txt", b"")),
    Case("binary-corpus", "binary junk as the corpus", ["--corpus", "junk.bin"],
         r"the corpus is not UTF-8 text: [\d,]+ of its 4,0\d\d bytes \(\d+%\) are invalid UTF-8 or control characters",
         write("junk.bin", random.Random(0).randbytes(4096))),
    Case("min-count", "a --min-count that empties the vocabulary", ["--corpus", "corpus.txt", "--min-count", "50"],
         # 14 distinct words: "the" 4 times (3 + 1), "and" and "a" twice, the 11 others once.
         r"--min-count 50 leaves no words: the most frequent of 14 words occurs 4 times; lower --min-count"),
    Case("shorter-than-window", "a corpus shorter than the window", ["--corpus", "hello.txt", "--min-count", "1"],
         # Two words of one count each among 2: subsampling keeps each with probability about 0.045.
         r"the corpus gives no training pairs: .*or --sample 0 to keep every word of a tiny corpus",
         write("hello.txt", b"hello world\n")),
    Case("latin-1", "a corpus in Latin-1, not UTF-8",
         ["--corpus", "latin1.txt", "--min-count", "1", "--sample", "0", "--dim", "2", "--model-dir", "latin1-model"],
         # "è", "â" and "é" are one byte each in Latin-1, and not UTF-8: 3 in each line of 23 bytes, 20 lines.
         r"warning: 60 of the corpus's 460 bytes are not valid UTF-8 and were read as word separators",
         write("latin1.txt", "le frère du château élu\n".encode("latin-1") * 20),
         exit_code=0),
    Case("token-pattern", "a separator pattern that is not a regular expression",
         ["--corpus", "corpus.txt", "--token-pattern", "[a-"],
         r"--token-pattern '\[a-' is not a valid RE2 regular expression: missing \]: \[a-"),
    Case("tfds-unknown", "a TFDS name that does not exist", ["--tfds", "imdb_review"],
         r"TFDS knows no dataset named 'imdb_review': did you mean imdb_reviews\?"),
    Case("tfds", "a TFDS dataset that is not prepared", ["--tfds", "imdb_reviews", "--tfds-data-dir", "tfds"],
         r"TFDS dataset 'imdb_reviews' is not prepared in .*; prepare it where downloads work with "
         r"`tfds build imdb_reviews --data_dir tfds`", make_directory("tfds")),
    # A model directory from another run, or damaged.
    Case("contradicting-flag", "a --model-dir trained with another --dim", ["--model-dir", "model", "--dim", "3"],
         r"embedding_dim=3 contradicts the run saved in this --model-dir \(embedding_dim=2\)", needs_model=True),
    Case("other-config", "a checkpoint whose shapes do not match config.json", ["--model-dir", "model"],
         r"checkpoint model/checkpoints/ckpt-\d+ holds E of shape \[14, 2\], but config.json and vocab.tsv make "
         r"\[14, 3\]: it comes from another run", edit_config(lambda config: config["model"].update(embedding_dim=3)),
         needs_model=True),
    Case("corrupt-config", "a truncated config.json", ["--model-dir", "model"],
         r"model/config.json is not a config this version can read \(.*\); restore it from a backup",
         lambda directory: (directory / "model/config.json").write_text('{"data": {"corpus": '), needs_model=True),
    Case("corrupt-vocabulary", "a vocab.tsv that is not one", ["--model-dir", "model"],
         r"model/vocab.tsv is not a vocabulary file this program wrote",
         write("model/vocab.tsv", b"\x89PNG\r\n\x1a\n"), needs_model=True),
    Case("corrupt-checkpoint", "a checkpoint with a damaged byte", ["--model-dir", "model"],
         r"checkpoint model/checkpoints/ckpt-\d+ cannot be read \(.*Checksum does not match.*\); restore the model "
         r"directory from a backup", flip_a_byte_of_the_checkpoint, needs_model=True),
    Case("no-config", "checkpoints without their config.json", ["--model-dir", "model"],
         r"model holds checkpoints but no config.json",
         lambda directory: (directory / "model/config.json").unlink(), needs_model=True),
    # Training that diverges: only possible with the per-row bounds lifted; the guard stops it before any checkpoint.
    Case("diverged", "training that diverges (the row bounds lifted in config.json, a rate far too high)",
         ["--model-dir", "model", "--epochs", "30", "--learning-rate", "1000"],
         r"training diverged at step [\d,]+: .*; stopped without saving\. The usual cause is a --learning-rate too "
         r"high \(1000 here.*the latest checkpoint, model/checkpoints/ckpt-\d+, holds finite values",
         edit_config(lift_row_bounds), needs_model=True, exit_code=3, trains=True),
    # Continuing a trained model on other text, and starting one from pretrained vectors.
    Case("other-corpus", "another corpus for a trained --model-dir, without saying what to do with its words",
         ["--model-dir", "model", "--corpus", "other.txt"],
         r"the corpus is not the one this run trained on: other.txt is new; corpus.txt is no longer in it; .*: add "
         r"--update-vocab to continue training on it and add its new words, or --keep-vocab",
         write("other.txt", b"the prince and the queen rule the old kingdom\n"), needs_model=True),
    Case("update-no-model", "--update-vocab on a directory with no model",
         ["--model-dir", "no-model", "--corpus", "corpus.txt", "--update-vocab"],
         r"--update-vocab continues a trained model, but --model-dir no-model holds no trained model"),
    Case("update-and-keep", "--update-vocab and --keep-vocab together",
         ["--model-dir", "model", "--corpus", "corpus.txt", "--update-vocab", "--keep-vocab"],
         r"--update-vocab adds the new corpus's words and --keep-vocab ignores them: give one of them", needs_model=True),
    Case("update-empty-corpus", "an update corpus with no text", ["--model-dir", "model", "--corpus", "empty.txt",
         "--update-vocab"], r"the corpus has no words: it is empty", write("empty.txt", b""), needs_model=True),
    Case("keep-vocab-no-known-word", "a --keep-vocab corpus with no word of the vocabulary",
         ["--model-dir", "model", "--corpus", "french.txt", "--keep-vocab"],
         r"the corpus has no word of the model's vocabulary, so --keep-vocab has nothing to train on; --keep-vocab "
         r"ignores new words: --update-vocab adds them", write("french.txt", b"le roi et la reine\n" * 10),
         needs_model=True),
    Case("replay-without-round", "--replay without starting a round", ["--model-dir", "model", "--replay", "0.5"],
         r"--replay mixes earlier rounds' text into a new round: give it with --update-vocab or --keep-vocab",
         needs_model=True),
    Case("replay-text-gone", "--replay when an earlier round's corpus is no longer on disk",
         ["--model-dir", "model", "--corpus", "other.txt", "--update-vocab", "--replay", "0.5"],
         r"--replay 0.5 trains round 2 on earlier rounds' text too, but round 1's cannot be read \(corpus path "
         r"'gone/corpus.txt' matches no file.*\): restore it where it was, or start the round without --replay",
         lambda directory: (write("other.txt", b"the prince and the queen rule the old kingdom\n")(directory),
                            edit_config(lambda config: config["training"]["rounds"][0].update(
                                corpus=["gone/corpus.txt"]))(directory)), needs_model=True),
    Case("update-distributed", "--update-vocab with a tf.distribute strategy",
         ["--model-dir", "model", "--corpus", "other.txt", "--update-vocab", "--distribute", "mirrored"],
         r"--update-vocab trains in one process: use --distribute none \(and unset TF_CONFIG\)",
         write("other.txt", b"the prince and the queen rule the old kingdom\n"), needs_model=True),
    Case("init-vectors-dimension", "--init-vectors of another size than --dim",
         ["--corpus", "corpus.txt", "--model-dir", "new-model", "--min-count", "1", "--dim", "2",
          "--init-vectors", "vectors.txt"],
         r"--init-vectors vectors.txt holds vectors of 3 numbers, but --dim is 2: pass --dim 3",
         write("vectors.txt", b"1 3\nking 0.5 0.25 1\n")),
    Case("init-vectors-truncated", "a binary vectors file cut short",
         ["--corpus", "corpus.txt", "--model-dir", "new-model", "--min-count", "1", "--dim", "2",
          "--init-vectors", "vectors.bin"],
         # Two records of "king" / "queen", a space and two float32s; the second loses its last 5 bytes.
         r"vectors.bin ends after 1 of the 2 vectors its first line promises: it is truncated or damaged",
         write("vectors.bin", b"2 2\nking " + bytes(8) + b"\nqueen " + bytes(3))),
    Case("init-vectors-damaged-text", "a text vectors file with a number missing",
         ["--corpus", "corpus.txt", "--model-dir", "new-model", "--min-count", "1", "--dim", "3",
          "--init-vectors", "vectors.txt"],
         r"vectors.txt line 3 holds 2 numbers, but its first line promises 3",
         write("vectors.txt", b"2 3\nking 0.5 0.25 1\nqueen 0.5 0.25\n")),
    Case("init-vectors-pickle", "gensim's own model file (a pickle) instead of word2vec vectors",
         ["--corpus", "corpus.txt", "--model-dir", "new-model", "--min-count", "1", "--dim", "2",
          "--init-vectors", "word2vec.model"],
         r"word2vec.model is not a word2vec file: its first line should be '<word count> <dimension>'",
         write("word2vec.model", b"\x80\x04\x95\x1f\x01\x00\x00\x00\x00\x00\x00\x8c\x17gensim.models.word2vec")),
    Case("init-vectors-trained-model", "--init-vectors for a --model-dir that already holds a model",
         ["--model-dir", "model", "--init-vectors", "vectors.txt"],
         r"--init-vectors starts a new model, but --model-dir model already holds one; give a new --model-dir",
         write("vectors.txt", b"1 2\nking 0.5 0.25\n"), needs_model=True),
    Case("lock-without-init", "--lock-init-vectors without --init-vectors", ["--lock-init-vectors"],
         r"--lock-init-vectors keeps the rows that --init-vectors sets: give --init-vectors FILE too"),
    # Exporting.
    Case("export-no-export-dir", "export without --export-dir", ["--model-dir", "model"],
         r"the following arguments are required: --export-dir; see export.py --help", script="export.py"),
    Case("export-no-checkpoint", "export from a model directory with no checkpoint",
         ["--model-dir", "model", "--export-dir", "exports"],
         r"no checkpoint in model/checkpoints: train first with `python train.py --model-dir model`",
         lambda directory: shutil.rmtree(directory / "model/checkpoints"), needs_model=True, script="export.py"),
    Case("export-corrupt-checkpoint", "export from a checkpoint with a damaged byte",
         ["--model-dir", "model", "--export-dir", "exports"],
         r"checkpoint model/checkpoints/ckpt-\d+ cannot be read \(.*Checksum does not match",
         flip_a_byte_of_the_checkpoint, needs_model=True, script="export.py"),
    Case("export-corrupt-checkpoint-list", "export from a damaged list of checkpoints",
         ["--model-dir", "model", "--export-dir", "exports"], r"model/checkpoints/checkpoint is damaged",
         write("model/checkpoints/checkpoint", b"model_checkpoint_path: {"), needs_model=True, script="export.py"),
    Case("export-no-best", "export --checkpoint best from a run without --keep-best",
         ["--model-dir", "model", "--export-dir", "exports", "--checkpoint", "best"],
         r"no best checkpoint in model/best: train with --keep-best SCORE", needs_model=True, script="export.py"),
    Case("export-existing-version", "export over an existing version", ["--model-dir", "model", "--export-dir",
         "exports", "--version", "7"], r"exports/7 already exists: pass --overwrite to replace it",
         an_earlier_export, needs_model=True, script="export.py"),
    # Resuming under changed conditions: resume exactly or refuse, saying what changed.
    Case("batch-size-inside-an-epoch", "another --batch-size for a run stopped inside an epoch",
         ["--model-dir", "model", "--batch-size", "16"],
         r"checkpoint model/checkpoints/ckpt-5 stopped inside epoch 1, at a data position counted in batches of 8 "
         r"pairs in one process; this run trains batches of 16 pairs in one process .*: resume with --batch-size 8, "
         r"or finish epoch 1 that way \(with --epochs 1\) and change it after", needs_model=True, model="stopped"),
    Case("glob-matches-a-new-file", "a corpus glob that now matches one more file",
         ["--model-dir", "model", "--corpus", "*.txt"],
         r"the corpus is not the one this run trained on: more.txt is new; .*give --corpus those files",
         write("more.txt", b"a new text with words the vocabulary has never seen\n"), needs_model=True),
    Case("corpus-changed", "a corpus file that changed since the run trained on it",
         ["--model-dir", "model", "--corpus", "corpus.txt"],
         r"the corpus is not the one this run trained on: corpus.txt changed \(85 bytes then, 132 now\)",
         corpus_changed, needs_model=True),
    # Memory: estimated before anything large is allocated.
    Case("memory-dim", "a vector size too large for the memory", ["--corpus", "corpus.txt", "--min-count", "1",
         "--dim", "100000000000"],
         r"this run needs about [\d.]+ TB of memory and [\d.]+ [KMGT]?B \(.*\) is available, [\d.]+ TB of it for E and "
         r"W \(14 words x dim 100,000,000,000, 3 copies at the peak\): lower --dim to [\d,]+ or less, or keep fewer "
         r"words"),
    Case("memory-full-softmax", "--loss full with a batch x vocabulary too large for the memory",
         ["--corpus", "corpus.txt", "--min-count", "1", "--loss", "full", "--batch-size", "1000000000000"],
         r"this run needs about [\d.]+ [TP]B of memory .* for the full softmax's logits \(1,000,000,000,000 pairs x 14 "
         r"words, 3 copies\): lower --batch-size to [\d,]+ or less, or choose --loss negative"),
    # Disks that are full or read-only.
    Case("metrics-file-folder", "a --metrics-file in a folder that does not exist",
         ["--corpus", "corpus.txt", "--metrics-file", "missing/metrics.json"],
         r"--metrics-file missing/metrics.json: the folder .*missing does not exist; create it first"),
    Case("full-disk", "a --model-dir on a full disk",
         ["--corpus", "corpus.txt", "--min-count", "1", "--sample", "0", "--model-dir", f"{SMALL_DISK}/model"],
         rf"cannot write the vocabulary to {SMALL_DISK}/model/vocab.tsv: no space left on device \(0 bytes free "
         r"there\); nothing else was changed: free some space and run the same command again",
         full_small_disk, needs_mount=True, teardown=unmount(SMALL_DISK), exit_code=1),
    Case("read-only-model-dir", "a --model-dir on a read-only file system", ["--model-dir", "model", "--epochs", "2"],
         r"--model-dir model is on a read-only file system: training writes its checkpoints and logs there; export.py "
         r"and evaluate.py can still read", model_on_a_read_only_file_system, needs_model=True, needs_mount=True,
         teardown=unmount("model"), exit_code=1),
    Case("export-full-disk", "export to a full disk", ["--model-dir", "model", "--export-dir", f"{SMALL_DISK}/exports"],
         rf"cannot write export version 2 to {SMALL_DISK}/exports: no space left on device \([\d.]+ \w*B? ?\w* free "
         r"there\); earlier versions are intact", full_small_disk, needs_model=True, needs_mount=True,
         teardown=unmount(SMALL_DISK), exit_code=1, script="export.py"),
]


def prepare(case: Case, directory: pathlib.Path, trained_models: dict[str, pathlib.Path]) -> None:
    """Lays out the case's directory: the corpus, a copy of the tiny run if needed (reading the case's own copy of
    the corpus, as one moved with its corpus would), then the damage."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "corpus.txt").write_text("\n".join(CORPUS_LINES) + "\n")
    if case.needs_model:
        shutil.copytree(trained_models[case.model], directory / "model")
        config = json.loads((directory / "model/config.json").read_text())
        config["data"]["corpus"] = [str(directory / "corpus.txt")]
        config["data"]["corpus_files"][0]["path"] = str(directory / "corpus.txt")
        (directory / "model/config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    case.setup(directory)


def run(script: str, arguments: list[str], directory: pathlib.Path,
        timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / script), *arguments], capture_output=True, text=True,
                          cwd=directory, timeout=timeout, check=False, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def train_tiny_model(directory: pathlib.Path, flags: list[str] = TINY_RUN) -> pathlib.Path:
    """A tiny run (14 words, dim 2) for the cases that need a model directory: finished, or stopped by --max-steps."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "corpus.txt").write_text("\n".join(CORPUS_LINES) + "\n")
    result = run("train.py", flags, directory)
    assert result.returncode == 0, result.stderr
    return directory / "model"


def runnable(cases: list[Case]) -> list[Case]:
    """The cases this machine can run: those that mount a file system need the permission to."""
    from mounts import why_mounting_is_not_permitted

    return [case for case in cases if not case.needs_mount or why_mounting_is_not_permitted() is None]


def message_line(result: subprocess.CompletedProcess) -> str:
    """The one line a case prints on stderr."""
    return result.stderr.strip()


def snapshot(directory: pathlib.Path) -> dict[str, bytes | None]:
    """Every file's bytes and every directory (as None), by path relative to `directory`."""
    return {str(path.relative_to(directory)): None if path.is_dir() else path.read_bytes()
            for path in sorted(directory.rglob("*"))}


@dataclasses.dataclass
class Outcome:
    result: subprocess.CompletedProcess
    before: dict[str, bytes | None]
    after: dict[str, bytes | None]


def run_cases(work: pathlib.Path, cases: list[Case], workers: int = 2) -> dict[str, Outcome]:
    """Runs every case this machine can run (see `runnable`) in its own directory under `work`, two at a time: most
    of each run is TensorFlow starting up, which one core does while the other runs the next case."""
    cases = runnable(cases)
    models = {model: train_tiny_model(work / f"trained-{model}", flags)
              for model, flags in (("finished", TINY_RUN), ("stopped", STOPPED_RUN))
              if any(case.needs_model and case.model == model for case in cases)}

    def run_case(case: Case) -> tuple[str, Outcome]:
        directory = work / case.name
        try:
            prepare(case, directory, models)
            before = snapshot(directory)
            result = run(case.script, case.arguments, directory)
            return case.name, Outcome(result, before, snapshot(directory))
        finally:
            case.teardown(directory)

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(run_case, cases))


def table(rows: list[tuple[Case, str]]) -> str:
    lines = ["| bad input | command | what the user sees on stderr | exit code |", "| --- | --- | --- | --- |"]
    for case, message in rows:
        command, cell = " ".join([case.script, *case.arguments]), message.replace("|", "\\|")
        lines.append(f"| {case.description} | `{command}` | {cell} | {case.exit_code} |")
    return "\n".join(lines)


def readme_table_rows() -> dict[str, str]:
    """The message column of the README's table, by bad-input description."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(TABLE_START):text.index(TABLE_END)]
    rows = {}
    for description, message in re.findall(r"^\| (.+?) \| `.*?` \| (.*) \| \d+ \|$", section, flags=re.MULTILINE):
        rows[description] = message.replace("\\|", "|")
    return rows


def rewrite_readme_table(work: pathlib.Path) -> None:
    """Reruns every case and rewrites the README's table; a case this machine cannot run (no permission to mount)
    keeps the row the README has."""
    outcomes, documented = run_cases(work, CASES), readme_table_rows()
    rows = []
    for case in CASES:
        if case.name not in outcomes:
            print(f"{case.name}: not run here (mounting is not permitted); the README's row is kept", file=sys.stderr)
            rows.append((case, documented.get(case.description, "")))
            continue
        result = outcomes[case.name].result
        print(f"{case.name}: exit {result.returncode}: {message_line(result)}", file=sys.stderr)
        rows.append((case, message_line(result)))
    text = README.read_text(encoding="utf-8")
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    README.write_text(text[:start] + "\n" + table(rows) + "\n" + text[end:], encoding="utf-8")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        rewrite_readme_table(pathlib.Path(work))
