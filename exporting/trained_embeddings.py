"""Reads what an export needs from a model directory: E from the latest checkpoint, the vocabulary, the step."""

import dataclasses
import pathlib
import re

import numpy as np
import tensorflow as tf

from data_pipeline.vocabulary import Vocabulary
from errors import UserError
from training.checkpoints import Progress, latest_listed_checkpoint
from training.model_directory import ModelDirectory
from training.preflight import listed_checkpoint
from training.rounds import finish_committed_update

EMBEDDINGS_KEY = "E/.ATTRIBUTES/VARIABLE_VALUE"


@dataclasses.dataclass(frozen=True)
class TrainedEmbeddings:
    """E (V x D) with its words in id order, the training step it was saved at, and the tokeniser it expects."""

    words: tuple[str, ...]
    vectors: np.ndarray
    step: int
    token_pattern: str

    @property
    def embedding_dim(self) -> int:
        return int(self.vectors.shape[1])


def read_trained_embeddings(model_dir: pathlib.Path, which: str = "latest") -> TrainedEmbeddings:
    """E and the step from the latest checkpoint of `model_dir` (or, with `which="best"`, the checkpoint of
    the best epoch that --keep-best kept), with its vocabulary and token pattern.

    The checkpoint also holds W, its bias and the optimizer: they are left unread (`expect_partial`), and the
    restore must match E and the progress counters, so a checkpoint without them is an error, not zeros.
    """
    directory = ModelDirectory(model_dir)
    if not directory.root.is_dir():
        raise UserError(f"--model-dir {model_dir} does not exist; give the directory train.py wrote")
    finish_committed_update(directory)  # A new round's files, if a kill cut short moving them into place.
    checkpoint_path = best_checkpoint(directory) if which == "best" else latest_checkpoint(directory)
    config = directory.saved_config()
    if config is None:
        raise UserError(f"{directory.config_path} is missing: {model_dir} was not written by train.py")
    vocabulary = saved_vocabulary(directory)

    embeddings = tf.Variable(tf.zeros(embeddings_shape(checkpoint_path), tf.float32), name="E")
    progress = Progress()
    try:
        status = tf.train.Checkpoint(E=embeddings, progress=progress).restore(checkpoint_path).expect_partial()
        status.assert_existing_objects_matched()
    except Exception as error:  # noqa: BLE001 - a damaged file fails in many ways (IndexError, DataLossError, ...).
        raise UserError(f"checkpoint {checkpoint_path} cannot be read ({one_line(error)})") from None
    if len(vocabulary) != embeddings.shape[0]:
        raise UserError(f"{directory.vocabulary_path} has {len(vocabulary):,} words but E in {checkpoint_path} has "
                        f"{embeddings.shape[0]:,} rows: the vocabulary does not belong to this checkpoint")
    return TrainedEmbeddings(vocabulary.words, embeddings.numpy(), int(progress.step), config.data.token_pattern)


def latest_checkpoint(directory: ModelDirectory) -> str:
    checkpoint_path = listed_checkpoint(directory)  # Refuses a damaged list instead of reading it as no checkpoint.
    if checkpoint_path is None:
        raise UserError(f"no checkpoint in {directory.checkpoints}: train first with "
                        f"`python train.py --model-dir {directory.root}`")
    return checkpoint_path


def best_checkpoint(directory: ModelDirectory) -> str:
    """The checkpoint `train.py --keep-best SCORE` kept for the best epoch, in model_dir/best."""
    try:
        path = latest_listed_checkpoint(str(directory.best))
    except (tf.errors.OpError, ValueError):
        path = None
    if path is None:
        raise UserError(f"no best checkpoint in {directory.best}: train with --keep-best SCORE (e.g. "
                        "--keep-best eval/analogy with --eval-analogies FILE) to keep one")
    return path


def embeddings_shape(checkpoint_path: str) -> list[int]:
    """E's shape, once E's bytes have been read and their checksum checked: a damaged file fails here, before a
    restore that would fail half-way and leave TensorFlow warning about values it never restored."""
    try:
        reader = tf.train.load_checkpoint(checkpoint_path)
        if not reader.has_tensor(EMBEDDINGS_KEY):
            raise UserError(f"checkpoint {checkpoint_path} holds no E: it was not written by train.py")
        return list(reader.get_tensor(EMBEDDINGS_KEY).shape)
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - as above: any failure to read it means a damaged checkpoint.
        raise UserError(f"checkpoint {checkpoint_path} cannot be read ({one_line(error)})") from None


def saved_vocabulary(directory: ModelDirectory) -> Vocabulary:
    if not directory.vocabulary_path.exists():
        raise UserError(f"{directory.vocabulary_path} is missing: {directory.root} was not written by train.py")
    try:
        return Vocabulary.load(str(directory.vocabulary_path))
    except UserError:
        raise
    except ValueError as error:
        raise UserError(f"{directory.vocabulary_path} cannot be read ({one_line(error)})") from None


def one_line(error: Exception) -> str:
    """The first line of an error's message: TensorFlow's messages run to many lines of C++ context."""
    message = re.sub(r"\{\{[^}]*\}\}\s*|\s*\[Op:\w+\]", "", str(error)).strip() or type(error).__name__
    return message.splitlines()[0]
