"""What a run's corpus is, file by file, so that a resumed run can tell the same corpus from another.

Each file is recorded by its absolute path, its size and a fingerprint: the SHA-256 of its size, its first and its
last 64 KiB. Reading 128 KiB takes no time on any corpus, and catches a file appended to, truncated, replaced or
edited near either end; an edit in the middle that keeps the size is not caught (hashing all of a 10 GB corpus at
every resume would take a minute). Where the files lie may change (a corpus moved elsewhere is the same corpus);
their order may not, since it decides the order of the lines and so what a checkpoint's data position means.
"""

import hashlib
import os

import tensorflow as tf

from storage import shown

FINGERPRINT_BYTES = 64 * 1024  # read from each end of a file


def absolute_path(path: str) -> str:
    """A local path or glob made absolute, so that a resume from another directory reads the same files; a URL
    (gs://, s3://, ...) as it is."""
    return path if "://" in path else os.path.abspath(path)


def fingerprint(path: str) -> tuple[int, str]:
    """(size in bytes, SHA-256 of the size and the first and last FINGERPRINT_BYTES) of a file."""
    with tf.io.gfile.GFile(path, "rb") as file:
        size = file.size()
        content = file.read(FINGERPRINT_BYTES)
        if size > FINGERPRINT_BYTES:
            file.seek(max(size - FINGERPRINT_BYTES, FINGERPRINT_BYTES))
            content += file.read()
    return size, hashlib.sha256(str(size).encode() + b"\n" + content).hexdigest()


def corpus_identity(files: list[str]) -> list[dict]:
    """For each file in reading order: its absolute `path`, its size in `bytes` and its `fingerprint`."""
    identity = []
    for path in files:
        size, digest = fingerprint(path)
        identity.append({"path": absolute_path(path), "bytes": size, "fingerprint": digest})
    return identity


def listed(items: list[str], limit: int = 3) -> str:
    shown_items = ", ".join(items[:limit])
    return shown_items + (f" and {len(items) - limit:,} more" if len(items) > limit else "")


def corpus_change(saved: list[dict], current: list[dict]) -> str | None:
    """What differs between the corpus a run trained on and the one it is given now, in words; None when both
    are the same files' content in the same order, wherever the files now lie."""
    key = lambda file: (file["bytes"], file["fingerprint"])
    if [key(file) for file in saved] == [key(file) for file in current]:
        return None
    saved_keys, current_keys = {key(file) for file in saved}, {key(file) for file in current}
    gone = [file for file in saved if key(file) not in current_keys]
    new = [file for file in current if key(file) not in saved_keys]
    gone_paths = {file["path"]: file for file in gone}
    changed = [(gone_paths[file["path"]], file) for file in new if file["path"] in gone_paths]
    changed_paths = {file["path"] for _, file in changed}
    parts = [f"{shown(now['path'])} changed ({then['bytes']:,} bytes then, {now['bytes']:,} now)"
             for then, now in changed]
    added = [shown(file["path"]) for file in new if file["path"] not in changed_paths]
    removed = [shown(file["path"]) for file in gone if file["path"] not in changed_paths]
    if added:
        parts.append(f"{listed(added)} {'is' if len(added) == 1 else 'are'} new")
    if removed:
        parts.append(f"{listed(removed)} {'is' if len(removed) == 1 else 'are'} no longer in it")
    return "; ".join(parts) or "the same files are read in another order"
