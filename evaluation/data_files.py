"""The standard evaluation files, as gensim's wheel ships them under gensim/test/test_data.

Nothing is downloaded: the files are found inside an installed gensim (located without importing it), or
given by path.
"""

import importlib.util
import pathlib

ANALOGIES = "questions-words.txt"
WORDSIM353 = "wordsim353.tsv"
SIMLEX999 = "simlex999.txt"


def gensim_test_data(name: str) -> pathlib.Path | None:
    """The path of one of gensim's bundled test files, or None when gensim (or the file) is not installed."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = pathlib.Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data" / name
    return path if path.is_file() else None
