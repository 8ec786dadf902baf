"""Words stay whole in every script: the default pattern keeps combining marks and zero-width joiners inside words,
and standardisation (lowercase + NFC) makes a composed and a decomposed spelling one word."""

import unicodedata

import pytest
import tensorflow as tf

from config import TOKEN_PATTERN
from data_pipeline.normalization import nfc
from data_pipeline.tokenize import standardize, tokenize
from data_pipeline.vocabulary import build_vocabulary

ZWNJ, ACUTE = "\u200c", "\u0301"


def tokens(line: str) -> list[str]:
    return [token.decode("utf-8") for token in tokenize(tf.constant([line]), TOKEN_PATTERN).to_list()[0]]


@pytest.mark.parametrize("script, line, expected", [
    # Vowel signs (matras) and the virama are combining marks: the old pattern made five letters of these two words.
    ("Hindi", "हिन्दी भाषा", ["हिन्दी", "भाषा"]),
    ("Bengali", "বাংলা ভাষা", ["বাংলা", "ভাষা"]),
    # Tamil's two-part vowel sign ொ (U+0BCA) is kept composed, and the pulli (virama) stays in the word.
    ("Tamil", "தமிழ் மொழி", ["தமிழ்", "மொழி"]),
    # Thai writes no spaces between words: a run of Thai stays one token, its tone marks and vowels inside it.
    ("Thai", "ภาษาไทย ง่าย", ["ภาษาไทย", "ง่าย"]),
    # Persian's zero-width non-joiner sits inside words (می‌خواهم, "I want").
    ("Persian", f"می{ZWNJ}خواهم کتاب", [f"می{ZWNJ}خواهم", "کتاب"]),
    # Decomposed Latin: e + combining acute is composed to é, so both spellings are one word.
    ("decomposed Latin", f"Cafe{ACUTE} café", ["café", "café"]),
    # Vietnamese stacks two marks on one letter: ậ from a + dot below + circumflex.
    ("Vietnamese", "Tiê\u0301ng Vie\u0323\u0302t", ["tiếng", "việt"]),
    # Turkish İ lowercases to i and a combining dot above (Unicode's full case mapping), kept in the word.
    ("Turkish", "İstanbul", ["i\u0307stanbul"]),
    ("Greek", "ΟΔΟΣ Ωμέγα", ["οδος", "ωμέγα"]),
    ("Latin", "The King's horse, RUNS!", ["the", "king", "s", "horse", "runs"]),
])
def test_words_of_every_script_stay_whole(script, line, expected):
    assert tokens(line) == expected


def test_marks_and_joiners_outside_a_word_are_separators():
    # A mark after a space, a joiner at a word's end or a line's start or end: no token is a lone mark or joiner.
    assert tokens(f"{ACUTE}{ZWNJ}start a {ACUTE}b {ZWNJ}word{ZWNJ} end\u200d") == ["start", "a", "b", "word", "end"]
    assert tokens("👨\u200d👩 family") == ["family"]


def test_standardize_lowercases_and_composes():
    # É decomposed (E + acute) and composed (U+00C9) both become é (U+00E9); the Ångström sign becomes å.
    lines = tf.constant([f"E{ACUTE}", "\u00c9", "\u212b", "ΣΑΣ"])
    assert [line.decode("utf-8") for line in standardize(lines).numpy()] == ["\u00e9", "\u00e9", "\u00e5", "σας"]


def test_standardize_turns_invalid_bytes_into_the_replacement_character():
    assert standardize(tf.constant([b"ok\xffok"])).numpy().tolist() == ["ok\ufffdok".encode("utf-8")]


@pytest.mark.parametrize("text", [
    "a\u0302\u0323",  # Marks out of canonical order: reordered (dot below, class 220, first), then composed: ậ.
    "\u1100\u1161\u11a8",  # Hangul jamo compose to one syllable, 각.
    "\uac00\u11a8",  # A syllable and a trailing consonant, too.
    "\u0dd9\u0dcf\u0dca",  # Sinhala: two starters compose, then a mark onto the result (ෝ).
    "\u0cc6\u0cc2\u0cd5",  # Kannada: a chain of three starters (ೋ).
    "\u0915\u093c",  # Devanagari qa: a composition exclusion, so NFC keeps it decomposed.
    "e\u0301\u0301",  # The second acute is blocked by the first: é and a lone acute.
    "\u0344",  # Greek dialytika tonos decomposes for good.
])
def test_nfc_agrees_with_pythons_unicodedata(text):
    assert nfc(tf.constant([text])).numpy()[0].decode("utf-8") == unicodedata.normalize("NFC", text)


def test_the_vocabulary_counts_both_spellings_as_one_word():
    lines = tf.data.Dataset.from_tensor_slices([f"cafe{ACUTE} au lait", "café noir", "CAFÉ"])
    vocabulary = build_vocabulary(lines, TOKEN_PATTERN, min_count=1)
    assert dict(zip(vocabulary.words, vocabulary.counts))["café"] == 3
