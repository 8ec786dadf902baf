"""The README's flag tables, written from the parsers of train.py, export.py and evaluate.py, so that the README and
`--help` say the same thing: every flag, its default and its meaning. tests/test_readme.py fails when they differ.
After adding or changing a flag, rewrite the tables with one command:

    python tests/readme_flag_tables.py
"""

import argparse
import importlib
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SCRIPTS = ("train.py", "export.py", "evaluate.py")
REGENERATE = "python tests/readme_flag_tables.py"


def table_markers(script: str) -> tuple[str, str]:
    return f"<!-- flags:{script}:start -->", f"<!-- flags:{script}:end -->"


def flag_parser(script: str) -> argparse.ArgumentParser:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(script.removesuffix(".py")).flag_parser()


def cell(text: str) -> str:
    """Text for a Markdown table cell: `|` escaped, and `<`, `>` as entities so that `<version>` is not a tag."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def default_cell(action: argparse.Action) -> str:
    """The default as --help shows it; a value (one word) as code, a description as text."""
    from cli import shown_default

    default = shown_default(action)
    if not default or default in ("off", "required") or any(character.isspace() for character in default):
        return cell(default)
    return "`" + default.replace("|", "\\|") + "`"  # GitHub's tables split cells at `|`, inside code too.


def flag_table(parser: argparse.ArgumentParser) -> str:
    """One row per flag, in the parser's order: the flag as --help writes it, its default, its meaning. Flags that
    --help hides (a renamed flag kept only to refuse it in one line) are left out, as --help leaves them out."""
    formatter = parser._get_formatter()
    rows = ["| flag | default | meaning |", "| --- | --- | --- |"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        invocation = formatter._format_action_invocation(action)
        rows.append(f"| `{invocation}` | {default_cell(action)} | {cell(action.help or '')} |")
    return "\n".join(rows)


def readme_table(script: str, text: str | None = None) -> str | None:
    """The table between the script's markers in the README, or None when the markers are missing."""
    text = README.read_text(encoding="utf-8") if text is None else text
    start, end = table_markers(script)
    if start not in text or end not in text:
        return None
    return text[text.index(start) + len(start):text.index(end)].strip("\n")


def rewrite_readme() -> None:
    text = README.read_text(encoding="utf-8")
    for script in SCRIPTS:
        start, end = table_markers(script)
        if readme_table(script, text) is None:
            raise SystemExit(f"README.md lacks the markers {start} ... {end} for {script}'s flag table")
        before, after = text[:text.index(start) + len(start)], text[text.index(end):]
        text = before + "\n" + flag_table(flag_parser(script)) + "\n" + after
    README.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    rewrite_readme()
    print(f"rewrote the flag tables of {', '.join(SCRIPTS)} in {README}")
