"""`pip install .`: the repository as ONE package, `word2vec_tf`, plus the commands word2vec-train, word2vec-export
and word2vec-evaluate. The metadata is in pyproject.toml; this file holds what cannot be declared there.

The repository keeps the layout it was founded with: top-level modules (train.py, config.py, errors.py, ...) and
packages (model/, training/, ...) that import each other by top-level names (`from model.skipgram import
SkipGram`), so that `python train.py` runs from a clone with nothing installed. Installed under those names,
`model`, `config`, `errors` and `training` would shadow a user's own modules (and theirs ours). So the build:

1. maps the repository root onto the package `word2vec_tf` (setuptools' package-dir: `word2vec_tf` is ".",
   `word2vec_tf.model` is model/, ...), leaving tests/, benchmarks/ and this file out. The root holds no
   `__init__.py` (it would make every tool see the clone's folder as a package): word2vec_tf.py becomes the
   package's `__init__.py`;
2. rewrites, in the built copies only, each import of a repository name to its place in the package:
   `from model.skipgram import SkipGram` becomes `from word2vec_tf.model.skipgram import SkipGram`, `import
   errors` becomes `from word2vec_tf import errors`. The source is never changed, and a module added later is
   rewritten like the others without being listed anywhere.

An editable install (`pip install -e .`) would import the unrewritten sources, so it is refused with the reason.
"""

import ast
import pathlib

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PACKAGE = "word2vec_tf"
ROOT = pathlib.Path(__file__).resolve().parent
NOT_INSTALLED = ["tests", "tests.*", "benchmarks", "benchmarks.*"]
SUBPACKAGES = find_packages(where=str(ROOT), exclude=NOT_INSTALLED)
PACKAGE_INIT = f"{PACKAGE}.py"
TOP_LEVEL_MODULES = [path.stem for path in ROOT.glob("*.py") if path.name not in ("setup.py", PACKAGE_INIT)]
# Every name the repository's code imports its own modules by: rewritten in the installed copies.
REPOSITORY_NAMES = frozenset(TOP_LEVEL_MODULES) | {name.split(".")[0] for name in SUBPACKAGES}


def packaged_imports(source: bytes, names: frozenset[str] = REPOSITORY_NAMES, package: str = PACKAGE) -> bytes:
    """`source` with every absolute import of `names` moved under `package`; everything else byte-identical.

    `from X.Y import a` keeps its shape (only the module name changes, so parenthesised imports and line numbers
    stay as they are); `import X`, `import X.Y` and `import X as Z` become statements that bind the same names.
    """
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    edits = []  # (start, end, replacement) in bytes: ast's column offsets are UTF-8 byte offsets.
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] in names:
            start = starts[node.lineno - 1] + node.col_offset
            keyword_end = source.index(b"from", start) + len(b"from")
            module_start = keyword_end + len(source[keyword_end:]) - len(source[keyword_end:].lstrip())
            if not source.startswith(node.module.encode(), module_start):
                raise ValueError(f"line {node.lineno}: cannot find the module name of this import to rewrite it")
            edits.append((module_start, module_start, f"{package}.".encode()))
        elif isinstance(node, ast.Import) and any(alias.name.split(".")[0] in names for alias in node.names):
            start = starts[node.lineno - 1] + node.col_offset
            end = starts[node.end_lineno - 1] + node.end_col_offset
            statements = [import_statement(alias, names, package) for alias in node.names]
            edits.append((start, end, "; ".join(statements).encode()))
    for start, end, replacement in sorted(edits, reverse=True):
        source = source[:start] + replacement + source[end:]
    return source


def import_statement(alias: ast.alias, names: frozenset[str], package: str) -> str:
    """One `import` alias as a statement binding the same name, moved under `package` if it is one of `names`."""
    top = alias.name.split(".")[0]
    if top not in names:
        return f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
    if alias.asname:
        return f"import {package}.{alias.name} as {alias.asname}"
    if "." not in alias.name:
        return f"from {package} import {alias.name}"
    # `import X.Y` binds X with its submodule Y loaded: load it, then bind X.
    return f"import {package}.{alias.name}; from {package} import {top}"


class BuildPackage(build_py):
    """setuptools' build_py: this file left out, word2vec_tf.py as the package's __init__.py, and the imports of
    every copied module rewritten."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        if package != PACKAGE:
            return modules
        kept = [module for module in modules if module[1] not in ("setup", PACKAGE, "__init__")]
        return [(PACKAGE, "__init__", str(pathlib.Path(package_dir) / PACKAGE_INIT)), *kept]

    def check_package(self, package, package_dir):
        # The root has no __init__.py by design (word2vec_tf.py becomes it): no warning about it.
        return None if package == PACKAGE else super().check_package(package, package_dir)

    def build_module(self, module, module_file, package):
        built, copied = super().build_module(module, module_file, package)
        path = pathlib.Path(built)
        path.write_bytes(packaged_imports(path.read_bytes()))
        return built, copied


class RefuseEditable(editable_wheel):
    def run(self):
        raise SystemExit("error: an editable install would import the repository's modules by their top-level "
                         "names; run the clone as it is (python train.py), or install with `pip install .`")


if __name__ == "__main__":
    setup(
        packages=[PACKAGE, *(f"{PACKAGE}.{name}" for name in SUBPACKAGES)],
        package_dir={PACKAGE: "."},
        package_data={PACKAGE: ["data/wordnet_glosses.txt.gz", "data/WORDNET_LICENSE", "data/README.md"]},
        cmdclass={"build_py": BuildPackage, "editable_wheel": RefuseEditable},
    )
