"""Telemetry history on the device: a bounded SQLite ring buffer, so a console that was away can fill its gap.

Plain sqlite3 (stdlib) keeps the device install small. Rows older than the retention are deleted in batches;
the row count is also capped, so a clock jump cannot let the file grow without bound.

`TelemetryArchive` is the file itself, used from one thread only. `HistoryService` gives it that thread (one
single-thread executor: SQLite needs no lock) and keeps the agent running whatever happens to the file: a
damaged database is moved aside and a fresh one started; a folder that cannot be written falls back to a
history in memory; a full disk skips samples. Each is said once in the log and shown in health.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

RETENTION_S = 26 * 3600  # a little over the promised 24 h at 1 Hz
MAX_ROWS = 26 * 3600
PRUNE_EVERY = 300  # inserts between prunes: a DELETE per second would be wasted work
MAX_PAGE = 3600
NOTICE_S = 3600.0  # how long a replaced history is reported in health (degraded) after it happened


class TelemetryArchive:
    """The SQLite ring buffer. Not thread-safe on purpose: HistoryService calls it from one thread."""

    def __init__(self, path: Path | str, retention_s: float = RETENTION_S, max_rows: int = MAX_ROWS):
        self.path = path
        self.retention_s = retention_s
        self.max_rows = max_rows
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            if path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS samples (ts REAL PRIMARY KEY, body TEXT NOT NULL)")
            problem = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed ({problem})")
        except BaseException:
            self._db.close()
            raise
        self._inserts = 0

    def add(self, sample: dict) -> None:
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

    def since(self, ts: float | None, limit: int = MAX_PAGE) -> tuple[list[dict], bool]:
        """Samples oldest first, at most `limit`, and whether more remain.

        With `ts`: those after it (a console paging forward). Without: the newest `limit` (more = older exist)."""
        limit = max(1, min(limit, MAX_PAGE))
        if ts is None:
            rows = self._db.execute("SELECT body FROM samples ORDER BY ts DESC LIMIT ?", (limit + 1,)).fetchall()
            return [json.loads(r[0]) for r in reversed(rows[:limit])], len(rows) > limit
        rows = self._db.execute("SELECT body FROM samples WHERE ts > ? ORDER BY ts LIMIT ?",
                                (ts, limit + 1)).fetchall()
        return [json.loads(r[0]) for r in rows[:limit]], len(rows) > limit

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]

    def close(self) -> None:
        self._db.close()


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    """A damaged file (move it aside), as opposed to a full disk or a locked/read-only one (keep it)."""
    text = str(exc).lower()
    return not isinstance(exc, sqlite3.OperationalError) or "malformed" in text or "not a database" in text


class HistoryService:
    """The archive on its own thread, with the recoveries described in the module docstring."""

    def __init__(self, path: Path, retention_s: float = RETENTION_S, max_rows: int = MAX_ROWS) -> None:
        self.path = path
        self._retention_s = retention_s
        self._max_rows = max_rows
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="telemetry-db")
        self._archive: TelemetryArchive | None = None
        self._notice: tuple[float, str] | None = None  # (monotonic, text) of a replacement, shown for NOTICE_S
        self._persistent_problem: str | None = None  # in memory only / disk full: shown while it lasts

    # -- on the event loop -------------------------------------------------------------------------------------
    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def open(self) -> None:
        await self._run(self._open)

    async def add(self, sample: dict) -> None:
        await self._run(self._guarded, "add", sample)

    async def since(self, ts: float | None, limit: int) -> tuple[list[dict], bool]:
        result = await self._run(self._guarded, "since", ts, limit)
        return result if result is not None else ([], False)

    async def close(self) -> None:
        await self._run(self._close)
        self._pool.shutdown(wait=True)

    def notices(self) -> list[str]:
        """What health should say about the history (degraded), if anything."""
        out = [self._persistent_problem] if self._persistent_problem else []
        if self._notice and time.monotonic() - self._notice[0] < NOTICE_S:
            out.append(self._notice[1])
        return out

    # -- on the database thread ----------------------------------------------------------------------------------
    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._archive = TelemetryArchive(self.path, self._retention_s, self._max_rows)
        except sqlite3.DatabaseError as exc:
            if _is_damage(exc):
                self._replace_damaged(exc)
            else:
                self._fall_back_to_memory(exc)
        except OSError as exc:
            self._fall_back_to_memory(exc)

    def _replace_damaged(self, exc: Exception) -> None:
        if self._archive is not None:
            self._archive.close()
            self._archive = None
        aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            self.path.replace(aside)
            for suffix in ("-wal", "-shm"):  # the journal belongs to the damaged file, not to the fresh one
                extra = self.path.with_name(self.path.name + suffix)
                if extra.exists():
                    extra.replace(aside.with_name(aside.name + suffix))
            self._archive = TelemetryArchive(self.path, self._retention_s, self._max_rows)
        except (OSError, sqlite3.DatabaseError) as again:
            self._fall_back_to_memory(again)
            return
        text = (f"telemetry history was damaged ({exc}); it was moved to {aside.name} and a fresh history "
                "started")
        self._notice = (time.monotonic(), text)
        log.error("%s", text)

    def _fall_back_to_memory(self, exc: Exception) -> None:
        self._archive = TelemetryArchive(":memory:", self._retention_s, self._max_rows)
        self._persistent_problem = (f"telemetry history is kept in memory only (lost on restart): cannot use "
                                    f"{self.path} ({exc})")
        log.error("%s", self._persistent_problem)

    def _guarded(self, method: str, *args):
        if self._archive is None:
            return None
        try:
            result = getattr(self._archive, method)(*args)
        except sqlite3.DatabaseError as exc:
            if _is_damage(exc):
                self._replace_damaged(exc)
            elif "full" in str(exc).lower():
                if self._persistent_problem is None:
                    log.error("telemetry history: %s; samples are not kept until there is space", exc)
                self._persistent_problem = f"telemetry history: disk full, samples are not kept ({exc})"
            else:
                log.warning("telemetry history: %s", exc)
            return None
        if self._persistent_problem and self._persistent_problem.startswith("telemetry history: disk full"):
            log.warning("telemetry history: writing again")
            self._persistent_problem = None
        return result

    def _close(self) -> None:
        if self._archive is not None:
            self._archive.close()
            self._archive = None
