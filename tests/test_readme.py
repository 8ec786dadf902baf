"""The README and `--help` agree: the flag tables are the parsers' (written by readme_flag_tables.py), and --help
reads well: every flag with a plain placeholder and its default, no internal config names."""

import re

import pytest
from conftest import run_script
from readme_flag_tables import REGENERATE, SCRIPTS, flag_parser, flag_table, readme_table

from config import TOKEN_PATTERN


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_readmes_flag_table_is_the_parsers(script):
    documented = readme_table(script)
    assert documented is not None, f"README.md has no flag table for {script}: add its markers and run {REGENERATE}"
    assert documented == flag_table(flag_parser(script)), (
        f"README.md's flag table for {script} differs from its parser: run `{REGENERATE}`")


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_shows_plain_placeholders_and_the_defaults(script):
    result = run_script(script, "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    # Config fields are flags with destinations like data.min_count: their placeholders must not show that.
    assert not re.search(r"\b(DATA|MODEL|TRAINING)\.[A-Z_]+", text), text
    flags = [action for action in flag_parser(script)._actions if action.option_strings and action.nargs != 0]
    assert all(flag.metavar or flag.choices for flag in flags), [flag.dest for flag in flags if not flag.metavar]
    assert " ".join(text.split()).count("(default: ") >= {"train.py": 25, "export.py": 3, "evaluate.py": 5}[script]


def help_entries(text: str) -> dict[str, str]:
    """--help's options as {invocation: its help text on one line}."""
    options = text.split("\noptions:\n", 1)[1]
    entries = {}
    for entry in re.split(r"\n  (?=-)", "\n" + options.strip("\n")):
        invocation, _, description = entry.strip().partition("  ")
        entries[invocation.strip()] = " ".join(description.split())
    return entries


def test_the_defaults_shown_are_the_configs():
    entries = help_entries(run_script("train.py", "--help").stdout)
    for invocation, default in [("--dim D", "100"), ("--min-count N", "5"), ("--sample T", "0.001"),
                                ("--max-vocab-memory N", "10,000,000"), ("--corpus PATH [PATH ...]",
                                                                         "the embedded WordNet glosses"),
                                ("--token-pattern REGEX", TOKEN_PATTERN), ("--loss {negative,sampled,full}", "negative"),
                                ("--model-dir DIR", "runs/default")]:
        assert entries[invocation].endswith(f"(default: {default})"), (invocation, entries[invocation])
    assert entries["--debug"] == "show full tracebacks instead of one-line errors"  # A switch: no default shown.
