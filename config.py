"""Every default of the project, in one typed config saved beside each checkpoint.

`train.py` turns each field that carries a `flag` into a command-line flag; the saved `config.json` lets
resume and export rebuild exactly the same pipeline and network without the flags.
"""

import argparse
import dataclasses
import json
import math
import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from errors import UserError


def flag(name: str, help: str, **argparse_options: Any) -> dict:
    """Field metadata that makes a config field a command-line flag of train.py."""
    return {"flag": name, "help": help, **argparse_options}


def whole_number_between(low: int, high: int) -> Callable[[str], int]:
    """An argparse `type` that accepts whole numbers from `low` to `high` and refuses others in one line."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            number = low - 1
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low:,} to {high:,}, not {text!r}")
        return number

    return parse


# Zero-width non-joiner and joiner: inside a word in Persian, Hindi, Bengali and other scripts.
JOINERS = r"\x{200C}\x{200D}"
# The default separators between tokens: runs of anything but letters, digits, combining marks and joiners, so
# that words of scripts written with marks (Hindi, Bengali, Tamil, Thai, decomposed Latin) stay whole. Marks and
# joiners belong to a word only inside it: after a separator or at a line's start, and joiners before a separator
# or at a line's end, they are separators too, so that no token is a lone mark or joiner.
TOKEN_PATTERN = rf"[{JOINERS}]*[^\pL\pN\pM{JOINERS}]+[\pM{JOINERS}]*|^[\pM{JOINERS}]+|[{JOINERS}]+$"


@dataclass
class DataConfig:
    """Where the text comes from and how it becomes training pairs.

    Attributes:
        corpus: text files or globs, plain or .gz; empty means the embedded WordNet corpus.
        tfds_name: a TensorFlow Datasets name to read instead of files.
        tfds_split: the TFDS split to read.
        tfds_feature: the TFDS feature that holds the text.
        tfds_data_dir: where the prepared TFDS data lives.
        token_pattern: RE2 pattern of the separators between tokens, applied after lowercasing and NFC
            (data_pipeline/tokenize.py): by default anything but letters, digits, and the combining marks and
            zero-width joiners inside a word.
        min_count: words seen fewer times are left out of the vocabulary.
        max_vocab: keep at most this many of the most frequent words (0: no cap).
        max_vocab_memory: the most distinct words held while counting the corpus; beyond it the rarest are
            pruned as word2vec's ReduceVocab (gensim's max_vocab_size) does (0: no limit). The counter takes
            about 120 bytes per word (more for long words), so the default 10M words is about 1.2 GB.
        window_size: the largest distance between a centre word and its context words.
        sample: word2vec's subsampling threshold for frequent words (0 disables it).
        negatives: noise words per (centre, context) pair for the `negative` objective.
        shared_noise_words: at least K noise words drawn once per batch and scored against every pair in it, each
            weighted negatives / K; more when one would stand for more than `max_noise_row_updates` pairs' worth
            (batch x negatives / K: 96 with --negatives 15). 0 draws `negatives` fresh noise words per pair, as
            word2vec does (the updates are still summed per batch and bounded per row).
        lines_per_chunk: lines turned into pairs together, then shuffled among themselves.
        corpus_files: the files the run trains on, filled in when it starts: for each, its absolute `path`, its
            size in `bytes` and a `fingerprint` (see data_pipeline/corpus_identity.py); a resume refuses a corpus
            that differs from them.
        update_vocab: this run starts a new round on the given corpus, continuing the trained model in the model
            directory: counts are merged, new words reaching `min_count` get rows after the existing ones.
        keep_vocab: this run starts a new round on the given corpus with the vocabulary unchanged (new words are
            ignored). Both are per run: a saved config never carries them into the next run.
        replay: with --update-vocab or --keep-vocab, the round also trains on this share of the earlier rounds'
            lines (the same sample every epoch, spread through the new text), so that what they taught is
            rehearsed instead of drifting (0: the new text only). Per run; the round records it.
    """

    corpus: list[str] = field(default_factory=list, metadata=flag(
        "--corpus", "text files or globs, plain or .gz; each line is a sentence", nargs="+", metavar="PATH",
        shown_default="the embedded WordNet glosses"))
    tfds_name: str = field(default="", metadata=flag(
        "--tfds", "a TensorFlow Datasets dataset already prepared locally, read instead of --corpus (nothing is "
        "downloaded), e.g. imdb_reviews", metavar="NAME"))
    tfds_split: str = field(default="train", metadata=flag("--tfds-split", "the TFDS split to read", metavar="SPLIT"))
    tfds_feature: str = field(default="text", metadata=flag(
        "--tfds-feature", "the TFDS feature holding the text", metavar="FEATURE"))
    tfds_data_dir: str = field(default="", metadata=flag(
        "--tfds-data-dir", "where the prepared TFDS data lives", metavar="DIR", shown_default="TFDS's own, ~/tensorflow_datasets"))
    token_pattern: str = field(default=TOKEN_PATTERN, metadata=flag(
        "--token-pattern", "RE2 regular expression of the separators between words, applied after lowercasing and NFC",
        metavar="REGEX"))
    min_count: int = field(default=5, metadata=flag(
        "--min-count", "words seen fewer times are left out of the vocabulary", metavar="N"))
    max_vocab: int = field(default=0, metadata=flag(
        "--max-vocab", "keep at most this many of the most frequent words (0: no cap)", metavar="N"))
    max_vocab_memory: int = field(default=10_000_000, metadata=flag(
        "--max-vocab-memory", "distinct words held while counting; beyond it the rarest are pruned (0: no limit)",
        type=whole_number_between(0, 10**12), metavar="N"))
    window_size: int = field(default=5, metadata=flag(
        "--window", "largest centre-context distance (each centre draws its reach from 1 to N)", metavar="N"))
    sample: float = field(default=1e-3, metadata=flag(
        "--sample", "word2vec's subsampling threshold for frequent words (0 disables it)", metavar="T"))
    negatives: int = field(default=5, metadata=flag("--negatives", "noise words per pair for --loss negative",
                                                    metavar="K"))
    shared_noise_words: int = field(default=32, metadata=flag(
        "--shared-noise-words", "at least K noise words drawn once per batch and scored against all its pairs, each "
        "weighted negatives/K (more when the batch needs them); 0: --negatives fresh ones per pair, as word2vec draws "
        "them", metavar="K"))
    lines_per_chunk: int = 2048
    corpus_files: list[dict] = field(default_factory=list)
    update_vocab: bool = field(default=False, metadata=flag(
        "--update-vocab", "with a trained --model-dir and another --corpus: continue training on it (a new round), "
        "its new words added after the existing ones", action="store_true", shown_default="off"))
    keep_vocab: bool = field(default=False, metadata=flag(
        "--keep-vocab", "the same with the vocabulary unchanged: the new corpus's new words are ignored",
        action="store_true", shown_default="off"))
    replay: float = field(default=0.0, metadata=flag(
        "--replay", "with --update-vocab or --keep-vocab: also train the round on this share (0 to 1) of the earlier "
        "rounds' lines, mixed into the new text; closer to retraining on all of it, at the cost of reading that "
        "much more (0.7: within 0.02 of retraining in docs/continuing.md's runs)", metavar="FRACTION"))


@dataclass
class ModelConfig:
    """The skip-gram network: E (V x D) and W (V x D plus a bias of V).

    Attributes:
        embedding_dim: D, the size of each word vector.
        vocabulary_size: V, filled in from the vocabulary when training starts.
    """

    embedding_dim: int = field(default=100, metadata=flag("--dim", "size of each word vector", metavar="D"))
    vocabulary_size: int = 0


LOSSES = ["negative", "sampled", "full"]
# The scores logged at each epoch end that --keep-best and --early-stop can follow.
MEAN_LOSS_SCORE = "epoch/mean_loss"  # the only one where lower is better
ANALOGY_SCORE = "eval/analogy"


def similarity_score(path: str) -> str:
    """The scalar a word-pairs file's Spearman correlation is logged as: `eval/<file name without extension>`."""
    return f"eval/{pathlib.PurePath(path).stem}"


