"""TensorBoard as a user opens it: a real `tensorboard` server on a tiny run's logs, its plugins read over HTTP,
and the projector page looked at in a real headless Chromium."""

import contextlib
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, TOPIC_LINES, run_script, tiny_flags

from config import Config
from data_pipeline.vocabulary import Vocabulary
from training.tensorboard import PROJECTED_TENSOR, TrainingLog, neighbours_markdown, projector_metadata, visible_label

PROJECTED_ROWS = 12
ARTIFACTS = ROOT / "test-artifacts"


# --- The files, written and read back in-process ---


def test_special_tokens_get_visible_labels():
    assert [visible_label(word) for word in ["king", "", " ", "a\tb", "a\nb"]] == [
        "king", "<empty>", "<space>", "a\\tb", "a\\nb"]


def test_metadata_has_a_header_and_one_line_per_projected_row_in_id_order():
    vocabulary = Vocabulary(("the", "king", "queen"), (5, 3, 2))
    assert projector_metadata(vocabulary, range(2)) == "word\tcount\nthe\t5\nking\t3\n"


def test_neighbours_table_ranks_by_cosine_and_names_missing_probe_words():
    vocabulary = Vocabulary(("king", "queen", "dog"), (3, 2, 1))
    # cos(king, queen) = (1*2 + 0*1) / (1 * sqrt(5)) = 0.89; cos(king, dog) = (1*-1) / (1 * 1) = -1.00.
    embeddings = tf.constant([[1.0, 0.0], [2.0, 1.0], [-1.0, 0.0]])
    table = neighbours_markdown(embeddings, vocabulary, ["king", "horse"], k=2)
    assert table.splitlines()[2:] == ["| king | queen 0.89, dog -1.00 |", "| horse | (not in the vocabulary) |"]


def test_each_snapshot_replaces_the_projected_rows_and_keeps_one_checkpoint(tmp_path):
    vocabulary = Vocabulary(("the", "king", "queen"), (5, 3, 2))
    config = Config()
    config.model.embedding_dim, config.training.projector_rows = 2, 2
    log = TrainingLog(tmp_path, vocabulary, config)
    first, second = np.arange(6, dtype=np.float32).reshape(3, 2), -np.arange(6, dtype=np.float32).reshape(3, 2)
    log.snapshot(1, tf.constant(first))
    log.snapshot(2, tf.constant(second))
    log.close()
    run = tmp_path / "train"
    assert sorted(path.name for path in run.glob("embedding-*.index")) == ["embedding-2.index"]
    np.testing.assert_array_equal(tf.train.load_variable(str(run / "embedding-2"), PROJECTED_TENSOR), second[:2])


def test_projector_rows_outside_the_plugins_range_is_refused_before_training(tiny_corpus, tmp_path):
    result = run_script("train.py", *tiny_flags(tiny_corpus, tmp_path / "model"), "--projector-rows", "0")
    assert result.returncode == 2
    assert "argument --projector-rows: must be a whole number from 1 to 100,000, not '0'" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "model").exists()


# --- A real TensorBoard on the logs of a tiny training run ---


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def fetch_json(url: str):
    return json.loads(fetch(url))


