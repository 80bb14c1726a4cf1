"""Snapshot and timestamp versions: the order of deliveries, and how a signer stays above what devices hold.

TUF refuses a timestamp or snapshot whose version is below the newest one it has accepted (a replay). Our
versions are the signing time in milliseconds, so deliveries from the release machine and from several consoles
stay in order without sharing a counter. But a signer whose clock once ran fast leaves devices holding a version
from the future, and every later, correctly signed delivery would be refused as a replay until real time caught
up. So:

- no signer goes below what it has signed before: a high-water mark kept beside its keys (`VersionMark`; the
  release authority's folder, the console's data folder), which also keeps two deliveries signed in the same
  millisecond apart (TUF takes an equal timestamp version for "nothing new" and keeps its cached targets);
- a signer can be told to go above a version a device holds: a console asks each device before a push
  (`GET /v1/release-trust`, `held`), the release authority takes `edge-bundle sign --after-version N`.

Replay protection is unchanged: a delivery signed before keeps its lower version and is still refused.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from edge_console.core.atomic_files import write_atomic

MAX_VERSION = 2**53 - 1  # beyond this a version is nonsense (and not exact in every JSON reader)
# How far ahead of this clock a version a device reports is still taken for a signer's fast clock. Beyond it the
# report is not honoured: a hostile device could otherwise push every later delivery towards MAX_VERSION.
MAX_AHEAD_MS = 10 * 366 * 86_400_000

_lock = threading.Lock()
_last_in_process = [0]


class VersionError(ValueError):
    """A version asked for is out of range; the message says which and why."""


def read_mark(path: Path) -> int:
    """The highest version signed from this place; 0 when none is recorded (or the record is unreadable: then the
    clock and `above` are all there is, as for a signer that lost its folder)."""
    try:
        value = json.loads(path.read_text()).get("last_version", 0)
    except (OSError, ValueError, AttributeError):
        return 0
    return min(value, MAX_VERSION + 1) if isinstance(value, int) and value >= 0 else 0


class VersionMark:
    """The versions one signer hands out: above the clock, above every version it signed before (kept in `path`,
    when given), and above `above` (a version a device holds)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else None

    def next(self, above: int = 0) -> int:
        if not isinstance(above, int) or not 0 <= above < MAX_VERSION:
            raise VersionError(f"version {above!r} is out of range: a snapshot/timestamp version is a whole number "
                               f"from 0 to {MAX_VERSION - 1}")
        with _lock:
            mark = read_mark(self.path) if self.path is not None else 0
            version = max(int(time.time() * 1000), mark + 1, _last_in_process[0] + 1, above + 1)
            if version > MAX_VERSION:
                raise VersionError(f"no snapshot/timestamp version is left above {version - 1} (the largest is "
                                   f"{MAX_VERSION}): the version recorded in {self.path} is out of range")
            if self.path is not None:
                self._write(version)
            _last_in_process[0] = max(_last_in_process[0], version)
            return version

    def _write(self, version: int) -> None:
        """Before the version is used: a signer that stops after signing still remembers it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps({"last_version": version, "signed_at": round(time.time(), 3)}).encode())


def reported_version(value: object, now_ms: int | None = None) -> int:
    """A version a device reports (untrusted): a whole number, at most MAX_AHEAD_MS ahead of this clock; else 0
    (not honoured: that device refuses the delivery, and its refusal names the recovery)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= now_ms + MAX_AHEAD_MS
    return value if ok else 0
