"""The evaluation package: analogies, word-pair correlations and neighbours, worked by hand on tiny vectors and
cross-checked against gensim's own evaluate_word_analogies / evaluate_word_pairs on the same vectors."""

import json
import math
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from conftest import run_script, tiny_flags

from errors import UserError
from evaluation.analogies import evaluate_analogies
from evaluation.data_files import ANALOGIES, SIMLEX999, WORDSIM353, gensim_test_data
from evaluation.neighbours import nearest_neighbours
from evaluation.similarity import average_ranks, evaluate_word_pairs
from evaluation.vectors import WordVectors, load_model_directory, load_word2vec_text

SQRT_HALF = math.sqrt(0.5)


def word_vectors(**rows: tuple[float, ...]) -> WordVectors:
    """Vectors in the order given: the first word is the most frequent."""
    return WordVectors(tuple(rows), np.array(list(rows.values()), dtype=np.float32))


def write(path: pathlib.Path, *lines: str) -> pathlib.Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# Three axes: gender (man -> woman) and royalty (+ the third axis). As unit vectors, king = (1, 0, 1)/sqrt 2 and
# queen = (0, 1, 1)/sqrt 2. For "man is to woman as king is to ?" the target is
# woman - man + king = (-0.293, 1, 0.707), and its dot products are: queen (0 + 1 + 0.707)·0.707 = 1.207,
# woman 1, king 0.293, man -0.293, girl = (0, 1, -1)/sqrt 2: (1 - 0.707)·0.707 = 0.207, prince = (0, 0, -1): -0.707.
ROYAL = {"man": (1, 0, 0), "woman": (0, 1, 0), "king": (1, 0, 1), "queen": (0, 1, 1), "prince": (0, 0, -1)}


def test_analogies_are_answered_by_3cosadd_and_scored_per_section(tmp_path):
    questions = write(tmp_path / "questions.txt",
                      ": royal",
                      "man woman king queen",  # queen (1.207) is the nearest word that is not a question word: right
                      "man woman king prince",  # queen again: wrong
                      "not four words",  # skipped, as gensim skips it: not a question
                      ": unknown",
                      "man woman king emperor")  # emperor is not in the vocabulary: skipped, counted
    result = evaluate_analogies(word_vectors(**ROYAL), questions)
    assert [(section.name, section.correct, section.scored) for section in result.sections] == [
        ("royal", 1, 2), ("unknown", 0, 0)]
    assert (result.correct, result.scored, result.questions, result.skipped) == (1, 2, 3, 1)
    assert result.accuracy == 0.5


def test_the_question_words_are_never_the_answer(tmp_path):
    # Without queen, woman (1) would be nearest, but it is a question word: girl (0.207) is the answer.
    vectors = word_vectors(man=(1, 0, 0), woman=(0, 1, 0), king=(1, 0, 1), girl=(0, 1, -1))
    result = evaluate_analogies(vectors, write(tmp_path / "questions.txt", ": s", "man woman king girl"))
    assert result.correct == 1


def test_restrict_vocab_skips_questions_beyond_it_and_never_answers_with_those_words(tmp_path):
    vectors = word_vectors(man=(1, 0, 0), woman=(0, 1, 0), king=(1, 0, 1), girl=(0, 1, -1), queen=(0, 1, 1))
    questions = write(tmp_path / "questions.txt", ": s", "man woman king girl", "man woman king queen")
    # All five words searched: queen (1.207) beats girl (0.207): one right (queen), one wrong (girl).
    everything = evaluate_analogies(vectors, questions, restrict_vocab=5)
    assert (everything.correct, everything.scored) == (1, 2)
    # The first four only: the queen question is skipped, and girl is now the answer.
    four = evaluate_analogies(vectors, questions, restrict_vocab=4)
    assert (four.correct, four.scored, four.skipped) == (1, 1, 1)


def test_words_match_whatever_their_case_and_other_spellings_of_question_words_are_passed_over(tmp_path):
    # "Woman", a rarer spelling, points exactly where woman does (1, the best score after the question words
    # themselves): gensim passes over it because its upper-cased form is a question word; girl (0.207) answers.
    vectors = word_vectors(man=(1, 0, 0), woman=(0, 1, 0), king=(1, 0, 1), girl=(0, 1, -1), Woman=(0, 1, 0))
    result = evaluate_analogies(vectors, write(tmp_path / "questions.txt", ": s", "MAN Woman king GIRL"))
    assert (result.correct, result.scored) == (1, 1)
    # Looked up exactly, "MAN" is not a word of the vocabulary.
    assert evaluate_analogies(vectors, tmp_path / "questions.txt", exact_lookup=True).skipped == 1


