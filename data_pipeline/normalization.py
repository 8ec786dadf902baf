"""Unicode NFC normalisation in TensorFlow ops, so that it runs inside tf.data and inside an exported SavedModel.

A word can be typed composed (`é`, U+00E9) or decomposed (`e` and a combining acute, U+0065 U+0301), and both
forms occur in real text; NFC turns both into the composed one, so that they count as one word. TensorFlow has
no normalisation op (tensorflow-text has, but it is not a dependency here), so this module does what Unicode's
normalisation algorithm says (UAX #15), vectorised over all the code points of a batch of lines:

1. decompose every code point into its canonical decomposition (Hangul syllables by formula);
2. put each run of combining marks in canonical order (a stable sort by combining class);
3. compose: first adjacent starters that combine (Hangul jamo, a few Indic vowel signs), then, run by run, each
   starter with the marks after it that it combines with and that no earlier mark blocks.

Most text is NFC already: a line without any code point that NFC could change (a combining mark, or a character
that decomposes or composes) is left as it is, and only the other lines are decoded. The tables come from
Python's unicodedata, so they follow the Unicode version of the Python that runs the program.
"""

import dataclasses
import functools
import unicodedata

import numpy as np
import tensorflow as tf

# Hangul syllables compose and decompose by formula (The Unicode Standard, section 3.12).
HANGUL_FIRST, HANGUL_COUNT = 0xAC00, 11172
LEADING_FIRST, VOWEL_FIRST, TRAILING_BEFORE_FIRST = 0x1100, 0x1161, 0x11A7
VOWELS, TRAILINGS = 21, 28
CODE_POINTS = 0x110000


@dataclasses.dataclass(frozen=True)
class NormalizationTables:
    """What NFC needs to know of each code point, as sorted arrays for `tf.searchsorted`.

    Attributes:
        combining: the code points with a non-zero canonical combining class, sorted; `classes` holds the classes.
        decomposable: the code points (Hangul aside) whose canonical decomposition differs from themselves, sorted;
            `decompositions` holds each one's full decomposition, padded with -1 to four code points.
        pairs: first x CODE_POINTS + second for every pair that composes to a primary composite, sorted;
            `composites` holds what each pair composes to.
        unstable: an RE2 character class of every code point NFC may change or combine with another.
        first_starter_second: the smallest starter that composes with a starter before it (Hangul jamo included).
        starter_rounds: how many times adjacent starters can compose in a chain (Hangul: L + V, then LV + T).
    """

    combining: np.ndarray
    classes: np.ndarray
    decomposable: np.ndarray
    decompositions: np.ndarray
    pairs: np.ndarray
    composites: np.ndarray
    unstable: str
    first_starter_second: int
    starter_rounds: int


