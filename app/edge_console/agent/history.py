"""Telemetry history on the device: a bounded SQLite ring buffer, so a console that was away can fill its gap.

Plain sqlite3 (stdlib) keeps the device install small. Rows older than the retention are deleted in batches;
the row count is also capped, so a clock jump cannot let the file grow without bound.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

RETENTION_S = 26 * 3600  # a little over the promised 24 h at 1 Hz
MAX_ROWS = 26 * 3600
PRUNE_EVERY = 300  # inserts between prunes: a DELETE per second would be wasted work
MAX_PAGE = 3600


class TelemetryHistory:
    def __init__(self, path: Path, retention_s: float = RETENTION_S, max_rows: int = MAX_ROWS):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.retention_s = retention_s
        self.max_rows = max_rows
        self._lock = threading.Lock()  # one connection shared by the executor's threads
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS samples (ts REAL PRIMARY KEY, body TEXT NOT NULL)")
        self._inserts = 0

    def add(self, sample: dict) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO samples (ts, body) VALUES (?, ?)",
                             (float(sample["ts"]), json.dumps(sample, separators=(",", ":"))))
            self._inserts += 1
            if self._inserts % PRUNE_EVERY == 0:
                self._prune(float(sample["ts"]))

    def _prune(self, now: float) -> None:
        self._db.execute("DELETE FROM samples WHERE ts < ?", (now - self.retention_s,))
        self._db.execute(
            "DELETE FROM samples WHERE ts <= (SELECT ts FROM samples ORDER BY ts DESC LIMIT 1 OFFSET ?)",
            (self.max_rows,),
        )

    def since(self, ts: float, limit: int = MAX_PAGE) -> tuple[list[dict], bool]:
        """Samples with ts > `ts`, oldest first, at most `limit`; the flag says whether more remain."""
        limit = max(1, min(limit, MAX_PAGE))
        with self._lock:
            rows = self._db.execute("SELECT body FROM samples WHERE ts > ? ORDER BY ts LIMIT ?",
                                    (ts, limit + 1)).fetchall()
        return [json.loads(r[0]) for r in rows[:limit]], len(rows) > limit

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
