"""Files written whole or not at all, and a file's SHA-256: the one implementation every program uses.

A crash, a power cut or a full disk in the middle of a write must leave the old file or the new one, never half of
each. So the new content goes to a temporary file in the same folder (same filesystem: the rename is atomic), is
flushed to the disk (fsync), and replaces the old file with `os.replace`; then the folder itself is synced, or the
rename may be lost on power loss (ext4 and f2fs on SD cards keep directory entries in the folder's own blocks).

The temporary name is unique per writer (mkstemp), so two processes writing the same file (the running agent and
its terminal commands) never write into each other's temporary file. A secret is created with mode 0600 from its
first byte: never briefly readable by others.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, *, mode: int | None = None, durable: bool = True) -> None:
    """Replace `path` with `data`, whole or not at all. `mode` (e.g. 0o600) is set before any byte is written.
    `durable=False` skips the fsyncs, for files that are only a cache (a crash may lose the new content, never
    mix it with the old)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # a full disk: leave no half-written copy taking what space is left
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a folder's entries durable: a rename or a new file in it survives a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Every file and folder below `root`, and `root` itself, flushed to the disk (before it is renamed into use)."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file's bytes, read in chunks (hashlib.file_digest: no Python loop per chunk)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
