"""What a model directory holds, and how flags meet the config saved in it.

    model_dir/config.json      the full config, so resume and export need no flags
    model_dir/vocab.tsv        the vocabulary with counts, in id order
    model_dir/checkpoints/     the training checkpoints: E, W and its bias, optimizer, progress
    model_dir/logs/            TensorBoard: scalars, text and the projector (E only)
    model_dir/id-cache/        the token ids of the corpus while a run trains (removed when it ends, and by the
                               next run if it was killed)
    model_dir/best/            with --keep-best: the checkpoint of the best epoch so far, and best.json
"""

import dataclasses
import os
import pathlib
import re

from config import CORPUS_FIELDS, MODEL_DEFINING_FIELDS, PER_RUN_FIELDS, Config
from errors import UserError
from storage import write_text_atomically


@dataclasses.dataclass(frozen=True)
class ModelDirectory:
    root: pathlib.Path

    @property
    def config_path(self) -> pathlib.Path:
        return self.root / "config.json"

    @property
    def vocabulary_path(self) -> pathlib.Path:
        return self.root / "vocab.tsv"

    @property
    def checkpoints(self) -> pathlib.Path:
        return self.root / "checkpoints"

    @property
    def logs(self) -> pathlib.Path:
        return self.root / "logs"

    @property
    def id_cache(self) -> pathlib.Path:
        return self.root / "id-cache"

    def artifact_at(self, path: str) -> tuple[str, pathlib.Path]:
        """What a run writes at `path` (a file or folder in this directory) and where, for a failed write's message:
        ("checkpoint ckpt-60", model_dir/checkpoints), ("the token-id cache", model_dir/id-cache), ..."""
        absolute = pathlib.Path(os.path.abspath(path))
        inside = lambda place: pathlib.Path(os.path.abspath(place)) in (absolute, *absolute.parents)
        if inside(self.checkpoints):
            number = re.search(r"ckpt-(\d+)", str(absolute.relative_to(os.path.abspath(self.checkpoints))))
            return (f"checkpoint ckpt-{number.group(1)}" if number else "a checkpoint"), self.checkpoints
        if inside(self.logs):
            projector = ("embedding", "metadata.tsv", "projector_config", "checkpoint")  # training/tensorboard.py's
            parts = absolute.relative_to(os.path.abspath(self.logs)).parts
            projected = any(part.startswith(projector) for part in parts)
            what = "the projector snapshot" if projected else "TensorBoard events"
            return what, self.logs / parts[0] if len(parts) > 1 else self.logs
        if inside(self.id_cache):
            return "the token-id cache", self.id_cache
        if inside(self.root / "update.staging"):  # training/rounds.py's journal
            return "the new round's files", self.root / "update.staging"
        if inside(self.best):
            number = re.search(r"best-(\d+)", str(absolute.relative_to(os.path.abspath(self.best))))
            what = "the best epoch's record" if absolute.name.startswith("best.json") else \
                f"the best checkpoint best-{number.group(1)}" if number else "the best checkpoint"
            return what, self.best
        for file, what in ((self.vocabulary_path, "the vocabulary"), (self.config_path, "the config")):
            if absolute.parent == file.absolute().parent and absolute.name.startswith(file.name):  # vocab.tsv.tmp
                return what, file
        return "a file", pathlib.Path(path)

    @property
    def best(self) -> pathlib.Path:
        """The checkpoint of the best epoch by --keep-best's score, with best.json saying which."""
        return self.root / "best"

    def saved_config(self) -> Config | None:
        if not self.config_path.exists():
            return None
        try:
            config = Config.from_json(self.config_path.read_text(encoding="utf-8"))
            config.validate()
        except KeyError as error:
            raise UserError(f"{self.config_path} has no {error} section; restore it from a backup, "
                            "or use another --model-dir") from None
        except (ValueError, TypeError) as error:  # Also a UserError from validate() and a UnicodeDecodeError.
            raise UserError(f"{self.config_path} is not a config this version can read ({error}); "
                            "restore it from a backup, or use another --model-dir") from None
        return config

    def save_config(self, config: Config) -> None:
        """Writes config.json atomically, unless it already holds this config: a resume that changes nothing
        writes nothing."""
        text = config.to_json() + "\n"
        if self.config_path.exists() and self.config_path.read_text(encoding="utf-8") == text:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        write_text_atomically(self.config_path, text, "the config")


def resolved_config(saved: Config | None, requested: Config, explicit: set[tuple[str, str]]) -> Config:
    """The config to run with: the saved one (if any) with the explicitly given flags applied on top.

    A flag that changes the vocabulary or the shape of E and W cannot continue a saved run: that is an error
    naming the flag, never a silent mix of two configurations. Another corpus is the one exception: with
    --update-vocab or --keep-vocab it is the text of a new round of training (training/continuation.py).
    """
    if saved is None:
        return requested
    new_round = requested.data.update_vocab or requested.data.keep_vocab
    for section, name in sorted(explicit):
        old, new = getattr(getattr(saved, section), name), getattr(getattr(requested, section), name)
        if name in MODEL_DEFINING_FIELDS.get(section, []) and old != new and not (name in CORPUS_FIELDS and new_round):
            if name in CORPUS_FIELDS:
                raise UserError(
                    f"{name}={new!r} is not the text this --model-dir trains on ({name}={old!r}): add --update-vocab "
                    "to continue training on it and add its new words, or --keep-vocab to continue with the "
                    "vocabulary unchanged; or train in a new --model-dir"
                )
            raise UserError(
                f"{name}={new!r} contradicts the run saved in this --model-dir ({name}={old!r}); "
                "drop the flag to resume, or train in a new --model-dir"
            )
        setattr(getattr(saved, section), name, new)
    if new_round and any(name in CORPUS_FIELDS for _, name in explicit):
        for name in CORPUS_FIELDS:  # The new round's text replaces the old whole: files by a TFDS set, say.
            setattr(saved.data, name, getattr(requested.data, name))
    if new_round and ("training", "learning_rate") not in explicit:
        saved.training.learning_rate = saved.training.update_learning_rate
    for section, names in PER_RUN_FIELDS.items():
        for name in names:
            setattr(getattr(saved, section), name, getattr(getattr(requested, section), name))
    return saved
