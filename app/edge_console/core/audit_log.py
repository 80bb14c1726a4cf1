"""An append-only, hash-chained audit log file, the device's and the console's own: every change (pairings,
uploads, rejections, checks, activations, rollbacks, rollouts) as one JSON line.

Each line is written and fsynced before the change it records is reported done, so a `kill -9` never loses an
entry for something that happened. A torn last line (power cut mid-write) is detected on open and set aside,
never silently dropped. `edge-agent audit verify` checks the chain (core/audit_chain.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from pathlib import Path

from . import bounded_json
from .audit_chain import GENESIS, ChainReport, make_entry, verify_chain

log = logging.getLogger(__name__)
MAX_LINE = 64 * 1024  # an entry is a few hundred bytes; a longer line is not one of ours


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # the event loop and the update worker both append
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._seq, self._head = self._recover()

    def _recover(self) -> tuple[int, str]:
        """The last good entry; a torn final line (a write cut by power loss) is moved to a side file."""
        if not self.path.exists():
            return 0, GENESIS
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        tail = lines[-1]
        if tail:  # no newline at the end: the last write never finished
            (self.path.with_name(self.path.name + ".torn")).write_bytes(tail)
            with open(self.path, "r+b") as f:
                f.truncate(len(data) - len(tail))
                os.fsync(f.fileno())
            log.warning("audit log: a torn last entry (an interrupted write) was set aside in %s.torn", self.path.name)
        seq, head = 0, GENESIS
        for line in lines[:-1][::-1]:
            try:
                last = bounded_json.loads(line)
                seq, head = int(last["seq"]), str(last["hash"])
                break
            except (ValueError, KeyError, TypeError, OverflowError):
                continue  # verify() reports it; appending still continues the chain from the last readable entry
        return seq, head

    def append(self, actor: str, event: str, **details) -> dict:
        with self._lock:
            entry = make_entry(self._seq + 1, self._head, time.time(), actor, event, details)
            line = json.dumps(entry, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"
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
            self._seq, self._head = entry["seq"], entry["hash"]
        return entry

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