def test_words_are_matched_as_training_standardises_them_in_any_script(tmp_path):
    # Lowercased as training lowercases: "ΣΟΦΙΑ" is σοφια, "École" is école.
    vectors = word_vectors(σοφια=(1, 0), école=(1, 1), maison=(0, 1))
    pairs = write(tmp_path / "pairs.tsv", "ΣΟΦΙΑ\tÉcole\t5", "École\tMAISON\t4", "σοφια\tmaison\t1")
    assert evaluate_word_pairs(vectors, pairs).pairs == 3
    assert evaluate_word_pairs(vectors, pairs, exact_lookup=True).pairs == 1  # Only σοφια and maison, as given.
    neighbours = nearest_neighbours(vectors, ["ΣΟΦΙΑ"], count=1)
    assert neighbours["ΣΟΦΙΑ"][0][0] == "école"
    assert nearest_neighbours(vectors, ["ΣΟΦΙΑ"], count=1, exact_lookup=True)["ΣΟΦΙΑ"] is None


def synthetic_analogies(directory: pathlib.Path, seed: int = 0) -> tuple[WordVectors, pathlib.Path]:
    """Two relations (x -> x + offset + noise) over 25 word pairs each, other spellings of 10 words placed
    near them, 40 unrelated words, and 160 questions some of whose words are upper-cased. The noise makes
    about half of the answers right, so that the comparison with gensim is not all-right or all-wrong."""
    rng = np.random.default_rng(seed)
    dim, pairs = 16, 25
    words, rows = [], []
    for section in ("capitals", "plurals"):
        offset = rng.normal(size=dim)
        for index in range(pairs):
            base = rng.normal(size=dim)
            words += [f"{section}{index}", f"{section}{index}x"]
            rows += [base, base + offset + rng.normal(size=dim)]
    order = rng.permutation(len(words))
    words, rows = [words[index] for index in order], [rows[index] for index in order]
    for index in rng.choice(len(words), 10, replace=False):
        words.append(words[index].upper() if index % 2 else words[index].capitalize())
        rows.append(rows[index] + 0.2 * rng.normal(size=dim))
    words += [f"other{index}" for index in range(40)]
    rows += list(rng.normal(size=(40, dim)))
    lines = []
    for section in ("capitals", "plurals"):
        lines.append(f": {section}")
        for _ in range(80):
            first, second = rng.choice(pairs, 2, replace=False)
            question = [f"{section}{first}", f"{section}{first}x", f"{section}{second}", f"{section}{second}x"]
            lines.append(" ".join(word.upper() if rng.random() < 0.2 else word for word in question))
    return WordVectors(tuple(words), np.array(rows, dtype=np.float32)), write(directory / "questions.txt", *lines)


def gensim_keyed_vectors(vectors: WordVectors):
    models = pytest.importorskip("gensim.models")
    keyed_vectors = models.KeyedVectors(vectors.dim)
    keyed_vectors.add_vectors(list(vectors.words), vectors.matrix)
    return keyed_vectors


@pytest.mark.parametrize("restrict_vocab", [None, 80, 60])
def test_analogy_scores_equal_gensims_on_the_same_vectors(tmp_path, restrict_vocab):
    vectors, questions = synthetic_analogies(tmp_path)
    ours = evaluate_analogies(vectors, questions, restrict_vocab)
    total, sections = gensim_keyed_vectors(vectors).evaluate_word_analogies(str(questions), restrict_vocab or 300000)
    assert 0.2 < ours.accuracy < 0.9
    assert ours.accuracy == pytest.approx(total, abs=1e-6)
    assert [(section.name, section.correct, section.scored) for section in ours.sections] == [
        (section["section"], len(section["correct"]), len(section["correct"]) + len(section["incorrect"]))
        for section in sections[:-1]]


def words_of_the_standard_files() -> list[str]:
    words = set()
    for line in gensim_test_data(ANALOGIES).read_text(encoding="utf-8").splitlines():
        if not line.startswith(":"):
            words.update(word.lower() for word in line.split())
    for name in (WORDSIM353, SIMLEX999):
        for line in gensim_test_data(name).read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                words.update(word.lower() for word in line.split("\t")[:2])
    return sorted(words)