@dataclass
class Round:
    """One round of training as config.json records it: the first trains a new model, each later one continues it
    on other text (`--update-vocab` or `--keep-vocab`). The last round is the one the model directory trains now.

    Attributes:
        kind: `new` (the first round), `update-vocab` or `keep-vocab`.
        corpus: the text files or globs the round trains on, as given (empty: the embedded corpus, or TFDS).
        corpus_files: the files they matched, each with its size and fingerprint (DataConfig.corpus_files).
        tfds_name: the TFDS dataset it trains on instead, with `tfds_split` and `tfds_feature`.
        corpus_words: the round's corpus words that are in the vocabulary, per epoch: its learning rate decays
            over this many words times `epochs`.
        vocabulary_size: V once the round started.
        words_added: words the round added to the vocabulary (all of them in the first round).
        epochs: passes over the round's corpus.
        learning_rate: the round's starting learning rate.
        start_step: the step count when the round started (the step count runs on across rounds).
        end_step: the step count when it finished its epochs; -1 until then.
        started: when it started (ISO 8601, local time); empty where unknown.
        finished: when it finished; empty until then.
        replay: the share of the earlier rounds' lines the round trains on beside its own text (--replay).
        replay_words: the words of those lines that are in the vocabulary, per epoch: the learning rate decays
            over `corpus_words` + `replay_words` times `epochs`.
    """

    kind: str = "new"
    corpus: list[str] = field(default_factory=list)
    corpus_files: list[dict] = field(default_factory=list)
    tfds_name: str = ""
    tfds_split: str = "train"
    tfds_feature: str = "text"
    corpus_words: int = 0
    vocabulary_size: int = 0
    words_added: int = 0
    epochs: int = 0
    learning_rate: float = 0.0
    start_step: int = 0
    end_step: int = -1
    started: str = ""
    finished: str = ""
    replay: float = 0.0
    replay_words: int = 0


