"""How much memory this process may still take, and one line for an allocation that failed anyway.

The memory available is the least of: what the kernel calls available (`MemAvailable` in /proc/meminfo: free
memory plus the page cache it can reclaim), what the limit of this process's cgroup leaves (v1 or v2, the limits
of its parent cgroups included, its reclaimable page cache counted as free), and what `ulimit -v` leaves of the
address space. `WORD2VEC_MEMORY_AVAILABLE` (bytes, or with a K, M, G or T suffix) replaces the measurement, for
machines where it is too strict (swap) or too loose (memory promised to another job).
"""

import dataclasses
import math
import os
import pathlib
import re
import resource

from errors import UserError
from storage import size_text

OVERRIDE = "WORD2VEC_MEMORY_AVAILABLE"
# A cgroup "limit" at or above this is the kernel's way of saying there is none (v1 writes 2^63 rounded to a page).
NO_LIMIT = 2**60
SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
# Bytes per element of the dtypes TensorFlow names in its out-of-memory messages.
DTYPE_BYTES = {"float": 4, "double": 8, "half": 2, "bfloat16": 2, "int8": 1, "uint8": 1, "int16": 2, "int32": 4,
               "int64": 8, "uint32": 4, "uint64": 8, "bool": 1, "complex64": 8, "complex128": 16}


@dataclasses.dataclass(frozen=True)
class AvailableMemory:
    """Bytes this process may still allocate, and which limit decides it (for the message)."""

    bytes: int
    source: str

    def __str__(self) -> str:
        return f"{size_text(self.bytes)} ({self.source})"


def parse_size(text: str) -> int:
    """`123`, `1.5G`, `800M` -> bytes (powers of 1000, as `size_text` prints them)."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?)B?\s*", text.upper())
    if not match:
        raise UserError(f"{OVERRIDE}={text!r} is not a size: give bytes, or a number with K, M, G or T")
    return int(float(match.group(1)) * SUFFIXES[match.group(2)])


def meminfo_available(proc: pathlib.Path) -> int | None:
    """MemAvailable from /proc/meminfo, in bytes."""
    try:
        text = (proc / "meminfo").read_text()
    except OSError:
        return None
    match = re.search(r"^MemAvailable:\s+(\d+) kB", text, flags=re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def read_number(path: pathlib.Path) -> int | None:
    """A cgroup file's number; None when missing, unreadable or `max` (no limit)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def stat_value(path: pathlib.Path, key: str) -> int:
    """One `key value` line of a cgroup's memory.stat; 0 when absent."""
    try:
        match = re.search(rf"^{key} (\d+)$", path.read_text(), flags=re.MULTILINE)
    except OSError:
        return 0
    return int(match.group(1)) if match else 0


def cgroup_directories(proc: pathlib.Path, cgroup_root: pathlib.Path) -> list[pathlib.Path]:
    """This process's memory cgroup directory and its ancestors up to the root of the hierarchy, innermost first.

    /proc/self/cgroup names the cgroup (`0::/path` in v2, `N:memory:/path` in v1); inside a container the
    hierarchy mounted at /sys/fs/cgroup may already be this process's own, so a path that does not exist there
    falls back to the mount's root.
    """
    try:
        lines = (proc / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            root = cgroup_root / "memory"
            break
    else:
        v2 = [line.split(":", 2)[2] for line in lines if line.startswith("0::")]
        if not v2:
            return []
        root, path = cgroup_root, v2[0]
    directory = root / path.lstrip("/")
    if not directory.is_dir():
        directory = root
    return [directory, *[parent for parent in directory.parents if parent.is_relative_to(root)]]


def cgroup_available(proc: pathlib.Path, cgroup_root: pathlib.Path) -> int | None:
    """What the tightest memory limit among this process's cgroups leaves: limit - usage + reclaimable cache."""
    tightest = None
    for directory in cgroup_directories(proc, cgroup_root):
        if (directory / "memory.max").exists():  # v2
            limit, usage = read_number(directory / "memory.max"), read_number(directory / "memory.current")
            cache = stat_value(directory / "memory.stat", "inactive_file")
        else:  # v1
            limit = read_number(directory / "memory.limit_in_bytes")
            usage = read_number(directory / "memory.usage_in_bytes")
            cache = stat_value(directory / "memory.stat", "total_inactive_file")
        if limit is None or limit >= NO_LIMIT or usage is None:
            continue
        left = max(limit - usage + cache, 0)
        tightest = left if tightest is None else min(tightest, left)
    return tightest


def address_space_available(proc: pathlib.Path) -> int | None:
    """What `ulimit -v` (RLIMIT_AS) leaves of this process's address space; None when unlimited."""
    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    if limit == resource.RLIM_INFINITY:
        return None
    try:
        match = re.search(r"^VmSize:\s+(\d+) kB", (proc / "self" / "status").read_text(), flags=re.MULTILINE)
    except OSError:
        return None
    return max(limit - int(match.group(1)) * 1024, 0) if match else None


def available_memory(proc: pathlib.Path = pathlib.Path("/proc"),
                     cgroup_root: pathlib.Path = pathlib.Path("/sys/fs/cgroup"),
                     environ: dict | None = None) -> AvailableMemory | None:
    """The memory this process may still take, and which limit decides it; None where nothing can be measured."""
    environ = os.environ if environ is None else environ
    if environ.get(OVERRIDE):
        return AvailableMemory(parse_size(environ[OVERRIDE]), OVERRIDE)
    measured = [(meminfo_available(proc), "MemAvailable"), (cgroup_available(proc, cgroup_root), "cgroup limit"),
                (address_space_available(proc), "ulimit -v")]
    known = [(size, source) for size, source in measured if size is not None]
    if not known:
        return None
    size, source = min(known)
    return AvailableMemory(size, source)


def tensor_bytes(shape: list[int], dtype: str) -> int | None:
    if dtype not in DTYPE_BYTES:
        return None
    return math.prod(shape) * DTYPE_BYTES[dtype]


def out_of_memory_line(error: BaseException, hint: str) -> str | None:
    """One line for an allocation that failed (TensorFlow's `OOM when allocating tensor with shape[...]`, or
    Python's MemoryError); None for any other error."""
    message = getattr(error, "message", None)
    if isinstance(error, MemoryError):
        what = "an allocation failed"
    elif isinstance(message, str) and "OOM when allocating" in message:
        match = re.search(r"shape\[([\d,]*)\] and type (\w+)", message)
        what = "TensorFlow could not allocate a tensor"
        if match:
            shape = [int(size) for size in match.group(1).split(",") if size]
            size = tensor_bytes(shape, match.group(2))
            what += f" of shape [{', '.join(f'{length:,}' for length in shape)}]"
            what += f" ({size_text(size)})" if size is not None else ""
    else:
        return None
    try:
        available = available_memory()
    except UserError:  # A malformed override: the line still says what failed.
        available = None
    left = f" with {available} available" if available else ""
    return f"out of memory: {what}{left}; {hint}"
