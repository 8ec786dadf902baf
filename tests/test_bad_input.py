"""Each user mistake, run as a real subprocess: one clear line on stderr, the right exit code, no traceback,
and every file that was there before (corpus, model directory, exports) byte-identical afterwards.

The cases live in bad_input_cases.py, which also writes the README's table from real runs of them.
"""

import re

import pytest
from bad_input_cases import CASES, Case, Outcome, message_line, readme_table_rows, run_cases
from mounts import why_mounting_is_not_permitted


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, Outcome]:
    """Every case's run, made once for the module (two at a time; each test checks one of them)."""
    return run_cases(tmp_path_factory.mktemp("bad-input"), CASES)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_bad_input_gets_one_line_and_changes_nothing(case: Case, outcomes):
    if case.name not in outcomes:
        pytest.skip(why_mounting_is_not_permitted())
    result, before, after = outcomes[case.name].result, outcomes[case.name].before, outcomes[case.name].after

    assert result.returncode == case.exit_code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: " if case.exit_code else "warning: ")
    assert re.search(case.expected, lines[0]), lines[0]
    if case.trains:
        # It trained and stopped: no checkpoint written or changed, only TensorBoard logs and config.json's flags.
        assert {path: content for path, content in after.items() if "checkpoints" in path} == \
            {path: content for path, content in before.items() if "checkpoints" in path}
        assert {path for path in after if "logs" not in path} == {path for path in before if "logs" not in path}
    elif case.exit_code:
        assert result.stdout == ""
        assert after == before  # Nothing written, nothing changed, nothing removed.
    else:
        assert {path: after[path] for path in before} == before  # The run only added its own new model directory.

    # The README's table shows this case with a message of the same form.
    documented = readme_table_rows()
    assert case.description in documented, "README.md lacks this case: run python tests/bad_input_cases.py"
    assert re.search(case.expected, documented[case.description]), message_line(result)
