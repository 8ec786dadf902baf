"""Each user mistake, run as a real subprocess: one clear line on stderr, the right exit code, no traceback,
and every file that was there before (corpus, model directory) byte-identical afterwards.

The cases live in bad_input_cases.py, which also writes the README's table from real runs of them.
"""

import pathlib
import re

import pytest

from bad_input_cases import CASES, Case, message_line, prepare, readme_table_rows, run, train_tiny_model


def snapshot(directory: pathlib.Path) -> dict[str, bytes | None]:
    """Every file's bytes and every directory (as None), by path relative to `directory`."""
    return {str(path.relative_to(directory)): None if path.is_dir() else path.read_bytes()
            for path in sorted(directory.rglob("*"))}


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory) -> pathlib.Path:
    return train_tiny_model(tmp_path_factory.mktemp("trained"))


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_bad_input_gets_one_line_and_changes_nothing(case: Case, tmp_path, trained_model):
    prepare(case, tmp_path, trained_model)
    before = snapshot(tmp_path)
    result = run(case.script, case.arguments, tmp_path)

    assert result.returncode == case.exit_code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: " if case.exit_code else "warning: ")
    assert re.search(case.expected, lines[0]), lines[0]
    after = snapshot(tmp_path)
    if case.exit_code:
        assert result.stdout == ""
        assert after == before  # Nothing written, nothing changed, nothing removed.
    else:
        assert {path: after[path] for path in before} == before  # The run only added its own new model directory.

    # The README's table shows this case with a message of the same form.
    documented = readme_table_rows()
    assert case.description in documented, "README.md lacks this case: run python tests/bad_input_cases.py"
    assert re.search(case.expected, documented[case.description]), message_line(result)
