"""What a model directory holds, and how flags meet the config saved in it.

    model_dir/config.json      the full config, so resume and export need no flags
    model_dir/vocab.tsv        the vocabulary with counts, in id order
    model_dir/checkpoints/     the training checkpoints: E, W and its bias, optimizer, progress
    model_dir/logs/            TensorBoard: scalars, text and the projector (E only)
    model_dir/best/            with --keep-best: the checkpoint of the best epoch so far, and best.json
"""

import dataclasses
import os
import pathlib

from config import CORPUS_FIELDS, MODEL_DEFINING_FIELDS, PER_RUN_FIELDS, Config
from errors import UserError


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
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = self.config_path.with_suffix(".json.tmp")
        temporary.write_text(config.to_json() + "\n", encoding="utf-8")
        os.replace(temporary, self.config_path)


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
