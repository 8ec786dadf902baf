"""Tokenisation: standardise (valid UTF-8, lowercase, NFC), then split on a configurable separator pattern. One
line in, one row of tokens out.

`standardize` is the one place that decides which spellings are the same word. Training applies it to every line;
the export's signatures, the Keras layer and evaluate.py apply it to the words they look up, so raw text finds
the vectors training made.
"""

import tensorflow as tf

from data_pipeline.normalization import nfc


def standardize(text: tf.Tensor) -> tf.Tensor:
    """Text of any shape as training sees it before splitting: invalid UTF-8 bytes become U+FFFD, then lowercase
    (Unicode's full case mapping, as Python's str.lower), then Unicode NFC, so that a composed and a decomposed
    spelling of a word (`é` as one code point or as `e` and a combining accent) are the same string.

    Invalid bytes become U+FFFD, which no default token contains, so junk splits tokens (see `tokenize`)
    instead of failing the pipeline. Standardising twice changes nothing, so a vocabulary word standardises
    to itself.
    """
    text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
    return nfc(tf.strings.lower(text, encoding="utf-8"))


def tokenize(lines: tf.Tensor, token_pattern: str) -> tf.RaggedTensor:
    """Splits a batch of lines into a ragged [lines, tokens] tensor of standardised tokens."""
    text = tf.strings.regex_replace(standardize(lines), token_pattern, " ")
    return tf.strings.split(tf.strings.regex_replace(text, "\ufffd", " "))


# A surrogate code point never comes out of decoding valid UTF-8, so it marks exactly the replaced bytes.
INVALID_MARK = 0xD800


def non_text_bytes(lines: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per line, int64 [lines]: the bytes that are not valid UTF-8 (which `tokenize` reads as separators), and
    the control characters that text files do not hold (NUL, ..., DEL but not tab, newline, form feed, return).

    Invalid bytes are a line's bytes minus the UTF-8 lengths of the code points that decoded cleanly.
    """
    code_points = tf.strings.unicode_decode(lines, "UTF-8", errors="replace", replacement_char=INVALID_MARK)
    points = code_points.flat_values
    lengths = 1 + sum(tf.cast(points >= start, tf.int64) for start in (0x80, 0x800, 0x10000))
    lengths = tf.where(points == INVALID_MARK, tf.zeros_like(lengths), lengths)
    invalid = tf.cast(tf.strings.length(lines), tf.int64) - tf.reduce_sum(code_points.with_flat_values(lengths), axis=1)
    is_control = ((points < 0x20) & ((points < 0x09) | (points > 0x0D))) | (points == 0x7F)
    control = tf.reduce_sum(code_points.with_flat_values(tf.cast(is_control, tf.int64)), axis=1)
    return invalid, control


def chunk_non_text_bytes(lines: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`non_text_bytes` summed over a chunk of lines, int64 scalars, at a fraction of its cost for ASCII text.

    A byte below 0x80 is one ASCII character whether or not the bytes around it are valid UTF-8, so the control
    characters are counted on the raw bytes; only a chunk holding a byte of 0x80 or more is decoded, to count the
    invalid ones. Decoding every code point was as slow as tokenising the chunk.
    """
    raw = tf.io.decode_raw(tf.strings.reduce_join(lines), tf.uint8)
    is_control = ((raw < 0x20) & ((raw < 0x09) | (raw > 0x0D))) | (raw == 0x7F)
    control = tf.reduce_sum(tf.cast(is_control, tf.int64))
    invalid = tf.cond(tf.reduce_any(raw >= 0x80), lambda: tf.reduce_sum(non_text_bytes(lines)[0]),
                      lambda: tf.constant(0, tf.int64))
    return invalid, control
