"""Writes an export as TF Serving lays out models: `base/<version>/`, appearing whole or not at all.

The version is first written to a hidden, non-numeric sibling (`base/.incomplete-<version>-<pid>`), which a
model server watching `base` ignores, then renamed into place. A failure removes it; a hard kill can leave it
behind, still non-numeric, safe to delete.
"""

import os
import pathlib
import shutil
from collections.abc import Sequence

import tensorflow as tf

from errors import UserError
from exporting import FORMATS
from exporting.interchange import (
    WORD2VEC_BINARY,
    WORD2VEC_TEXT,
    write_projector_tsv,
    write_word2vec_binary,
    write_word2vec_text,
)
from exporting.trained_embeddings import TrainedEmbeddings
from model.serving import WordVectorServer
from storage import first_missing, writing


def write_export(trained: TrainedEmbeddings, base: pathlib.Path, version: int, formats: Sequence[str] = ("savedmodel",),
                 overwrite: bool = False, exact_lookup: bool = False) -> pathlib.Path:
    """Writes `trained` in each of `formats` into `base/<version>/` atomically and returns that directory.

    An existing version is an error unless `overwrite`; then it is replaced only once the new one is complete.
    With `exact_lookup` the SavedModel's signatures look words up as given instead of standardised as in training.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise UserError(f"unknown format {unknown[0]!r}: choose from {', '.join(FORMATS)}")
    if version < 0:
        raise UserError(f"--version {version} is negative: TF Serving versions are numbers from 0")
    if base.exists() and not base.is_dir():
        raise UserError(f"--export-dir {base} is a file, not a directory")
    final = base / str(version)
    if final.exists() and not overwrite:
        raise UserError(f"{final} already exists: pass --overwrite to replace it, or --version for another version")

    # A full or read-only disk is one line; the unfinished version is removed, so earlier ones and the free space
    # are as they were.
    intact = "earlier versions are intact; free some space (or choose a writable --export-dir) and export again"
    created, temporary = first_missing(base), base / f".incomplete-{version}-{os.getpid()}"
    with writing(f"export version {version}", base, intact):
        try:
            base.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(temporary, ignore_errors=True)
            temporary.mkdir()
            write_formats(trained, temporary, formats, exact_lookup)
            move_into_place(temporary, final)
        except BaseException:
            shutil.rmtree(created or temporary, ignore_errors=True)
            raise
    return final


def write_formats(trained: TrainedEmbeddings, directory: pathlib.Path, formats: Sequence[str],
                  exact_lookup: bool = False) -> None:
    if "savedmodel" in formats:
        server = WordVectorServer(trained.words, trained.vectors, trained.token_pattern, exact_lookup)
        tf.saved_model.save(server, str(directory), signatures=server.signatures())
    if "word2vec" in formats:
        write_word2vec_text(directory / WORD2VEC_TEXT, trained.words, trained.vectors)
    if "word2vec-binary" in formats:
        write_word2vec_binary(directory / WORD2VEC_BINARY, trained.words, trained.vectors)
    if "tsv" in formats:
        write_projector_tsv(directory, trained.words, trained.vectors)


def move_into_place(temporary: pathlib.Path, final: pathlib.Path) -> None:
    """Renames the finished version into place. An old version being overwritten is first moved aside, so a
    failed rename can put it back; a directory cannot be swapped in one rename, so for that moment neither shows."""
    if not final.exists():
        os.rename(temporary, final)
        return
    aside = final.with_name(f".replaced-{final.name}-{os.getpid()}")
    os.rename(final, aside)
    try:
        os.rename(temporary, final)
    except BaseException:
        os.rename(aside, final)
        raise
    shutil.rmtree(aside)
