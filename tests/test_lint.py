"""The whole tree passes ruff, the one linter named in requirements-dev.txt, with the settings in pyproject.toml."""

import subprocess
import sys

from conftest import ROOT


def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)], capture_output=True,
                            text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
