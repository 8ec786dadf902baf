"""The benchmark harness: per-process time and memory, the comparison arithmetic, the matmul reference, and one
whole (tiny) run of compare_gensim.py against gensim."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT, TOPIC_LINES, UPDATE_LINES, run_script

from benchmarks.compare_gensim import comparison, markdown, parsed_cores, run_measured
from benchmarks.matmul_flops import matmul_flops_per_second


def test_peak_memory_is_measured_per_process(tmp_path):
    # Measured from a small parent, as compare_gensim.py is one: Linux carries a parent's own peak into its
    # children's ru_maxrss, and this test process holds TensorFlow.
    touch_300_mb = "block = bytearray(300_000_000); block[::4096] = b'x' * len(block[::4096])"
    measure = (
        "import json, sys\n"
        "from benchmarks.compare_gensim import run_measured\n"
        f"big = run_measured([sys.executable, '-c', {touch_300_mb!r}], {str(tmp_path / 'big.log')!r})\n"
        f"small = run_measured([sys.executable, '-c', 'pass'], {str(tmp_path / 'small.log')!r})\n"
        "print(json.dumps([big.peak_rss_mb, small.peak_rss_mb, big.wall_seconds, small.wall_seconds]))\n"
    )
    result = subprocess.run([sys.executable, "-c", measure], capture_output=True, text=True, cwd=ROOT, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    big_mb, small_mb, big_seconds, small_seconds = json.loads(result.stdout)
    # The 300 MB block is resident in the first child only; the second, run after it, is a bare interpreter.
    assert big_mb > 290 and small_mb < 100
    assert big_seconds > 0 and small_seconds > 0


def test_a_failing_process_is_a_user_error_with_its_last_lines(tmp_path):
    from errors import UserError

    with pytest.raises(UserError, match="(?s)exit 3.*went wrong"):
        run_measured([sys.executable, "-c", "import sys; print('went wrong'); sys.exit(3)"], tmp_path / "log")


def test_ratios_are_ours_over_gensim_and_quality_differences_ours_minus_gensim():
    ours = {"wall_seconds": 30.0, "training_seconds": 20.0, "words_per_second": 500_000.0,
            "words_per_wall_second": 300_000.0, "peak_rss_mb": 800.0, "analogy": 0.25, "wordsim353": 0.5,
            "simlex999": 0.3}
    gensim = {"wall_seconds": 60.0, "training_seconds": 40.0, "words_per_second": 250_000.0,
              "words_per_wall_second": 150_000.0, "peak_rss_mb": 400.0, "analogy": 0.20, "wordsim353": 0.5,
              "simlex999": 0.4}
    ratio, difference = comparison(ours, gensim)
    assert ratio == pytest.approx({"wall_seconds": 0.5, "training_seconds": 0.5, "words_per_second": 2.0,
                                   "words_per_wall_second": 2.0, "peak_rss_mb": 2.0,
                                       "analogy": 1.25, "wordsim353": 1.0, "simlex999": 0.75})
    assert difference == pytest.approx({"analogy": 0.05, "wordsim353": 0.0, "simlex999": -0.1})


def test_the_table_gives_speed_ratios_by_training_and_by_wall_time_per_core_count():
    # Ours reads 1,000 words x 5 epochs in 10 s of training and 20 s of wall time, gensim in 20 s and 25 s.
    ours = {"wall_seconds": 20.0, "training_seconds": 10.0, "words_per_second": 500.0, "words_per_wall_second": 250.0,
            "peak_rss_mb": 800.0}
    gensim = {"wall_seconds": 25.0, "training_seconds": 20.0, "words_per_second": 250.0, "words_per_wall_second": 200.0,
              "peak_rss_mb": 100.0}
    ratio, difference = comparison(ours, gensim)
    row = {"ours": ours, "gensim": gensim, "ratio": ratio, "difference": difference}
    results = {"command": "c", "date": "d", "machine": {"cpus": 2, "processor": "x"}, "quick": False, "repeats": 3,
               "versions": {"tensorflow": "t", "gensim": "g"}, "corpus": {"source": "s", "lines": 1, "words": 1000},
               "hyperparameters": {"window": 5, "negatives": 5, "sample": 1e-3, "min_count": 5, "epochs": 5,
                                   "threads": 2, "seed": 1},
               "rows": {"100": row, "default": row}, "one_core": {"100": row}, "benchmark_peak_rss_mb": 20.0}
    table = markdown(results)
    # 500 / 250 = 2.00 by training seconds, 250 / 200 = 1.25 by wall time; the first run has no one-core column.
    assert "| dim 100 | 2.00 | 1.25 | 2.00 | 1.25 |" in table
    assert "| default corpus, first run (dim 100) | 2.00 | 1.25 | n/a | n/a |" in table
    assert "| ours, dim 100 | 1 | 20.0 | 10.0 | 500 | 250 | 800 | n/a | n/a | n/a |" in table
    assert "medians of 3 pair(s)" in table


def test_core_counts_are_one_or_two():
    from errors import UserError

    assert parsed_cores("2,1") == [2, 1]
    with pytest.raises(UserError, match="--cores"):
        parsed_cores("4")


def test_the_matmul_reference_counts_six_b_d_v_flops_per_call():
    measured = matmul_flops_per_second(batch=8, dim=4, vocab=16, seconds=0.2)
    assert measured["calls"] >= 1
    # 6 x 8 x 4 x 16 = 3,072 FLOPs per call.
    assert measured["flops_per_second"] == pytest.approx(3072 * measured["calls"] / measured["seconds"])


@pytest.mark.slow
def test_compare_gensim_runs_both_systems_and_writes_the_tables(tiny_corpus, tmp_path):
    pytest.importorskip("gensim")
    result = run_script("benchmarks/compare_gensim.py", "--corpus", str(tiny_corpus), "--rows", "8,neg15,full,objectives",
                        "--full-steps", "5", "--matmul-seconds", "0.5", "--objectives-max-vocab", "10",
                        "--out", str(tmp_path / "out"), "--work-dir", str(tmp_path / "work"), timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    # The tiny corpus: 100 lines, 25 x (9 + 10 + 10 + 10) = 975 words, which gensim counts too.
    assert (results["corpus"]["lines"], results["corpus"]["words"]) == (100, 975)
    row = results["rows"]["8"]
    assert row["gensim"]["corpus_words"] == 975
    assert row["ours"]["vocabulary_size"] == row["gensim"]["vocabulary_size"] == 19
    assert row["ours"]["embedding_dim"] == row["gensim"]["embedding_dim"] == 8
    # Five whole epochs: 975 x 5 words read, over each system's own training seconds.
    for system in ("ours", "gensim"):
        assert row[system]["words_per_second"] == pytest.approx(975 * 5 / row[system]["training_seconds"])
        assert row[system]["wall_seconds"] > row[system]["training_seconds"] and row[system]["peak_rss_mb"] > 50
    assert row["ratio"]["words_per_second"] == pytest.approx(row["ours"]["words_per_second"]
                                                             / row["gensim"]["words_per_second"])
    full = results["rows"]["full"]
    assert (full["ours"]["steps"], full["ours"]["embedding_dim"], full["matmul"]["vocab"]) == (5, 100, 19)
    assert full["warmup"]["steps"] == 3
    # 6·B·D·V = 6 x B x 100 x 19 FLOPs a step; steady: the two steps after the warm-up's three.
    steady_seconds = full["ours"]["training_seconds"] - full["warmup"]["training_seconds"]
    if steady_seconds > 0:  # On a busy machine the short run can take longer than the long one.
        flops_per_step = 6 * full["ours"]["batch_size"] * 100 * 19
        assert full["flops_per_second"] == pytest.approx(flops_per_step * 2 / steady_seconds)
        assert full["share_of_matmul"] == pytest.approx(full["flops_per_second"] / full["matmul"]["flops_per_second"])
    # Pinned to one core (taskset), both ran again, gensim with one worker.
    one_core = results["one_core"]["8"]
    assert one_core["ours"]["command"].startswith("taskset -c 0 ") and "--workers 1" in one_core["gensim"]["command"]
    # neg15: both systems at dim 100 with 15 negatives.
    more_negatives = results["rows"]["neg15"]
    assert "--negatives 15" in more_negatives["ours"]["command"] and "--negatives 15" in more_negatives["gensim"]["command"]
    assert more_negatives["ours"]["embedding_dim"] == 100
    # objectives: the three objectives and gensim, one epoch each, on the 10 most frequent words.
    runs = results["rows"]["objectives"]["runs"]
    assert set(runs) == {"negative", "sampled", "full", "gensim"}
    assert {runs[loss]["vocabulary_size"] for loss in ("negative", "sampled", "full")} == {10}
    # gensim's max_final_vocab drops a whole group of words tied at the cut (it raises min_count), so it may keep
    # fewer than 10 of the tiny corpus's words, never more.
    gensim_words = runs["gensim"]["vocabulary_size"]
    assert 0 < gensim_words <= 10
    assert all(runs[loss]["seconds_per_step"] == pytest.approx(runs[loss]["training_seconds"] / runs[loss]["steps"])
               for loss in ("negative", "sampled", "full"))
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| ours, dim 8 |" in table and "| gensim, dim 8 |" in table and "| ratio ours / gensim |" in table
    assert "| ours, dim 100, negatives 15 |" in table and "| gensim, dim 100, negatives 15 |" in table
    assert "## The `full` objective" in table
    assert "## The three objectives on equal data (1 epoch, the 10 most frequent words; dim 100)" in table
    assert "| ours, full | 10 |" in table and f"| gensim (negative sampling) | {gensim_words} |" in table


@pytest.mark.slow
def test_continue_training_compares_both_updates_with_training_from_scratch(tmp_path):
    pytest.importorskip("gensim")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TOPIC_LINES * 25 + UPDATE_LINES * 25) + "\n", encoding="utf-8")
    result = run_script("benchmarks/continue_training.py", "--corpus", str(corpus), "--learning-rates", "0.05",
                        "--replays", "0.5", "--seed", "2", "--out", str(tmp_path / "out"), "--work-dir",
                        str(tmp_path / "work"), timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads((tmp_path / "out" / "continue_training.json").read_text())
    # Halves of 100 lines and 975 words each: the topics, then the same lines with "prince" and "puppy" in them.
    assert [(half["lines"], half["words"]) for half in results["halves"].values()] == [(100, 975), (100, 975)]
    for system in ("ours", "gensim"):
        rows = results["rows"][system]
        assert [rows[run]["vocabulary_size"] for run in ("trained", "update", "scratch")] == [19, 21, 21]
        assert rows["update"]["words_added"] == 2
    assert results["learning_rates"][0]["learning_rate"] == 0.05
    # The update that also replays half of A's lines: B's 975 words and about half of A's every epoch.
    replayed = results["replays"][0]
    assert replayed["replay"] == 0.5 and replayed["corpus_words"] == 975 and 300 < replayed["replay_words"] < 675
    assert set(results["replay_targets"][0]) == {"analogy", "wordsim353", "simlex999"}
    # Both new words occur 50 times; each gets neighbours from both systems' updated and scratch models.
    assert sorted(results["probe_words"]) == [["prince", 50], ["puppy", 50]]
    assert all(len(found["prince"]) == 8 for found in results["neighbours"].values())
    assert set(results["targets"]) == {"analogy", "wordsim353", "simlex999"}
    # --seed reaches every run: ours records it, and gensim's command carries it.
    assert results["hyperparameters"]["seed"] == 2
    for model in ("ours-A", "ours-update", "ours-AB"):
        assert json.loads((tmp_path / "work" / model / "config.json").read_text())["training"]["seed"] == 2
    assert "--seed 2" in results["rows"]["gensim"]["update"]["command"]
    table = (tmp_path / "out" / "continue_training.md").read_text()
    assert "threads, seed 2." in table
    assert "| ours | 2. A, then B added (update) | 21 | 2 |" in table and "| prince | 50 |" in table
    assert f"| 0.5 | 975 + {replayed['replay_words']:,} |" in table


@pytest.mark.slow
def test_step_time_times_the_pipeline_the_step_and_both(tiny_corpus, tmp_path):
    result = run_script("benchmarks/step_time.py", "--corpus", str(tiny_corpus), "--lines", "100", "--dim", "8",
                        "--steps", "3", "--json", str(tmp_path / "steps.json"), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads((tmp_path / "steps.json").read_text())
    assert (figures["vocabulary"], figures["dim"]) == (19, 8) and figures["batches_per_epoch"] >= 1
    for part in ("pipeline alone", "step alone", "both"):
        assert figures[part]["wall_ms"] > 0 and figures[part]["cpu_ms"] > 0


@pytest.mark.slow
def test_loop_profile_times_the_step_runner_in_calls_as_the_loop_makes_them(tiny_corpus, tmp_path):
    result = run_script("benchmarks/loop_profile.py", "--corpus", str(tiny_corpus), "--lines", "100", "--dim", "8",
                        "--steps", "4", "--rounds", "1", "--calls", "2", "--json", str(tmp_path / "loop.json"),
                        timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    from training.loop import WAKE_EVERY

    figures = json.loads((tmp_path / "loop.json").read_text())
    assert (figures["vocabulary"], figures["dim"]) == (19, 8)
    for row in ("step alone, calls of 2", "step alone, one call", "live pipeline + step, calls of 2",
                f"live pipeline + no-op step, calls of {WAKE_EVERY}"):
        assert figures["rows"][row]["wall_ms"] > 0 and figures["rows"][row]["cpu_ms"] > 0


@pytest.mark.slow
def test_row_traffic_times_both_ways_of_moving_rows_after_checking_they_agree(tiny_corpus, tmp_path):
    result = run_script("benchmarks/row_traffic.py", "--corpus", str(tiny_corpus), "--lines", "100", "--dim", "8",
                        "--rows", "1000", "--batches", "2", "--rounds", "1", "--json", str(tmp_path / "rows.json"),
                        timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads((tmp_path / "rows.json").read_text())
    # 19 words spread over 1,000 rows; a batch of 2,048 pairs holds at most 19 distinct centres.
    assert (figures["vocabulary"], figures["rows"], figures["batch_size"]) == (19, 1000, 2048)
    assert 1 <= figures["distinct_centres_per_batch_median"] <= 19
    assert set(figures["cpu_us_per_batch"]) == {"per pair", "distinct rows once", "per pair + update check"}
    assert all(value > 0 for value in figures["cpu_us_per_batch"].values())