@pytest.fixture(scope="module")
def standard_file_vectors() -> WordVectors:
    """Random vectors for 90% of the words of gensim's three files, in a shuffled frequency order, plus rarer
    other spellings of a few, so that out-of-vocabulary pairs, case matching and restrict_vocab all occur."""
    pytest.importorskip("gensim")
    rng = np.random.default_rng(1)
    words = words_of_the_standard_files()
    rng.shuffle(words)
    words = words[: int(0.9 * len(words))] + ["Jerusalem", "TIGER", "Paris"]
    return WordVectors(tuple(words), rng.normal(size=(len(words), 20)).astype(np.float32))


def test_analogy_scores_on_questions_words_equal_gensims(standard_file_vectors):
    path = gensim_test_data(ANALOGIES)
    ours = evaluate_analogies(standard_file_vectors, path, restrict_vocab=1500)
    keyed_vectors = gensim_keyed_vectors(standard_file_vectors)
    total, sections = keyed_vectors.evaluate_word_analogies(str(path), restrict_vocab=1500)
    assert ours.questions == 19544 and 0 < ours.skipped < ours.questions
    assert ours.accuracy == pytest.approx(total, abs=1e-6)
    assert [(section.correct, section.scored) for section in ours.sections] == [
        (len(section["correct"]), len(section["correct"]) + len(section["incorrect"])) for section in sections[:-1]]


@pytest.mark.parametrize("name", [WORDSIM353, SIMLEX999])
@pytest.mark.parametrize("restrict_vocab", [300000, 1200])
def test_word_pair_correlations_equal_gensims(standard_file_vectors, name, restrict_vocab):
    path = gensim_test_data(name)
    ours = evaluate_word_pairs(standard_file_vectors, path, restrict_vocab)
    pearson, spearman, oov_percent = gensim_keyed_vectors(standard_file_vectors).evaluate_word_pairs(
        str(path), restrict_vocab=restrict_vocab)
    assert ours.spearman == pytest.approx(spearman[0], abs=1e-6)
    assert ours.pearson == pytest.approx(pearson[0], abs=1e-6)
    assert 100 * ours.out_of_vocabulary / (ours.pairs + ours.out_of_vocabulary) == pytest.approx(oov_percent)
    assert ours.out_of_vocabulary > 0


def test_word_pair_correlations_by_hand(tmp_path):
    vectors = word_vectors(a=(1, 0), b=(2, 0), c=(0, 1), d=(-1, 0))
    pairs = write(tmp_path / "pairs.tsv",
                  "# Word 1\tWord 2\tHuman (mean)",  # a comment
                  "a\tb\t10",  # cosine 1
                  "A\tc\t5",  # cosine 0 (A is a)
                  "a\td\t0",  # cosine -1
                  "c\td\t8",  # cosine 0
                  "a\tzebra\t3",  # zebra is not in the vocabulary: left out, counted
                  "a\tb")  # not three fields: skipped
    result = evaluate_word_pairs(vectors, pairs)
    # Human scores 10 5 0 8 rank 4 2 1 3; cosines 1 0 -1 0 rank 4 2.5 1 2.5 (a tie). Centred: (1.5, -0.5, -1.5, 0.5)
    # and (1.5, 0, -1.5, 0): Spearman = 4.5 / sqrt(5 · 4.5) = sqrt(0.9).
    assert result.spearman == pytest.approx(math.sqrt(0.9))
    # Pearson on the values: centred human (4.25, -0.75, -5.75, 2.25), cosines (1, 0, -1, 0): 10 / sqrt(56.75 · 2).
    assert result.pearson == pytest.approx(10 / math.sqrt(113.5))
    assert (result.pairs, result.out_of_vocabulary) == (4, 1)


def test_tied_values_share_the_mean_of_their_ranks():
    # Sorted: 1 (rank 1), then 3, 3, 3 (ranks 2, 3, 4: each 3), then 7 (rank 5).
    np.testing.assert_array_equal(average_ranks(np.array([3.0, 7.0, 3.0, 1.0, 3.0])), [3, 5, 3, 1, 3])