@dataclass
class TrainingConfig:
    """How the network is trained and checkpointed.

    Attributes:
        loss: the objective: `negative` (negative sampling), `sampled` (sampled softmax) or `full` softmax.
        epochs: passes over the corpus.
        batch_size: (centre, context) pairs per training step.
        learning_rate: the starting learning rate, decayed linearly over the run as word2vec does.
        min_learning_rate_ratio: the decay stops at this fraction of the starting rate (word2vec: 1e-4).
        max_row_updates: one batch moves a row of E (a centre word) or of W (a true context word) by at most this
            many pairs' worth of its summed gradient (model/optimizer.py: summed updates of frequent rows overshoot).
        max_noise_row_updates: one batch moves a row of W by at most this many pairs' worth of noise: a noise word
            shared by B pairs, weighted negatives / K, is worth B x negatives / K (320 by default).
        sampled_classes: classes drawn per batch by the `sampled` objective, at least (one per 8 pairs of a batch
            at least: 1,024 for 8,192 pairs).
        seed: seeds the initial weights, the subsampling, the windows, the shuffle and the noise words.
        checkpoint_every: steps between checkpoints.
        checkpoints_to_keep: how many of the latest checkpoints stay on disk.
        log_every: steps between progress lines and loss summaries.
        probe_words: words whose nearest neighbours are shown after training and in TensorBoard after each epoch;
            when none is in the vocabulary, a few frequent words stand in for them (and the run says so).
        probe_neighbours: neighbours listed per probe word, after training and in TensorBoard's TEXT tab (0: none).
        eval_analogies: a questions-words.txt-style file scored at each epoch end (`eval/analogy`; "": none).
        eval_similarity: word-pair files scored at each epoch end (`eval/<file stem>`, Spearman).
        keep_best: a score logged at each epoch end (`eval/analogy`, `eval/<file stem>` or `epoch/mean_loss`);
            the checkpoint of the epoch where it is best is also kept, in model_dir/best ("": none).
        early_stop: stop after this many epochs in a row without a better `keep_best` score (0: never).
        projector_rows: rows of E (the most frequent words) shown in TensorBoard's projector; the plugin's
            own limit is 100,000.
        distribute: `auto` (multi-worker when TF_CONFIG lists several workers, else one process), `none`,
            `multi-worker` (MultiWorkerMirroredStrategy from TF_CONFIG) or `mirrored` (MirroredStrategy over
            this machine's GPUs); each replica trains on batches of `batch_size` pairs.
        sync_every: with several replicas, steps each replica trains on its own batches between two exchanges of
            the rows they changed (model/replica_exchange.py); 1 exchanges after every step.
        init_vectors: a word2vec file (text or binary) whose vectors start E's rows of the words it holds, for a
            new model.
        lock_init_vectors: keep the rows started from `init_vectors` fixed while the rest trains (gensim's lockf).
        update_learning_rate: the starting learning rate of a round started with --update-vocab or --keep-vocab
            when --learning-rate is not given (measured: see docs/continuing.md).
        rounds: the rounds of training so far, the current one last (see `Round`); written by training.
    """

    loss: str = field(default="negative", metadata=flag(
        "--loss", "the objective: negative (negative sampling), sampled (sampled softmax) or full (exact softmax)",
        choices=LOSSES))
    epochs: int = field(default=5, metadata=flag("--epochs", "passes over the corpus", metavar="N"))
    batch_size: int = field(default=2048, metadata=flag(
        "--batch-size", "(centre, context) pairs per training step", metavar="N"))
    learning_rate: float = field(default=0.025, metadata=flag(
        "--learning-rate", "the starting learning rate, decayed linearly over the run as in word2vec", metavar="RATE"))
    min_learning_rate_ratio: float = 1e-4
    max_row_updates: float = 16.0
    max_noise_row_updates: float = 320.0
    sampled_classes: int = 256
    seed: int = field(default=1, metadata=flag(
        "--seed", "seeds the weights, subsampling, windows, shuffle and noise words", metavar="N"))
    checkpoint_every: int = field(default=2000, metadata=flag(
        "--checkpoint-every", "steps between checkpoints (the last 3 are kept, and one at the end)", metavar="N"))
    checkpoints_to_keep: int = 3
    log_every: int = field(default=200, metadata=flag(
        "--log-every", "steps between progress lines and TensorBoard loss points (each epoch's end also gets one)",
        type=whole_number_between(1, 10**9), metavar="N"))
    probe_words: list[str] = field(default_factory=lambda: ["king", "water", "music", "horse"], metadata=flag(
        "--probe-words", "words whose nearest neighbours are shown after each epoch (TEXT tab) and at the end; when "
        "none is in the vocabulary, four frequent words stand in, and the run says so", nargs="+", metavar="WORD"))
    probe_neighbours: int = field(default=8, metadata=flag(
        "--probe-neighbours", "neighbours listed per probe word (0: none)", type=whole_number_between(0, 10**6),
        metavar="N"))
    eval_analogies: str = field(default="", metadata=flag(
        "--eval-analogies", "an analogy file (questions-words.txt format) scored at each epoch end: eval/analogy",
        metavar="FILE"))
    eval_similarity: list[str] = field(default_factory=list, metadata=flag(
        "--eval-similarity", "word-pair files (word<TAB>word<TAB>score) scored at each epoch end: "
        "eval/<file name without extension> (Spearman)", nargs="+", metavar="FILE"))
    keep_best: str = field(default="", metadata=flag(
        "--keep-best", "also keep the checkpoint of the epoch with the best value of this score (eval/analogy, "
        "eval/<file name> or epoch/mean_loss, lowest) in model_dir/best", metavar="SCORE"))
    early_stop: int = field(default=0, metadata=flag(
        "--early-stop", "stop after this many epochs in a row without a better --keep-best score (0: never)",
        type=whole_number_between(0, 10**6), metavar="EPOCHS"))
    projector_rows: int = field(default=10_000, metadata=flag(
        "--projector-rows", "most frequent words shown in TensorBoard's projector (1 to 100,000, the plugin's limit)",
        type=whole_number_between(1, 100_000), metavar="N"))
    distribute: str = field(default="auto", metadata=flag(
        "--distribute", "the tf.distribute strategy: auto is multi-worker when TF_CONFIG lists several workers, "
        "else none; mirrored uses this machine's GPUs",
        choices=["auto", "none", "multi-worker", "mirrored"]))
    sync_every: int = field(default=256, metadata=flag(
        "--sync-every", "with several workers or devices: steps between exchanges of the changed rows",
        type=whole_number_between(1, 10**9), metavar="N"))
    init_vectors: str = field(default="", metadata=flag(
        "--init-vectors", "a word2vec file (text or binary) whose vectors start a new model's E for the words it "
        "holds", metavar="FILE"))
    lock_init_vectors: bool = field(default=False, metadata=flag(
        "--lock-init-vectors", "keep the rows --init-vectors set fixed while the rest trains (gensim's lockf)",
        action="store_true", shown_default="off"))
    update_learning_rate: float = 0.025
    rounds: list[Round] = field(default_factory=list)

    def __post_init__(self):
        # From config.json the rounds arrive as dicts; a record with unknown fields is a TypeError, which the
        # model directory reports as a config this version cannot read.
        self.rounds = [record if isinstance(record, Round) else Round(**record) for record in self.rounds]

    def score_names(self) -> list[str]:
        """The scores logged at each epoch end: the mean loss, then one per evaluation file."""
        names = [MEAN_LOSS_SCORE] + ([ANALOGY_SCORE] if self.eval_analogies else [])
        return names + [similarity_score(path) for path in self.eval_similarity]

    def check_scores(self) -> None:
        """Refuses evaluation files that would log under one name, and a --keep-best or --early-stop that has
        no score to follow."""
        names = self.score_names()
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise UserError(f"two evaluation files would both log {repeated[0]} (a word-pairs file logs "
                            "eval/<its name without extension>): rename one")
        if self.keep_best and self.keep_best not in names:
            more = "" if len(names) > 1 else " (--eval-analogies and --eval-similarity add eval/ scores)"
            raise UserError(f"--keep-best {self.keep_best} is not a score this run logs: choose "
                            f"{', '.join(names)}{more}")
        if self.early_stop and not self.keep_best:
            raise UserError("--early-stop needs --keep-best SCORE, the score it waits to improve "
                            "(e.g. --keep-best eval/analogy with --eval-analogies FILE)")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        saved = json.loads(text)
        config = cls(
            data=DataConfig(**saved["data"]),
            model=ModelConfig(**saved["model"]),
            training=TrainingConfig(**saved["training"]),
        )
        if not config.training.rounds:  # Written before rounds were recorded: its one round trains data's corpus.
            config.training.rounds = [first_round(config)]
        return config

    def validate(self) -> None:
        """Raises a UserError naming the first value that cannot work (a size of 0, a negative rate, text where
        a number belongs), so that a mistake stops the run before anything is read or written."""
        for section in dataclasses.fields(self):
            for setting in dataclasses.fields(section.type):
                value = getattr(getattr(self, section.name), setting.name)
                check_type(value, setting, section.name)
                choices = setting.metadata.get("choices")
                if choices and value not in choices:
                    raise UserError(f"{setting_name(section.name, setting.name)} must be one of "
                                    f"{', '.join(choices)}, not {value!r}")
        for (section, name), (allowed, meaning) in LIMITS.items():
            value = getattr(getattr(self, section), name)
            if not allowed(value):
                raise UserError(f"{setting_name(section, name)} must be {meaning}, not {value}")
        if self.training.loss == "negative" and self.data.negatives < 1:
            raise UserError("--negatives must be at least 1 with --loss negative (or choose --loss sampled or full)")
        if self.data.corpus and self.data.tfds_name:
            raise UserError("--corpus and --tfds both name a corpus: give only one of them")
        if self.data.update_vocab and self.data.keep_vocab:
            raise UserError("--update-vocab adds the new corpus's words and --keep-vocab ignores them: "
                            "give one of them")
        if self.data.replay and not (self.data.update_vocab or self.data.keep_vocab):
            raise UserError("--replay mixes earlier rounds' text into a new round: give it with --update-vocab or "
                            "--keep-vocab (and the new --corpus)")
        if self.training.lock_init_vectors and not self.training.init_vectors:
            raise UserError("--lock-init-vectors keeps the rows that --init-vectors sets: give --init-vectors FILE too")
        self.training.check_scores()


