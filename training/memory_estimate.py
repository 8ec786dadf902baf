"""What a training run will hold in memory, estimated before anything large is allocated and compared with what
is available (memory.py), so that a run too large for the machine is refused in one line instead of being killed.

Two checks: before the corpus is counted, the word counter's bound; once the vocabulary size V is known, everything
else. Each estimate is an upper bound on the memory the part holds at its peak; the biggest part's flag is named.
"""

import copy
import dataclasses

from config import Config
from data_pipeline.pairs import MAX_CHUNK_WORDS, noise_table_size
from errors import UserError
from memory import AvailableMemory, available_memory
from storage import size_text

FLOAT_BYTES = 4
BYTES_PER_COUNTED_WORD = 120  # a distinct word in the counter: dict slot, bytes key, int count (config.py)
# A vocabulary word: its Python string and count, the word -> id dict, TensorFlow's lookup table and its keys.
BYTES_PER_VOCABULARY_WORD = 300
# A (centre, context) pair while its chunk is made: the candidates of each distance, the concatenation, the
# shuffle order, the shuffled copies and the padded batches, all int32.
BYTES_PER_PAIR = 40
CHUNKS_IN_FLIGHT = 4  # chunks made in parallel (tf.data AUTOTUNE, one per core here) and buffered ahead
BATCHES_IN_FLIGHT = 8  # batches prefetched ahead of the training step


@dataclasses.dataclass(frozen=True)
class Need:
    """One part of a run's memory: what it is, its size, the flag whose lower value shrinks it, and what else does."""

    what: str
    bytes: int
    flag: str = ""
    otherwise: str = ""


# The config field behind each flag a Need can name, for finding the largest value that fits.
FLAG_FIELDS = {"--dim": ("model", "embedding_dim"), "--batch-size": ("training", "batch_size"),
               "--window": ("data", "window_size"), "--projector-rows": ("training", "projector_rows")}
FEWER_WORDS = "keep fewer words (--max-vocab, --min-count)"


def model_copies(config: Config) -> int:
    """V x D float matrices held at the peak: E, W, one more copy of E (its initial values while the variable is made,
    its normalised rows while neighbours are searched) and, for `full`, W's dense gradient and its scaled copy."""
    return 3 + 2 * (config.training.loss == "full")


def training_needs(config: Config, vocabulary_size: int, corpus_words: int = 0,
                   id_cache_in_memory: bool = False) -> list[Need]:
    """The parts of a run's memory, for a vocabulary of `vocabulary_size` words."""
    words, dim = vocabulary_size, config.model.embedding_dim
    batch, window = config.training.batch_size, config.data.window_size
    copies = model_copies(config)
    needs = [
        Need(f"E and W ({words:,} words x dim {dim:,}, {copies} copies at the peak)",
             copies * words * dim * FLOAT_BYTES + 2 * words * FLOAT_BYTES, "--dim", FEWER_WORDS),
        Need(f"the vocabulary ({words:,} words)", words * BYTES_PER_VOCABULARY_WORD
             + noise_table_size(words) * FLOAT_BYTES, otherwise=FEWER_WORDS),
        Need(f"the pairs of {CHUNKS_IN_FLIGHT} chunks of up to {MAX_CHUNK_WORDS:,} words",
             CHUNKS_IN_FLIGHT * MAX_CHUNK_WORDS * (window + 1) * BYTES_PER_PAIR, "--window"),
        Need(f"{BATCHES_IN_FLIGHT} batches of {batch:,} pairs", BATCHES_IN_FLIGHT * batch * 3 * FLOAT_BYTES,
             "--batch-size"),
    ]
    if config.training.loss == "full":
        needs.append(Need(f"the full softmax's logits ({batch:,} pairs x {words:,} words, 3 copies)",
                          3 * batch * words * FLOAT_BYTES, "--batch-size", "choose --loss negative"))
    elif config.training.loss == "negative" and config.data.shared_noise_words == 0:
        negatives = config.data.negatives
        needs.append(Need(f"the noise words' vectors ({batch:,} pairs x {negatives} noise words x dim {dim:,}, "
                          "and their gradient)", 2 * batch * negatives * dim * FLOAT_BYTES, "--batch-size",
                          "share noise words across the batch (--shared-noise-words 32)"))
    if id_cache_in_memory:
        needs.append(Need(f"the token-id cache ({corpus_words:,} words on a tmpfs, which holds it in memory)",
                          corpus_words * FLOAT_BYTES * 5 // 4,
                          otherwise="put --model-dir on a disk rather than a tmpfs"))
    projector_rows = min(config.training.projector_rows, words)
    needs.append(Need(f"the projector's {projector_rows:,} rows of E", 2 * projector_rows * dim * FLOAT_BYTES,
                      "--projector-rows"))
    return needs