def test_nearest_neighbours_by_cosine_without_the_word_itself():
    vectors = word_vectors(east=(1, 0), north=(0, 1), northeast=(1, 1), west=(-1, 0))
    neighbours = nearest_neighbours(vectors, ["east", "EAST", "nowhere"], count=2)
    # From east: northeast cos 45° = 0.707, north 0, west -1.
    assert [word for word, _ in neighbours["east"]] == ["northeast", "north"]
    assert neighbours["east"][0][1] == pytest.approx(SQRT_HALF, abs=1e-6)
    assert neighbours["EAST"] == neighbours["east"] and neighbours["nowhere"] is None


@pytest.mark.parametrize("separator", ["\u2028", "\u0085", "\x1c", "\x1d", "\x1e", "\u2029", "\x0b"])
def test_a_word_holding_a_character_that_splitlines_splits_on_reads_back_whole(tmp_path, separator):
    # A custom --token-pattern can leave such a character inside a word; gensim splits lines on "\n" only.
    words = ("king", f"a{separator}b", "queen")
    vectors = WordVectors(words, np.arange(6, dtype=np.float32).reshape(3, 2))
    path = tmp_path / "vectors.txt"
    path.write_bytes("".join(["3 2\n", *(f"{word} {x:g} {y:g}\n" for word, (x, y) in zip(words, vectors.matrix))])
                     .encode("utf-8"))
    read = load_word2vec_text(path)
    assert read.words == words
    np.testing.assert_array_equal(read.matrix, vectors.matrix)
    gensim = pytest.importorskip("gensim.models").KeyedVectors.load_word2vec_format(str(path), binary=False)
    assert tuple(gensim.index_to_key) == read.words


def test_a_word2vec_text_file_with_windows_line_ends_reads_the_same(tmp_path):
    write(tmp_path / "unix.txt", "2 2", "king 1 0", "queen 0 1")
    (tmp_path / "windows.txt").write_bytes((tmp_path / "unix.txt").read_bytes().replace(b"\n", b"\r\n"))
    unix, windows = load_word2vec_text(tmp_path / "unix.txt"), load_word2vec_text(tmp_path / "windows.txt")
    assert unix.words == windows.words == ("king", "queen")
    np.testing.assert_array_equal(unix.matrix, windows.matrix)


def test_a_word2vec_text_file_written_by_gensim_reads_back_the_same(tmp_path):
    vectors = word_vectors(**ROYAL)
    gensim_keyed_vectors(vectors).save_word2vec_format(str(tmp_path / "vectors.txt"), binary=False)
    read = load_word2vec_text(tmp_path / "vectors.txt")
    assert read.words == vectors.words
    np.testing.assert_allclose(read.matrix, vectors.matrix)


@pytest.mark.parametrize("text, message", [
    ("3 2\nman 1 0\n", "promises 3 vectors"),
    ("man 1 0\n", "first line should be"),
    ("1 2\nman 1 zero\n", "not a number"),
])
def test_a_broken_vectors_file_is_a_user_error(tmp_path, text, message):
    write(tmp_path / "vectors.txt", text)
    with pytest.raises(UserError, match=message):
        load_word2vec_text(tmp_path / "vectors.txt")


def test_broken_evaluation_files_are_user_errors(tmp_path):
    vectors = word_vectors(**ROYAL)
    with pytest.raises(UserError, match="before the first ': section' line"):
        evaluate_analogies(vectors, write(tmp_path / "questions.txt", "man woman king queen"))
    with pytest.raises(UserError, match="holds no analogy questions"):
        evaluate_analogies(vectors, write(tmp_path / "questions.txt", ": empty"))
    with pytest.raises(UserError, match="holds no word pairs"):
        evaluate_word_pairs(vectors, write(tmp_path / "pairs.tsv", "# only a comment", "man,woman,3"))
    with pytest.raises(UserError, match="cannot read"):
        evaluate_word_pairs(vectors, tmp_path / "missing.tsv")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> pathlib.Path:
    """A model directory trained by train.py on the tiny topic corpus (dim 2, one epoch)."""
    from conftest import TOPIC_LINES

    directory = tmp_path_factory.mktemp("tiny_model")
    corpus = write(directory / "tiny.txt", *TOPIC_LINES * 25)
    result = run_script("train.py", *tiny_flags(corpus, directory / "model"))
    assert result.returncode == 0, result.stderr
    return directory / "model"


