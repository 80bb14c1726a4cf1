"""Files written whole or not at all, and a file's SHA-256: the one implementation every program uses.

A crash, a power cut or a full disk in the middle of a write must leave the old file or the new one, never half of
each. So the new content goes to a temporary file in the same folder (same filesystem: the rename is atomic), is
flushed to the disk (fsync), and replaces the old file with `os.replace`; then the folder itself is synced, or the
rename may be lost on power loss (ext4 and f2fs on SD cards keep directory entries in the folder's own blocks).

The temporary name is unique per writer (O_EXCL on a random name, as mkstemp does), so two processes writing the
same file (the running agent and its terminal commands) never write into each other's temporary file. A secret is
created with mode 0600 from its first byte: never briefly readable by others. Without a mode, a file gets what
`open()` would give it (0666 less the umask): a release file or a kit's SHA256SUMS stays readable by other users.

A folder whose files belong together (release trust: a root and the metadata accepted under it) is replaced the
same way, whole: the new one is written and synced beside it, then swapped in by two renames (`replace_folder`).
A crash between them leaves the old folder aside and the new one complete; `recover_folder`, run before the folder
is used again, puts the old one back, so what is found is wholly the old folder or wholly the new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)  # O_BINARY: Windows, where consoles run


def _create_temporary(path: Path, mode: int | None) -> tuple[int, Path]:
    """A new, empty file beside `path` under a name no other writer has; its permissions set before any byte."""
    for _attempt in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
        try:
            fd = os.open(tmp, _CREATE, 0o666 if mode is None else mode)
        except FileExistsError:
            continue
        if mode is not None:
            os.fchmod(fd, mode)  # exactly `mode`, whatever the umask took away
        return fd, tmp
    raise FileExistsError(f"no free temporary name beside {path}")


@contextlib.contextmanager
def replacing(path: Path, *, mode: int | None = None, durable: bool = True) -> Iterator[BinaryIO]:
    """A file to write the new content of `path` into; it replaces `path` when the block ends without an error,
    and is removed when it does not. For content too large to hold in memory (a release file, a bundle)."""
    path = Path(path)
    fd, tmp = _create_temporary(path, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
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


def write_atomic(path: Path, data: bytes, *, mode: int | None = None, durable: bool = True) -> None:
    """Replace `path` with `data`, whole or not at all. `mode` (e.g. 0o600) is set before any byte is written.
    `durable=False` skips the fsyncs, for files that are only a cache (a crash may lose the new content, never
    mix it with the old)."""
    with replacing(path, mode=mode, durable=durable) as f:
        f.write(data)


def fsync_dir(path: Path) -> None:
    """Make a folder's entries durable: a rename or a new file in it survives a power cut."""
    if os.name == "nt":  # pragma: no cover - NTFS journals its folders itself, and a folder cannot be opened to sync
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Every file and folder below `root`, and `root` itself, flushed to the disk (before it is renamed into use)."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY | getattr(os, "O_BINARY", 0))
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


def _new_and_aside(target: Path) -> tuple[Path, Path]:
    return target.with_name(f".{target.name}.new"), target.with_name(f".{target.name}.old")


def replace_folder(target: Path, fill: Callable[[Path], None]) -> None:
    """Replace the folder `target` (or create it) by one that `fill(folder)` writes: whole or not at all, with
    `recover_folder` after a crash. One writer at a time: callers that may race hold a lock around it."""
    target = Path(target)
    recover_folder(target)
    new, aside = _new_and_aside(target)
    new.mkdir(parents=True)
    try:
        fill(new)
        fsync_tree(new)  # every byte on the disk before the renames make it the folder in use
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)  # a full disk: the half-written folder gives its space back
        raise
    had_old = target.exists()
    if had_old:
        os.replace(target, aside)
    os.replace(new, target)  # from here on the new folder is the one in use
    fsync_dir(target.parent)
    if had_old:
        shutil.rmtree(aside)


def interrupted(target: Path) -> bool:
    """Whether a `replace_folder` of `target` was cut short (something is left beside it for recover_folder)."""
    return any(leftover.exists() for leftover in _new_and_aside(Path(target)))


def recover_folder(target: Path) -> bool:
    """Finish what a crash in `replace_folder` left: the old folder back if it was cut between its two renames,
    and no leftover beside it. True when something was left."""
    target = Path(target)
    if not interrupted(target):
        return False
    new, aside = _new_and_aside(target)
    if aside.exists() and not target.exists():  # the new one was never in use: the old one comes back
        os.replace(aside, target)
    for leftover in (new, aside):
        if leftover.exists():
            shutil.rmtree(leftover)
    fsync_dir(target.parent)
    return True


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file's bytes, read in chunks (hashlib.file_digest: no Python loop per chunk)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