@functools.cache
def normalization_tables() -> NormalizationTables:
    """The tables, from Python's unicodedata (about 0.1 s, once per process)."""
    classes, decompositions, pairs = {}, {}, {}
    last_with_data = 0x2FA1D  # No code point after the CJK compatibility ideographs decomposes or combines.
    for code_point in range(last_with_data + 1):
        character = chr(code_point)
        if unicodedata.combining(character):
            classes[code_point] = unicodedata.combining(character)
        mapping = unicodedata.decomposition(character)
        if mapping and not mapping.startswith("<") and not HANGUL_FIRST <= code_point < HANGUL_FIRST + HANGUL_COUNT:
            decompositions[code_point] = [ord(part) for part in unicodedata.normalize("NFD", character)]
            parts = [int(part, 16) for part in mapping.split()]
            # A primary composite: two code points that compose back (composition exclusions do not).
            if len(parts) == 2 and unicodedata.normalize("NFC", character) == character:
                pairs[parts[0] * CODE_POINTS + parts[1]] = code_point
    starter_pairs = {(key // CODE_POINTS, key % CODE_POINTS): value for key, value in pairs.items()
                     if key % CODE_POINTS not in classes}
    check_composition_assumptions(pairs, starter_pairs, classes)
    seconds = {key % CODE_POINTS for key in pairs}
    changing = [code_point for code_point in decompositions if not unicodedata.is_normalized("NFC", chr(code_point))]
    # Hangul vowel and trailing jamo compose with the jamo or syllable before them.
    jamo = set(range(VOWEL_FIRST, VOWEL_FIRST + VOWELS)) | set(range(TRAILING_BEFORE_FIRST + 1,
                                                                     TRAILING_BEFORE_FIRST + TRAILINGS))
    unstable = sorted(set(classes) | seconds | set(changing) | jamo)
    order = sorted(decompositions)
    pair_keys = sorted(pairs)
    return NormalizationTables(
        combining=np.array(sorted(classes), np.int32),
        classes=np.array([classes[code_point] for code_point in sorted(classes)], np.int32),
        decomposable=np.array(order, np.int32),
        decompositions=np.array([decompositions[code_point] + [-1] * (4 - len(decompositions[code_point]))
                                 for code_point in order], np.int32),
        pairs=np.array(pair_keys, np.int64),
        composites=np.array([pairs[key] for key in pair_keys], np.int32),
        unstable=character_class(unstable),
        first_starter_second=min([second for _, second in starter_pairs] + [VOWEL_FIRST]),
        starter_rounds=max(2, longest_starter_chain(starter_pairs)),
    )


def check_composition_assumptions(pairs: dict, starter_pairs: dict, classes: dict) -> None:
    """`composed` handles adjacent starters before the marks of each run; that is exact as long as no mark composes
    into a character that then composes with the starter after it, which holds for Unicode up to at least 15."""
    firsts = {first for first, _ in starter_pairs}
    marks_into_firsts = [value for key, value in pairs.items() if value in firsts and key % CODE_POINTS in classes]
    if marks_into_firsts:
        raise RuntimeError(f"this Unicode version composes marks into starters that compose further: {marks_into_firsts}")


def longest_starter_chain(starter_pairs: dict) -> int:
    """The most starter compositions in a row, each composite composing again with the next starter."""
    composes_further = {first for first, _ in starter_pairs}
    longest = 1
    for composite in starter_pairs.values():
        length = 1
        while composite in composes_further:
            composite = next(value for (first, _), value in starter_pairs.items() if first == composite)
            length += 1
        longest = max(longest, length)
    return longest


def character_class(code_points: list[int]) -> str:
    """An RE2 character class body matching exactly `code_points` (sorted), as ranges."""
    ranges, start = [], code_points[0]
    for previous, current in zip(code_points, code_points[1:] + [None]):
        if current != previous + 1:
            ranges.append(f"\\x{{{start:X}}}" + (f"-\\x{{{previous:X}}}" if previous > start else ""))
            start = current
    return "".join(ranges)


def nfc(lines: tf.Tensor) -> tf.Tensor:
    """Each string of `lines` (valid UTF-8, any shape) in Unicode Normalization Form C. Strings that NFC leaves
    alone are not decoded."""
    lines = tf.convert_to_tensor(lines, tf.string)
    return tf.reshape(nfc_of_vector(tf.reshape(lines, [-1])), tf.shape(lines))


@tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
def nfc_of_vector(lines: tf.Tensor) -> tf.Tensor:
    """`nfc` of a vector of strings, traced once per process (eager calls and every pipeline reuse the graph)."""
    tables = normalization_tables()
    changing = tf.where(~tf.strings.regex_full_match(lines, f"[^{tables.unstable}]*"))
    normalized = normalized_lines(tf.gather_nd(lines, changing), tables)
    return tf.tensor_scatter_nd_update(lines, changing, normalized)


def normalized_lines(lines: tf.Tensor, tables: NormalizationTables) -> tf.Tensor:
    code_points = tf.strings.unicode_decode(lines, "UTF-8")
    points, line_ids = decomposed(code_points.flat_values, code_points.value_rowids(), tables)
    classes = lookup_from(tables.combining, tables.classes, points, 0)
    points, line_ids, classes = canonically_ordered(points, line_ids, classes)
    points, line_ids, classes = starters_composed(points, line_ids, classes, tables)
    points, line_ids = marks_composed(points, line_ids, classes, tables)
    rows = tf.RaggedTensor.from_value_rowids(points, line_ids, nrows=tf.size(lines, out_type=tf.int64))
    return tf.strings.unicode_encode(rows, "UTF-8")


def lookup(keys: np.ndarray, values: np.ndarray, queries: tf.Tensor, missing: int) -> tf.Tensor:
    """values[i] for each query equal to keys[i] (keys sorted), `missing` for queries not among the keys."""
    last, keys = len(keys) - 1, tf.constant(keys)
    positions = tf.minimum(tf.searchsorted(keys, queries), last)
    found = tf.reshape(tf.gather(keys, positions) == queries, [-1] + [1] * (values.ndim - 1))
    return tf.where(found, tf.gather(tf.constant(values), positions), tf.constant(missing, values.dtype))


def lookup_from(keys: np.ndarray, values: np.ndarray, points: tf.Tensor, missing: int) -> tf.Tensor:
    """`lookup` of code points, searching only those at or above the smallest key (most text is below it)."""
    candidates = tf.where(points >= keys[0])
    found = lookup(keys, values, tf.gather_nd(points, candidates), missing)
    everything = tf.fill(tf.concat([tf.shape(points), values.shape[1:]], axis=0), tf.constant(missing, values.dtype))
    return tf.tensor_scatter_nd_update(everything, candidates, found)


def decomposed(points: tf.Tensor, line_ids: tf.Tensor, tables: NormalizationTables) -> tuple[tf.Tensor, tf.Tensor]:
    """Every code point replaced by its full canonical decomposition (up to four code points), in order."""
    parts = lookup_from(tables.decomposable, tables.decompositions, points, -1)
    parts = tf.where(parts[:, :1] >= 0, parts, tf.pad(points[:, None], [[0, 0], [0, 3]], constant_values=-1))
    syllable = points - HANGUL_FIRST
    trailing = syllable % TRAILINGS
    jamo = tf.stack([LEADING_FIRST + syllable // (VOWELS * TRAILINGS), VOWEL_FIRST + syllable % (VOWELS * TRAILINGS)
                     // TRAILINGS, tf.where(trailing > 0, TRAILING_BEFORE_FIRST + trailing, -1),
                     tf.fill(tf.shape(points), -1)], axis=1)
    is_syllable = (syllable >= 0) & (syllable < HANGUL_COUNT)
    parts = tf.where(is_syllable[:, None], jamo, parts)
    present = parts >= 0
    return tf.boolean_mask(parts, present), tf.boolean_mask(tf.repeat(line_ids[:, None], 4, axis=1), present)


def next_on_line(values: tf.Tensor, line_ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Each value's successor, and whether there is one on the same line."""
    last = tf.range(tf.size(line_ids)) == tf.size(line_ids) - 1
    return tf.roll(values, -1, axis=0), ~last & (tf.roll(line_ids, -1, axis=0) == line_ids)


def canonically_ordered(points: tf.Tensor, line_ids: tf.Tensor,
                        classes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Each run of combining marks sorted by combining class, marks of one class keeping their order (a run
    begins at each starter and at each line's start); sorted only if some mark is out of order."""
    next_class, has_next = next_on_line(classes, line_ids)
    runs = tf.cumsum(tf.cast(run_starts(line_ids, classes), tf.int64))

    def sorted_runs():
        order = tf.argsort(runs * 256 + tf.cast(classes, tf.int64), stable=True)
        return tf.gather(points, order), tf.gather(line_ids, order), tf.gather(classes, order)

    out_of_order = tf.reduce_any(has_next & (next_class > 0) & (classes > next_class))
    return tf.cond(out_of_order, sorted_runs, lambda: (points, line_ids, classes))


def run_starts(line_ids: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
    """Where a run begins: at each starter (combining class 0) and at each line's first code point."""
    new_line = tf.concat([tf.ones_like(line_ids[:1], tf.bool), line_ids[1:] != line_ids[:-1]], axis=0)
    return new_line | (classes == 0)


def composite_of(first: tf.Tensor, second: tf.Tensor, tables: NormalizationTables) -> tf.Tensor:
    """The primary composite of each (first, second) pair, or -1 where they do not compose."""
    keys = tf.cast(first, tf.int64) * CODE_POINTS + tf.cast(second, tf.int64)
    composite = lookup(tables.pairs, tables.composites, keys, -1)
    leading, vowel = first - LEADING_FIRST, second - VOWEL_FIRST
    syllable, trailing = first - HANGUL_FIRST, second - TRAILING_BEFORE_FIRST
    composite = tf.where((leading >= 0) & (leading < 19) & (vowel >= 0) & (vowel < VOWELS),
                         HANGUL_FIRST + (leading * VOWELS + vowel) * TRAILINGS, composite)
    is_lv = (syllable >= 0) & (syllable < HANGUL_COUNT) & (syllable % TRAILINGS == 0)
    return tf.where(is_lv & (trailing > 0) & (trailing < TRAILINGS), first + trailing, composite)


def starters_composed(points: tf.Tensor, line_ids: tf.Tensor, classes: tf.Tensor,
                      tables: NormalizationTables) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Adjacent starters composed (Hangul jamo, some Indic vowel signs). A code point that composes as the second
    of a pair never composes as a first, so the pairs of one round never overlap; a composite that composes again
    does so in the next round."""
    for _ in range(tables.starter_rounds):
        following, has_next = next_on_line(points, line_ids)
        next_class, _ = next_on_line(classes, line_ids)
        candidates = tf.where(has_next & (following >= tables.first_starter_second) & (classes == 0) & (next_class == 0))
        composite = composite_of(tf.gather_nd(points, candidates), tf.gather_nd(following, candidates), tables)
        joined = tf.boolean_mask(candidates, composite >= 0)
        points = tf.tensor_scatter_nd_update(points, joined, tf.boolean_mask(composite, composite >= 0))
        keep = tf.tensor_scatter_nd_update(tf.ones_like(points, tf.bool), joined + 1,
                                           tf.zeros(tf.shape(joined)[:1], tf.bool))
        points, line_ids, classes = (tf.boolean_mask(values, keep) for values in (points, line_ids, classes))
    return points, line_ids, classes


def marks_composed(points: tf.Tensor, line_ids: tf.Tensor, classes: tf.Tensor,
                   tables: NormalizationTables) -> tuple[tf.Tensor, tf.Tensor]:
    """Each run's starter composed with the marks after it, one mark position at a time for all runs at once: a
    mark composes unless an earlier mark of the run that stayed has a class at least its own (it is blocked)."""
    starts = tf.cast(tf.where(run_starts(line_ids, classes))[:, 0], tf.int32)
    lengths = tf.concat([starts[1:], tf.shape(points)], axis=0) - starts
    # Only runs of a starter and at least one mark can compose.
    with_marks = (lengths > 1) & (tf.gather(classes, starts) == 0)
    starts, lengths = tf.boolean_mask(starts, with_marks), tf.boolean_mask(lengths, with_marks)
    starter = tf.gather(points, starts)
    blocking = tf.zeros_like(starts)  # Per run: the highest class of the marks that stayed so far.
    kept = tf.ones_like(points, tf.bool)

    def compose_position(offset, starter, blocking, kept):
        active = lengths > offset
        positions = tf.where(active, starts + offset, 0)
        mark, mark_class = tf.gather(points, positions), tf.gather(classes, positions)
        composite = composite_of(starter, mark, tables)
        joins = active & (composite >= 0) & (blocking < mark_class)
        kept = tf.tensor_scatter_nd_update(kept, tf.boolean_mask(positions, joins)[:, None],
                                           tf.zeros(tf.reduce_sum(tf.cast(joins, tf.int32)), tf.bool))
        blocking = tf.where(active & ~joins, tf.maximum(blocking, mark_class), blocking)
        return offset + 1, tf.where(joins, composite, starter), blocking, kept

    longest = tf.reduce_max(tf.concat([lengths, [0]], axis=0))
    _, starter, _, kept = tf.while_loop(lambda offset, *_: offset < longest, compose_position,
                                        (tf.constant(1), starter, blocking, kept))
    points = tf.tensor_scatter_nd_update(points, starts[:, None], starter)
    return tf.boolean_mask(points, kept), tf.boolean_mask(line_ids, kept)