def first_round(config: Config, started: str = "") -> Round:
    """The record of a model's first round: it trains the config's corpus from step 0."""
    data, training = config.data, config.training
    return Round(kind="new", corpus=list(data.corpus), corpus_files=list(data.corpus_files), tfds_name=data.tfds_name, tfds_split=data.tfds_split,
                 tfds_feature=data.tfds_feature, vocabulary_size=config.model.vocabulary_size,
                 words_added=config.model.vocabulary_size, epochs=training.epochs,
                 learning_rate=training.learning_rate, started=started)


# Fields that decide the vocabulary or the shape of E and W: a checkpoint cannot continue if they change. The
# corpus is compared by its files' content instead (training/preflight.py: settled_corpus_files).
MODEL_DEFINING_FIELDS = {
    "data": ["tfds_name", "tfds_split", "tfds_feature", "token_pattern", "min_count", "max_vocab",
             "max_vocab_memory"],
    "model": ["embedding_dim"],
    "training": ["lock_init_vectors"],
}
# The fields that name the text a round trains on: another value starts a new round (--update-vocab or --keep-vocab).
CORPUS_FIELDS = ["corpus", "tfds_name", "tfds_split", "tfds_feature"]
# Fields that ask for something of one run only: a saved config's values are not carried into the next run.
PER_RUN_FIELDS = {"data": ["update_vocab", "keep_vocab", "replay"]}