def test_vectors_of_a_model_directory_are_e_from_its_latest_checkpoint_in_vocabulary_order(tiny_model):
    vectors = load_model_directory(tiny_model)
    latest = tf.train.latest_checkpoint(str(tiny_model / "checkpoints"))
    np.testing.assert_array_equal(vectors.matrix, tf.train.load_variable(latest, "E/.ATTRIBUTES/VARIABLE_VALUE"))
    rows = (tiny_model / "vocab.tsv").read_text().splitlines()[1:]
    assert list(vectors.words) == [row.split("\t")[0] for row in rows]


def test_evaluate_py_scores_a_trained_model_and_writes_json(tiny_model, tmp_path):
    questions = write(tmp_path / "questions.txt", ": royal", "king queen cat dog", "king queen unicorn dog")
    pairs = write(tmp_path / "pairs.tsv", "king\tqueen\t9", "cat\tdog\t8", "king\tdog\t1", "king\tunicorn\t2")
    result = run_script("evaluate.py", "--model-dir", str(tiny_model), "--analogies", str(questions),
                        "--similarity", str(pairs), "--neighbours", "king", "unicorn", "--top", "3",
                        "--json", str(tmp_path / "scores.json"))
    assert result.returncode == 0, result.stderr
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert (scores["words"], scores["dim"]) == (19, 2)
    analogies = scores["analogies"]
    assert (analogies["questions"], analogies["skipped"], analogies["scored"]) == (2, 1, 1)
    assert (scores["similarity"][0]["pairs"], scores["similarity"][0]["out_of_vocabulary"]) == (3, 1)
    assert len(scores["neighbours"]["king"]) == 3 and scores["neighbours"]["unicorn"] is None
    assert "royal" in result.stdout and "unicorn: (not in the vocabulary)" in result.stdout


def test_evaluate_py_runs_the_standard_files_by_default(tmp_path):
    pytest.importorskip("gensim")
    vectors = word_vectors(**ROYAL)
    gensim_keyed_vectors(vectors).save_word2vec_format(str(tmp_path / "vectors.txt"), binary=False)
    result = run_script("evaluate.py", "--vectors", str(tmp_path / "vectors.txt"))
    assert result.returncode == 0, result.stderr
    assert "questions-words.txt" in result.stdout and "capital-common-countries" in result.stdout
    assert "wordsim353.tsv: Spearman" in result.stdout and "simlex999.txt: Spearman" in result.stdout


def test_evaluate_py_on_a_directory_without_a_model_is_a_one_line_error(tmp_path):
    result = run_script("evaluate.py", "--model-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "no trained model" in result.stderr
    assert "Traceback" not in result.stderr


def test_evaluate_py_json_has_every_key_with_null_for_what_was_not_asked(tiny_model, tmp_path):
    result = run_script("evaluate.py", "--model-dir", str(tiny_model), "--neighbours", "King", "--top", "2",
                        "--json", str(tmp_path / "scores.json"))
    assert result.returncode == 0, result.stderr
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert list(scores) == ["vectors", "words", "dim", "lookup", "analogies", "similarity", "neighbours"]
    assert (scores["lookup"], scores["analogies"], scores["similarity"]) == ("standardized", None, None)
    assert len(scores["neighbours"]["King"]) == 2  # King standardised to king, as in training.
    exact = run_script("evaluate.py", "--model-dir", str(tiny_model), "--neighbours", "King", "--exact-lookup",
                       "--json", str(tmp_path / "exact.json"))
    assert exact.returncode == 0, exact.stderr
    assert json.loads((tmp_path / "exact.json").read_text())["neighbours"] == {"King": None}
    assert "King: (not in the vocabulary)" in exact.stdout


def test_a_restrict_vocab_above_the_vocabulary_is_reported_as_clipped_to_it(tiny_model, tmp_path):
    questions = write(tmp_path / "questions.txt", ": royal", "king queen cat dog")
    result = run_script("evaluate.py", "--model-dir", str(tiny_model), "--analogies", str(questions),
                        "--restrict-vocab", "50000", "--json", str(tmp_path / "scores.json"))
    assert result.returncode == 0, result.stderr
    # The tiny model has 19 words.
    assert "note: --restrict-vocab 50,000 is more than the 19 words there are: searching all 19" in result.stdout
    assert "(3CosAdd, 19 words searched)" in result.stdout
    assert json.loads((tmp_path / "scores.json").read_text())["analogies"]["restrict_vocab"] == 19