@contextlib.contextmanager
def tensorboard_serving(log_dir: pathlib.Path):
    """The real `tensorboard` command serving `log_dir`, once its scalars list the run's loss: yields its URL."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(log_dir), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, f"tensorboard exited: {server.stdout.read()}"
            try:
                if fetch_json(f"{base_url}/data/plugin/scalars/tags").get("train", {}).get("loss") is not None:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "tensorboard did not serve the run within 90 s"
            time.sleep(0.5)
        yield base_url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def served_run(tmp_path_factory):
    """Trains 3 epochs on the two-topic corpus (dim 8 so PCA has 3 components to show; batches of 16 so the
    loss is logged ~16 times), then serves model_dir/logs with the real `tensorboard` command."""
    work = tmp_path_factory.mktemp("tensorboard")
    corpus, model_dir = work / "tiny.txt", work / "model"
    corpus.write_text("\n".join(TOPIC_LINES * 25) + "\n", encoding="utf-8")
    # A high learning rate: with W starting at zero, word2vec needs many steps at 0.025 before the loss moves.
    flags = tiny_flags(corpus, model_dir, "--dim", "8", "--batch-size", "16", "--epochs", "3", "--log-every", "2",
                       "--learning-rate", "0.5",
                       "--projector-rows", str(PROJECTED_ROWS))
    trained = run_script("train.py", *flags)
    assert trained.returncode == 0, trained.stderr
    with tensorboard_serving(model_dir / "logs") as base_url:
        yield model_dir, base_url


def projector_url(base_url: str, route: str, **query: str) -> str:
    return f"{base_url}/data/plugin/projector/{route}?{urllib.parse.urlencode({'run': 'train', **query})}"


def training_embeddings(model_dir: pathlib.Path) -> np.ndarray:
    latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    return tf.train.load_variable(latest, "E/.ATTRIBUTES/VARIABLE_VALUE")


def test_projector_lists_the_run(served_run):
    _, base_url = served_run
    assert fetch_json(f"{base_url}/data/plugin/projector/runs") == ["train"]


def test_projector_info_reports_only_e_capped_to_the_projected_rows(served_run):
    _, base_url = served_run
    # 19 words in the vocabulary, --projector-rows 12, --dim 8. W and the optimizer's slots (also V x D) are
    # not listed: the training checkpoint lives outside the log directory.
    embeddings = fetch_json(projector_url(base_url, "info"))["embeddings"]
    assert [(embedding["tensorName"], embedding["tensorShape"]) for embedding in embeddings] == [
        ("E", [PROJECTED_ROWS, 8])]  # The plain name, not the object-based checkpoint's E/.ATTRIBUTES/VARIABLE_VALUE.


def test_projector_tensor_bytes_are_the_first_rows_of_e_in_the_training_checkpoint(served_run):
    model_dir, base_url = served_run
    served = fetch(projector_url(base_url, "tensor", name=PROJECTED_TENSOR))
    assert served == training_embeddings(model_dir)[:PROJECTED_ROWS].astype(np.float32).tobytes()


def test_projector_metadata_labels_each_row_with_its_word_most_frequent_first(served_run):
    model_dir, base_url = served_run
    lines = fetch(projector_url(base_url, "metadata", name=PROJECTED_TENSOR)).decode("utf-8").splitlines()
    vocabulary = (model_dir / "vocab.tsv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == PROJECTED_ROWS + 1
    assert lines == vocabulary[: PROJECTED_ROWS + 1]
    # the (200 times), then a, and (100 each, ties alphabetical), in (75), ...
    assert lines[:4] == ["word\tcount", "the\t200", "a\t100", "and\t100"]


def scalar_series(base_url: str, tag: str) -> list[tuple[int, float]]:
    query = urllib.parse.urlencode({"run": "train", "tag": tag})
    return [(step, value) for _, step, value in fetch_json(f"{base_url}/data/plugin/scalars/scalars?{query}")]


def test_the_loss_series_falls_on_a_learnable_corpus(served_run):
    _, base_url = served_run
    losses = [value for _, value in scalar_series(base_url, "loss")]
    assert len(losses) >= 10
    # W starts at zero, so every logit is 0 and each pair costs -log sigmoid(0) for its context word plus the same
    # for each of its 5 noise words: 6 * ln 2 = 4.159 at the start. The first point is logged after two steps,
    # so it is already at or below that.
    assert 3.5 < losses[0] <= 6 * np.log(2) + 0.01
    assert losses[-1] < losses[0] - 0.1
    assert np.mean(losses[-3:]) < np.mean(losses[:3])


def test_learning_rate_words_per_second_and_one_epoch_summary_per_epoch(served_run):
    model_dir, base_url = served_run
    rates = [value for _, value in scalar_series(base_url, "learning_rate")]
    assert rates[0] <= 0.5 and rates == sorted(rates, reverse=True)
    assert all(value > 0 for _, value in scalar_series(base_url, "words_per_second"))
    epochs = scalar_series(base_url, "epoch/number")
    assert [value for _, value in epochs] == [1.0, 2.0, 3.0]
    # The last epoch ends at the step of the final training checkpoint.
    final_step = int(tf.train.load_variable(tf.train.latest_checkpoint(str(model_dir / "checkpoints")),
                                            "progress/step/.ATTRIBUTES/VARIABLE_VALUE"))
    assert epochs[-1][0] == final_step
    assert len(scalar_series(base_url, "epoch/mean_loss")) == 3


def test_text_tab_shows_the_probe_words_neighbours_after_each_epoch(served_run):
    _, base_url = served_run
    query = urllib.parse.urlencode({"run": "train", "tag": "nearest_neighbours"})
    entries = fetch_json(f"{base_url}/data/plugin/text/text?{query}")
    assert len(entries) == 3
    # Of the default probe words only "king" is in the two-topic corpus; its row lists 8 neighbours.
    last = entries[-1]["text"]
    king_row = re.search(r"<td>king</td>\s*<td>([^<]*)</td>", last).group(1)
    assert len(king_row.split(", ")) == 8
    assert "water, music, horse" in last and "not in the vocabulary" in last


# --- A short run as a new user's first one: the default --log-every, evaluation files, --keep-best ---

SHORT_RUN_STEPS = 20


@pytest.fixture(scope="module")
def served_short_run(tmp_path_factory):
    """About 20 steps: epochs of 9 batches of 512 pairs (no subsampling), stopped by --max-steps 20 inside the
    third, with the default --log-every of 200 so that no interval ever logs the loss; an analogy file, a
    word-pairs file, --keep-best on the latter, and a probe word missing from the vocabulary."""
    work = tmp_path_factory.mktemp("short-run")
    corpus, model_dir = work / "tiny.txt", work / "model"
    corpus.write_text("\n".join(TOPIC_LINES * 25) + "\n", encoding="utf-8")
    questions, pairs = work / "questions.txt", work / "pairs.tsv"
    questions.write_text(": royal\nking queen cat dog\nqueen king dog cat\n: garden\ncat dog king queen\n",
                         encoding="utf-8")
    pairs.write_text("king\tqueen\t9\ncat\tdog\t8\ncastle\tkingdom\t7\nking\tcat\t1\nqueen\tgarden\t2\n",
                     encoding="utf-8")
    flags = tiny_flags(corpus, model_dir, "--dim", "8", "--batch-size", "512", "--sample", "0", "--epochs", "3",
                       "--max-steps", str(SHORT_RUN_STEPS), "--learning-rate", "0.05", "--eval-analogies",
                       str(questions), "--eval-similarity", str(pairs), "--keep-best", "eval/pairs",
                       "--probe-words", "horse")
    trained = run_script("train.py", *flags)
    assert trained.returncode == 0, trained.stderr
    with tensorboard_serving(model_dir / "logs") as base_url:
        yield model_dir, base_url, trained.stdout, (questions, pairs)


def test_a_short_run_shows_its_loss_at_each_epoch_end_and_at_its_end(served_short_run):
    _, base_url, _, _ = served_short_run
    epoch_ends = [step for step, _ in scalar_series(base_url, "epoch/number")]
    assert len(epoch_ends) == 2 and epoch_ends[-1] < SHORT_RUN_STEPS
    loss_steps = [step for step, _ in scalar_series(base_url, "loss")]
    # A point at each epoch end and at the last step, though --log-every is 200 (a progress line every 5 s may add
    # more on a slow machine).
    assert set(epoch_ends) <= set(loss_steps) and loss_steps[-1] == SHORT_RUN_STEPS
    mean_losses = scalar_series(base_url, "epoch/mean_loss")
    # Every step counts, logged or not: a mean per epoch, at or below the 6 ln 2 of the first step.
    assert [step for step, _ in mean_losses] == epoch_ends
    assert all(0 < value <= 6 * np.log(2) + 0.01 for _, value in mean_losses)
    assert all(value > 0 for _, value in scalar_series(base_url, "epoch/words_per_second"))


def test_eval_scalars_appear_at_each_epoch_end_and_the_best_epoch_is_kept(served_short_run, tmp_path):
    model_dir, base_url, stdout, (questions, pairs) = served_short_run
    epoch_ends = [step for step, _ in scalar_series(base_url, "epoch/number")]
    for tag in ("eval/analogy", "eval/pairs", "vectors/random_pair_cosine", "epoch/evaluation_seconds"):
        assert [step for step, _ in scalar_series(base_url, tag)] == epoch_ends, tag
    spearman = scalar_series(base_url, "eval/pairs")
    analogy = dict(scalar_series(base_url, "eval/analogy"))
    assert f"pairs {spearman[0][1]:.4f}" in stdout  # in the epoch's progress line
    best_step, best_value = max(spearman, key=lambda point: point[1])
    best = json.loads((model_dir / "best" / "best.json").read_text())
    assert (best["score"], best["step"]) == ("eval/pairs", best_step)
    assert best["value"] == pytest.approx(best_value, abs=1e-6)
    # evaluate.py on the kept checkpoint gives the figures TensorBoard showed for that epoch.
    scored = run_script("evaluate.py", "--model-dir", str(model_dir), "--checkpoint", "best", "--analogies",
                        str(questions), "--similarity", str(pairs), "--json", str(tmp_path / "scores.json"))
    assert scored.returncode == 0, scored.stderr
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["similarity"][0]["spearman"] == pytest.approx(best_value, abs=1e-6)
    assert scores["analogies"]["accuracy"] == pytest.approx(analogy[best_step], abs=1e-6)


def test_the_text_tab_shows_stand_in_probe_words_and_says_so(served_short_run):
    _, base_url, stdout, _ = served_short_run
    query = urllib.parse.urlencode({"run": "train", "tag": "nearest_neighbours"})
    last = fetch_json(f"{base_url}/data/plugin/text/text?{query}")[-1]["text"]
    note = "none of the probe words (horse) is in the vocabulary: showing the neighbours of frequent words instead"
    assert note in last and note in stdout
    assert re.search(r"<td>kingdom</td>\s*<td>([^<]*)</td>", last)  # one of the stand-ins, with its neighbours


# CI sets this (.ci/run) so that a machine without the browser fails the browser test instead of skipping it.
REQUIRE_BROWSER = "WORD2VEC_REQUIRE_BROWSER"
INSTALL_BROWSER = "apt-get install chromium chromium-driver"


def browser_programs() -> tuple[str, str]:
    """The paths of chromium and chromedriver. Without them the test is skipped with a reason that says how to
    install them, or fails when the environment variable WORD2VEC_REQUIRE_BROWSER is set (as in CI)."""
    programs = {"chromium": shutil.which("chromium") or shutil.which("chromium-browser"),
                "chromedriver": shutil.which("chromedriver")}
    missing = [name for name, path in programs.items() if path is None]
    try:
        import selenium  # noqa: F401 - only whether it is installed matters here.
    except ImportError:
        missing.append("selenium (pip install -r requirements-dev.txt)")
    if not missing:
        return programs["chromium"], programs["chromedriver"]
    reason = f"{' and '.join(missing)} not found: `{INSTALL_BROWSER}` to run the projector's browser test"
    if os.environ.get(REQUIRE_BROWSER):
        pytest.fail(f"{reason} ({REQUIRE_BROWSER} is set, so the browser test must run)", pytrace=False)
    pytest.skip(reason)


@pytest.mark.slow
def test_projector_page_in_headless_chromium_shows_every_projected_point(request, tmp_path):
    chromium, chromedriver = browser_programs()  # Before the training run: a skip costs nothing.
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    _, base_url = request.getfixturevalue("served_run")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ["--headless", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                     "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}",
                     "--window-size=1400,900"]:
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        driver.get(f"{base_url}/#projector")
        # TensorBoard loads a plugin in an iframe, and the projector's own page sits in an iframe inside that.
        wait_until(lambda: enter_projector_frame(driver), "the projector's frame")
        # "Points: 0" shows while the tensor loads; the PCA's variance appears once the points are drawn.
        wait_until(lambda: re.search(r"Total variance described: \d", page_text(driver)), "the PCA of the points")
        shown = wait_until(lambda: re.search(r"Points: ([1-9][\d,]*)", page_text(driver)), "the number of points")
        assert int(shown.group(1).replace(",", "")) == PROJECTED_ROWS

        # Searching the labels: of the 12 most frequent words, "king" and "kingdom" contain "king".
        driver.execute_script(INSPECTOR_SEARCH_INPUT).send_keys("king")
        wait_until(lambda: "2 matches." in page_text(driver), "the search for king")
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "projector.png"))
    finally:
        driver.quit()


def browser_test_outcome(path: str, *environment: tuple[str, str]) -> subprocess.CompletedProcess:
    """The browser test run alone by pytest in a subprocess, with PATH set to `path`."""
    test = f"{pathlib.Path(__file__).name}::test_projector_page_in_headless_chromium_shows_every_projected_point"
    env = {key: value for key, value in os.environ.items() if key != REQUIRE_BROWSER}
    env.update({"PATH": path, **dict(environment)})
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", test],
                          capture_output=True, text=True, timeout=300, cwd=pathlib.Path(__file__).parent, env=env,
                          check=False)


def test_without_a_browser_the_browser_test_skips_saying_how_to_install_one_and_fails_when_ci_requires_it(tmp_path):
    # An empty directory as PATH: no chromium, no chromedriver (pytest itself runs from sys.executable).
    skipped = browser_test_outcome(str(tmp_path))
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert "1 skipped" in skipped.stdout and INSTALL_BROWSER in skipped.stdout
    required = browser_test_outcome(str(tmp_path), (REQUIRE_BROWSER, "1"))
    assert required.returncode == 1, required.stdout + required.stderr
    assert "1 failed" in required.stdout and INSTALL_BROWSER in required.stdout
    assert f"{REQUIRE_BROWSER} is set" in required.stdout


def test_ci_requires_the_browser_test():
    # .ci/run installs the browser and sets the variable for the test command, so CI never skips it silently.
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f"export {REQUIRE_BROWSER}=1" in ci and INSTALL_BROWSER.replace("apt-get install", "") in ci


def wait_until(condition, what: str, seconds: float = 90):
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, f"the projector page did not show {what} within {seconds:.0f} s"
        time.sleep(0.5)
    return result


def enter_projector_frame(driver) -> bool:
    driver.switch_to.default_content()
    for _ in range(2):
        frames = driver.find_elements("css selector", "iframe")
        if not frames:
            return False
        driver.switch_to.frame(frames[0])
    return True


def page_text(driver) -> str:
    """The text a user sees, including inside the projector's shadow DOMs, as one space-separated string."""
    return driver.execute_script(PAGE_TEXT)


PAGE_TEXT = """
function collect(node, out) {
  if (node.shadowRoot) collect(node.shadowRoot, out);
  for (const child of node.childNodes) {
    if (child.nodeType === Node.TEXT_NODE) {
      const text = child.textContent.trim();
      if (text && !['STYLE', 'SCRIPT'].includes(child.parentNode.nodeName)) out.push(text);
    } else collect(child, out);
  }
  return out;
}
return collect(document, []).join(' ');
"""

INSPECTOR_SEARCH_INPUT = """
function hosts(node) {
  const chain = [];
  for (let root = node.getRootNode(); root.host; root = root.host.getRootNode()) chain.push(root.host.tagName);
  return chain;
}
function inputs(node, out) {
  if (node.shadowRoot) inputs(node.shadowRoot, out);
  for (const child of node.children) { if (child.tagName === 'INPUT') out.push(child); inputs(child, out); }
  return out;
}
return inputs(document, []).find(input => input.type === 'text' && hosts(input).includes('VZ-PROJECTOR-INSPECTOR-PANEL'));
"""