def at_least(lowest: float) -> tuple:
    return (lambda value: value >= lowest), f"at least {lowest}"


def more_than(lowest: float) -> tuple:
    return (lambda value: value > lowest), f"more than {lowest}"


def between(lowest: float, highest: float) -> tuple:
    return (lambda value: lowest <= value <= highest), f"between {lowest} and {highest}"


# The values each number may take; anything else is refused by Config.validate, naming the flag.
LIMITS = {
    ("data", "min_count"): at_least(0),
    ("data", "max_vocab"): at_least(0),
    ("data", "window_size"): at_least(1),
    ("data", "sample"): at_least(0),
    ("data", "negatives"): at_least(0),
    ("data", "shared_noise_words"): at_least(0),
    ("data", "lines_per_chunk"): at_least(1),
    ("data", "max_vocab_memory"): at_least(0),
    ("data", "replay"): between(0, 1),
    ("model", "embedding_dim"): at_least(1),
    ("model", "vocabulary_size"): at_least(0),
    ("training", "epochs"): at_least(1),
    ("training", "batch_size"): at_least(1),
    ("training", "learning_rate"): more_than(0),
    ("training", "update_learning_rate"): more_than(0),
    ("training", "min_learning_rate_ratio"): between(0, 1),
    ("training", "max_row_updates"): more_than(0),
    ("training", "max_noise_row_updates"): more_than(0),
    ("training", "sampled_classes"): at_least(1),
    ("training", "seed"): between(0, 2**63 - 1),
    ("training", "checkpoint_every"): at_least(1),
    ("training", "checkpoints_to_keep"): at_least(1),
    ("training", "log_every"): at_least(1),
    ("training", "sync_every"): at_least(1),
    ("training", "probe_neighbours"): at_least(0),
    ("training", "early_stop"): at_least(0),
    ("training", "projector_rows"): between(1, 100_000),
}


