"""An append-only, hash-chained audit log file, the device's and the console's own: every change (pairings,
uploads, rejections, checks, activations, rollbacks, rollouts) as one JSON line.

Each line is written and fsynced before the change it records is reported done, so a `kill -9` never loses an
entry for something that happened. A torn last line (power cut mid-write) is detected and set aside, never
silently dropped. Each append holds the file's lock (`<log>.lock`): one writer at a time across processes.
`edge-agent audit verify` checks the chain (core/audit/chain.py); core/audit/anchor.py signs its head.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path

from edge_console.core import bounded_json
from edge_console.core.audit.chain import GENESIS, ChainReport, make_entry, verify_chain
from edge_console.core.disk_reserve import essential
from edge_console.core.file_lock import exclusive

log = logging.getLogger(__name__)
MAX_LINE = 64 * 1024  # an entry is a few hundred bytes; a longer line is not one of ours


class AuditLog:
    """One log file. Any number of writers (the running agent, `edge-agent` commands on the device's terminal, two
    parts of the console) may hold an AuditLog on the same file: each append takes the file's lock and continues
    the chain from the entry last written to the file, not from what this object saw, so the log has one writer
    at a time and never two entries with the same number."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # the event loop and the update worker both append
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        with self._writing():
            self._set_aside_torn_tail()

    @contextlib.contextmanager
    def _writing(self):
        with self._lock, exclusive(self._lock_path):
            yield

    def _set_aside_torn_tail(self) -> None:
        """A last line with no newline is a write that never finished (power cut): moved to a side file, so the next
        entry starts a line of its own. Called with the lock held."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size == 0:
            return
        with open(self.path, "r+b") as f:
            f.seek(max(0, size - MAX_LINE))
            tail = f.read()
            if tail.endswith(b"\n"):
                return
            cut = tail.rfind(b"\n") + 1  # 0 when the whole window is one torn line
            torn = tail[cut:]
            essential(lambda: _append(self.path.with_name(self.path.name + ".torn"), torn + b"\n"))
            f.truncate(size - len(torn))
            os.fsync(f.fileno())
        log.warning("audit log: a torn last entry (an interrupted write) was set aside in %s.torn", self.path.name)

    def _last(self) -> tuple[int, str]:
        """(seq, hash) of the last readable entry in the file: where the next entry continues the chain."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return 0, GENESIS
        window = 4 * MAX_LINE
        with open(self.path, "rb") as f:
            while True:
                f.seek(max(0, size - window))
                lines = f.read().split(b"\n")
                for line in lines[::-1]:
                    try:
                        last = bounded_json.loads(line)
                        return int(last["seq"]), str(last["hash"])
                    except (ValueError, KeyError, TypeError, OverflowError):
                        continue  # verify() reports it; the chain continues from the last readable entry
                if window >= size:
                    return 0, GENESIS
                window *= 4

    def last(self) -> tuple[int, str]:
        """(seq, hash) of the newest entry: the chain's head, to be signed (core/audit/anchor.py)."""
        with self._lock:
            return self._last()

    def append(self, actor: str, event: str, **details) -> dict:
        with self._writing():
            self._set_aside_torn_tail()
            seq, head = self._last()
            entry = make_entry(seq + 1, head, time.time(), actor, event, details)
            line = json.dumps(entry, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"
            essential(lambda: self._write_line(line))
        return entry

    def _write_line(self, line: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                rest = memoryview(line)
                while rest:  # a nearly full disk takes part of a line: write the rest, or fail below
                    rest = rest[os.write(fd, rest):]
                os.fsync(fd)
            except OSError:
                # Cut off what part of the line got in, so the next entry starts a line of its own and the
                # chain stays readable; the caller learns the entry was not written.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)

    def entries(self, after_seq: int = 0, limit: int | None = None) -> list[dict]:
        out = []
        with self._lock, open(self.path, "rb") if self.path.exists() else open(os.devnull, "rb") as f:
            for raw in f:
                if len(raw) > MAX_LINE:
                    continue
                try:
                    entry = bounded_json.loads(raw)
                except ValueError:
                    continue
                if isinstance(entry, dict) and isinstance(entry.get("seq"), int) and entry["seq"] > after_seq:
                    out.append(entry)
                    if limit is not None and len(out) >= limit:
                        break
        return out

    def verify(self, expect_head: str | None = None) -> ChainReport:
        """Every line, including ones that no longer parse (a parse failure is a broken chain)."""
        def parsed():
            if not self.path.exists():
                return
            with open(self.path, "rb") as f:
                for raw in f:
                    try:
                        yield bounded_json.loads(raw)
                    except ValueError:
                        yield None
        return verify_chain(parsed(), expect_head)


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)
