"""Writing files where the disk may be full or read-only: a write that fails for lack of space or permission becomes
one line naming what could not be written, where, and how much space is free there.

Python reports such a failure as an OSError with an errno; TensorFlow as an OpError whose message reads
`PATH; No space left on device` (a ResourceExhaustedError: SaveV2, the tf.data cache, summary writers) or
`PATH; Read-only file system` (a PermissionDeniedError). Both become a ResourceError, which the entry points
print as one line with exit code 1. TensorFlow is never imported here.
"""

import contextlib
import errno
import os
import pathlib
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import IO

from errors import ResourceError

# What a failed write says, by errno; TensorFlow's C++ file system puts the same strerror text in its messages.
REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "file too large",
}
TENSORFLOW_REASONS = {os.strerror(number): reason for number, reason in REASONS.items()}


def size_text(size: float) -> str:
    """A size in bytes for people, in powers of 1000: `0 bytes`, `812 bytes`, `12.3 KB`, `4.5 GB`."""
    if size < 1000:
        return f"{int(size):,} bytes"
    for unit in ("KB", "MB", "GB", "TB", "PB"):
        size /= 1000
        if size < 1000 or unit == "PB":
            return f"{size:,.1f} {unit}"
    raise AssertionError("unreachable")


def shown(path: str | os.PathLike) -> str:
    """A path as messages show it: relative to the working directory when it lies inside it, else as it is."""
    text = os.fspath(path)
    if os.path.isabs(text):
        relative = os.path.relpath(text)
        if not relative.startswith(".."):
            return relative
    return text


def free_space(path: str | os.PathLike) -> int | None:
    """Bytes this user may still write on the file system that holds `path` (or its nearest existing parent)."""
    absolute = pathlib.Path(os.path.abspath(path))
    for candidate in (absolute, *absolute.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def first_missing(path: pathlib.Path) -> pathlib.Path | None:
    """The outermost of `path` and its parents that does not exist yet: what mkdir(parents=True) would create."""
    missing = None
    for candidate in (path, *path.absolute().parents):
        if candidate.exists():
            return missing
        missing = candidate
    return missing


def unwritable_reason(folder: str | os.PathLike) -> str | None:
    """Why files cannot be made in `folder` ("is on a read-only file system", "is not writable (permission
    denied)"), or None when they can."""
    if os.access(folder, os.W_OK):
        return None
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        return "is on a read-only file system"
    return "is not writable (permission denied)"


def failed_write(error: BaseException) -> tuple[str, str] | None:
    """(path, reason) when `error` is a write refused for lack of space or permission; None for any other error."""
    if isinstance(error, OSError) and error.errno in REASONS:
        return os.fsdecode(error.filename or ""), REASONS[error.errno]
    message = getattr(error, "message", None)  # Only TensorFlow's OpError carries one.
    if not isinstance(message, str):
        return None
    # Eager ops put `PATH; REASON` on the first line; a compiled function's "Graph execution error" puts it after
    # the Python lines of the op that failed.
    for line in re.sub(r"\{\{[^}]*\}\}\s*", "", message).strip().split("\n"):
        for text, reason in TENSORFLOW_REASONS.items():
            if f"; {text}" in line:
                return line.split(f"; {text}")[0].strip(), reason
    return None


def write_failure_line(what: str, where: str | os.PathLike, reason: str, hint: str = "") -> str:
    """`cannot write WHAT to WHERE: REASON (N free there); HINT` (`cannot write WHERE: ...` without a `what`)."""
    free = free_space(where)
    free_text = f"{size_text(free)} free there" if free is not None else "free space unknown"
    target = f"{what} to {shown(where)}" if what else shown(where)
    return f"cannot write {target}: {reason} ({free_text})" + (f"; {hint}" if hint else "")


class WriteError(ResourceError):
    """A write refused for lack of space or permission: what, where, why, and (once a caller knows) what to do."""

    def __init__(self, what: str, where: str | os.PathLike, reason: str, hint: str = ""):
        super().__init__(write_failure_line(what, where, reason, hint))
        self.what, self.where, self.reason, self.hint = what, where, reason, hint


@contextlib.contextmanager
def writing(what: str, where: str | os.PathLike, hint: str = "") -> Iterator[None]:
    """Turns a write inside the block that fails for lack of space or permission into a one-line WriteError naming
    `what`, `where` and the free space there; any other error passes through unchanged."""
    try:
        yield
    except ResourceError:
        raise
    except Exception as error:
        failure = failed_write(error)
        if failure is None:
            raise
        raise WriteError(what, where, failure[1], hint) from error


def write_atomically(path: pathlib.Path, write: Callable[[IO], None], what: str, binary: bool = False) -> None:
    """Writes a file through a temporary sibling renamed over it, so the old content stays whole until the new is
    complete. A write that fails leaves no temporary file behind (on a full disk it would hold the last free
    bytes) and becomes a one-line ResourceError."""
    temporary = path.with_name(path.name + ".tmp")
    with writing(what, path):  # Outside the cleanup below, so that the free space it reports is after it.
        try:
            with open(temporary, "wb" if binary else "w", encoding=None if binary else "utf-8") as out:
                write(out)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise


def write_text_atomically(path: pathlib.Path, text: str, what: str) -> None:
    write_atomically(path, lambda out: out.write(text), what)


def file_system_type(path: str | os.PathLike) -> str:
    """The type of the file system holding `path` or its nearest existing parent (`ext4`, `tmpfs`, ...), from
    /proc/self/mounts; empty when unknown."""
    absolute = pathlib.Path(os.path.realpath(path))
    try:
        mounts = pathlib.Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return ""
    best, best_type = None, ""
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        # Spaces, tabs and newlines in mount points are written as octal escapes (\040).
        point = pathlib.Path(re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), fields[1]))
        if (point == absolute or point in absolute.parents) and (best is None or len(point.parts) >= len(best.parts)):
            best, best_type = point, fields[2]
    return best_type