def setting_name(section: str, name: str) -> str:
    """How the user sets a field: its flag, or its place in config.json for fields without one."""
    field = {field.name: field for field in dataclasses.fields(Config.__dataclass_fields__[section].type)}[name]
    return field.metadata.get("flag", f"{section}.{name} in config.json")


def check_type(value: Any, field: dataclasses.Field, section: str) -> None:
    """A config.json edited by hand can hold text where a number belongs; say so instead of failing later."""
    if field.type is float:
        valid = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif field.type is bool:
        valid = isinstance(value, bool)
    elif field.type == list[Round]:
        valid = isinstance(value, list) and all(isinstance(item, Round) for item in value)
    elif field.type is int:
        valid = isinstance(value, int) and not isinstance(value, bool)
    elif field.type is str:
        valid = isinstance(value, str)
    elif field.type == list[dict]:
        valid = isinstance(value, list) and all(isinstance(item, dict) for item in value)
    else:  # list[str]
        valid = isinstance(value, list) and all(isinstance(item, str) for item in value)
    if not valid:
        kinds = {float: "a finite number", int: "a whole number", str: "text", bool: "true or false",
                 list[dict]: "a list of objects"}
        kind = kinds.get(field.type, "a list of text")
        raise UserError(f"{setting_name(section, field.name)} must be {kind}, not {value!r}")