def total_bytes(config: Config, vocabulary_size: int, corpus_words: int, id_cache_in_memory: bool) -> int:
    return sum(need.bytes for need in training_needs(config, vocabulary_size, corpus_words, id_cache_in_memory))


def largest_fitting(config: Config, flag: str, available: int, *needs_arguments) -> int:
    """The largest value of `flag` below its current one at which the whole run fits in `available` bytes, every
    other setting unchanged (0: none does). Every part grows with each flag, so a bisection finds it."""
    section, name = FLAG_FIELDS[flag]
    fits, too_big = 0, getattr(getattr(config, section), name)
    while too_big - fits > 1:
        middle = (fits + too_big) // 2
        trial = copy.deepcopy(config)
        setattr(getattr(trial, section), name, middle)
        fits, too_big = (middle, too_big) if total_bytes(trial, *needs_arguments) <= available else (fits, middle)
    return fits


def check_training_memory(config: Config, vocabulary_size: int, corpus_words: int = 0,
                          id_cache_in_memory: bool = False, available: AvailableMemory | None = None) -> None:
    """Refuses, in one line, a run whose estimated memory exceeds what is available: the estimate, the memory
    available, the biggest part and the flag that shrinks the run enough."""
    available = available or available_memory()
    needs = training_needs(config, vocabulary_size, corpus_words, id_cache_in_memory)
    total = sum(need.bytes for need in needs)
    if available is None or total <= available.bytes:
        return
    biggest = max(needs, key=lambda need: need.bytes)
    largest = largest_fitting(config, biggest.flag, available.bytes, vocabulary_size, corpus_words,
                              id_cache_in_memory) if biggest.flag else 0
    if largest:
        fix = f"lower {biggest.flag} to {largest:,} or less"
        fix += f", or {biggest.otherwise}" if biggest.otherwise else ""
    else:
        fix = biggest.otherwise or "run it on a machine with more memory"
    raise UserError(f"this run needs about {size_text(total)} of memory and {available} is available, "
                    f"{size_text(biggest.bytes)} of it for {biggest.what}: {fix}")


def counted_words_bound(max_vocab_memory: int, corpus_bytes: int | None) -> int | None:
    """The most distinct words the counter can hold: --max-vocab-memory, and at most one per two bytes of text
    (a word and a separator); None when neither bounds it."""
    bounds = [bound for bound in (max_vocab_memory or None, corpus_bytes // 2 if corpus_bytes else None) if bound]
    return min(bounds) if bounds else None


def check_counting_memory(max_vocab_memory: int, corpus_bytes: int | None,
                          available: AvailableMemory | None = None) -> None:
    """Refuses, in one line, a corpus count whose word counter could outgrow the memory available."""
    bound = counted_words_bound(max_vocab_memory, corpus_bytes)
    available = available or available_memory()
    if bound is None or available is None or bound * BYTES_PER_COUNTED_WORD <= available.bytes:
        return
    fitting = available.bytes // BYTES_PER_COUNTED_WORD
    raise UserError(f"counting the corpus may hold up to {bound:,} distinct words in about "
                    f"{size_text(bound * BYTES_PER_COUNTED_WORD)} of memory and {available} is available: "
                    f"lower --max-vocab-memory to {fitting:,} or less (the rarest words are then pruned while "
                    "counting)")
