"""File systems the tests mount for themselves: a small tmpfs to fill up, and read-only bind mounts.

Mounting needs root (CI runs the tests as root); where it is not permitted, `why_mounting_is_not_permitted` says
why, for a skip. Every mount is undone when its `with` block ends, however it ends.
"""

import contextlib
import errno
import functools
import os
import pathlib
import subprocess
import tempfile
from collections.abc import Iterator

# The name every test tmpfs shows in /proc/mounts, so that a leftover one is easy to find (and to tell apart
# from other sessions' mounts on a shared machine).
TMPFS_NAME = "i15-word2vec-test"


def run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise OSError(f"{' '.join(command)} failed: {result.stderr.strip()}")


def unmount(path: pathlib.Path) -> None:
    """Unmounts `path`, lazily if a process still has files open there."""
    if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@functools.cache
def why_mounting_is_not_permitted() -> str | None:
    """None when this process may mount a tmpfs; else the reason, for pytest.skip."""
    if os.geteuid() != 0:
        return "mounting a tmpfs or a read-only bind mount needs root (CI runs the tests as root)"
    probe = pathlib.Path(tempfile.mkdtemp(prefix="mount-probe-"))
    try:
        with tmpfs(probe, "64k"):
            pass
    except OSError as error:
        return f"mounting is not permitted here: {error}"
    finally:
        probe.rmdir()
    return None


def mount_tmpfs(path: pathlib.Path, size: str) -> None:
    """Mounts a tmpfs of `size` (mount's syntax: 256k, 2m) at `path`, made if missing."""
    path.mkdir(parents=True, exist_ok=True)
    run("mount", "-t", "tmpfs", "-o", f"size={size}", TMPFS_NAME, str(path))


def mount_read_only(path: pathlib.Path) -> None:
    """Bind-mounts `path` read-only over itself: everything under it becomes read-only."""
    run("mount", "--bind", str(path), str(path))
    try:
        run("mount", "-o", "remount,ro,bind", str(path))
    except OSError:
        unmount(path)
        raise


@contextlib.contextmanager
def tmpfs(path: pathlib.Path, size: str) -> Iterator[pathlib.Path]:
    """A tmpfs of `size` mounted at `path` for the block."""
    mount_tmpfs(path, size)
    try:
        yield path
    finally:
        unmount(path)


@contextlib.contextmanager
def read_only(path: pathlib.Path) -> Iterator[pathlib.Path]:
    """`path` read-only for the block."""
    mount_read_only(path)
    try:
        yield path
    finally:
        unmount(path)


def fill(directory: pathlib.Path, leave: int = 0) -> pathlib.Path:
    """Writes a ballast file in `directory` until its file system is full, then frees `leave` bytes of it (a tmpfs
    gives them back at once); returns the ballast, whose removal frees the space again."""
    ballast = directory / "ballast"
    descriptor = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    block = b"\0" * 4096
    try:
        while True:
            os.write(descriptor, block)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
    finally:
        os.close(descriptor)
    if leave:
        os.truncate(ballast, max(ballast.stat().st_size - leave, 0))
    return ballast