class ScratchDirectory:
    """A directory made empty now and removed, with all it holds, when the `with` block ends: what
    tempfile.TemporaryDirectory does, at a fixed place, so that what a killed process leaves there (SIGKILL, the
    kernel's out-of-memory killer) is found and removed by the next one. `what` names it in a failed write's line.
    """

    def __init__(self, path: pathlib.Path, what: str):
        self.name = str(path)
        shutil.rmtree(path, ignore_errors=True)
        with writing(what, path):
            path.mkdir(parents=True)

    def __enter__(self) -> str:
        return self.name

    def __exit__(self, *exc_info) -> None:
        shutil.rmtree(self.name, ignore_errors=True)


def process_temporary_directory(prefix: str) -> tempfile.TemporaryDirectory:
    """A TemporaryDirectory named `<prefix><pid>-...` after this process. Those of processes no longer running
    (killed by SIGKILL or the out-of-memory killer, which no cleanup outlives) are removed first, so a killed
    run's temporary files last only until the next run."""
    remove_those_of_ended_processes(prefix)
    return tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-")


def process_temporary_file(prefix: str, suffix: str) -> pathlib.Path:
    """The path `<prefix><pid>-<suffix>` in the temporary directory, named after this process (not created).
    Those of processes no longer running are removed first, as by `process_temporary_directory`."""
    remove_those_of_ended_processes(prefix)
    return pathlib.Path(tempfile.gettempdir()) / f"{prefix}{os.getpid()}-{suffix}"


def remove_those_of_ended_processes(prefix: str) -> None:
    """Removes the files and folders `<prefix><pid>-...` of the temporary directory whose process has ended."""
    for path in pathlib.Path(tempfile.gettempdir()).glob(f"{prefix}*-*"):
        pid = path.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not process_running(int(pid)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def process_running(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Another user's process.
        return True
    return True
