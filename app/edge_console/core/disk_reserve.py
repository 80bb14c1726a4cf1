"""Room for the writes a device cannot do without (pairings, update records, the audit log) when its disk is full.

A full disk on a device is ordinary (a log that grew, another program's files): the agent must still be able to
record a pairing, an update's verdict or an audit entry then. So the agent keeps a small reserve file in its state
folder; an essential write that meets ENOSPC releases the reserve and tries once more. The agent makes the reserve
again once the disk has room, and says in health that the disk is full meanwhile.

Essential writes go through `essential()`: `write_atomic`, `write_private` and the audit log do. Bulk writes
(uploads, telemetry history) do not: they fail and say so instead of eating the reserve.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)
RESERVE_BYTES = 8 * 2**20  # a few thousand records and audit entries
T = TypeVar("T")
_releasers: list[Callable[[], bool]] = []


def essential(write: Callable[[], T]) -> T:
    """Run `write`; on a full disk, release a reserve (if one is registered and still there) and run it again."""
    try:
        return write()
    except OSError as exc:
        if exc.errno != errno.ENOSPC or not any(release() for release in list(_releasers)):
            raise
    return write()


class DiskReserve:
    """`<folder>/disk-reserve`: RESERVE_BYTES set aside while the disk has room, given back when it is full."""

    def __init__(self, folder: Path, size: int = RESERVE_BYTES) -> None:
        self.path = Path(folder) / "disk-reserve"
        self.size = size
        self.released_at_least_once = False

    @property
    def held(self) -> bool:
        try:
            return self.path.stat().st_size >= self.size
        except OSError:
            return False

    def make(self) -> bool:
        """Set the reserve aside if the disk has room for it and as much again; True when it is held."""
        if self.held:
            return True
        try:
            if shutil.disk_usage(self.path.parent).free < 2 * self.size:
                return False
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)  # real blocks, not a sparse file that would free nothing
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)
            log.info("could not set the disk reserve aside: %s", exc.strerror or exc)
            return False
        return True

    def release(self) -> bool:
        """Give the reserve back to the disk; True if there was one to give."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.error("the disk is full and its reserve could not be released: %s", exc.strerror or exc)
            return False
        self.released_at_least_once = True
        log.warning("the disk is full: released the %d MB reserve so that pairings, update records and the audit "
                    "log can still be written; free space on the device", self.size // 2**20)
        return True

    def register(self) -> None:
        if self.release not in _releasers:
            _releasers.append(self.release)

    def unregister(self) -> None:
        with contextlib.suppress(ValueError):
            _releasers.remove(self.release)
