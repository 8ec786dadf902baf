"""Tokenisation: lowercase, then split on a configurable separator pattern. One line in, one row of tokens out."""

import tensorflow as tf


def tokenize(lines: tf.Tensor, token_pattern: str) -> tf.RaggedTensor:
    """Splits a batch of lines into a ragged [lines, tokens] tensor of lowercase tokens.

    Invalid UTF-8 bytes become U+FFFD first, which no default token contains, so junk splits tokens
    instead of failing the pipeline.
    """
    text = tf.strings.unicode_transcode(lines, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, token_pattern, " ")
    return tf.strings.split(tf.strings.regex_replace(text, "\ufffd", " "))
