"""The console's own database: every device ever seen, so offline devices stay listed with their last-seen time.

One SQLite file in the user's data directory, opened through `storage/` (schema, migrations, WAL so a killed
console loses nothing and a reader never blocks the writer). All calls run on the `StoreWorker`'s serial lane, which
owns the one connection the console's stores share: the GUI thread never touches disk.

A damaged file must not cost the engineer every remembered device: a row that cannot be used (a port 'eighty')
is skipped and reported, a damaged page costs the rows on it and no more (the rest is read around it), and a file
that is not a database at all is reported once, in the window, with the offer to move it aside and start afresh.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from edge_console.client.storage.database import ConsoleDatabase, open_or_share
from edge_console.client.tasks import TaskManager

log = logging.getLogger(__name__)

APP_NAME = "edge-console"
# A device found only by mDNS (not added by address, not paired) and not seen for this long is forgotten at the
# next start: its row is deleted. It comes back as soon as it is announced again. Devices the user added by address
# or paired with (a row in the trust store's `pins` table, same database) are never forgotten.
FORGET_DISCOVERED_AFTER_DAYS = 30
MAX_RANGE_READS = 4000  # reading around damaged pages: a bound on the queries, whatever the damage


def default_database_path() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "console.sqlite"


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    id: str  # the device's own id, or "manual:host:port" for an added device that never answered yet
    name: str
    host: str
    port: int
    manual: bool = False
    arch: str = ""
    hardware: dict | None = None
    model_name: str = ""
    model_version: str = ""
    first_seen: float | None = None
    last_seen: float | None = None


@dataclass
class RestoredDevices:
    """What could be read back of the remembered devices, and what could not (in words for the user)."""

    records: list[DeviceRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    forgotten: int = 0  # discovered devices not seen for FORGET_DISCOVERED_AFTER_DAYS, deleted now


def _text(value: object) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _time(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def record_from_row(row: dict) -> DeviceRecord:
    """One database row as a record; ValueError says, in the user's words, why the row cannot be used."""
    device_id = row.get("id")
    if not isinstance(device_id, str) or not device_id:
        raise ValueError(f"it has no device id ({device_id!r:.40})")
    port = row.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"its port {port!r:.40} is not a port number (1-65535)")
    host = row.get("host")
    if not isinstance(host, str) or not host.strip():
        raise ValueError("it has no host")
    try:
        hardware = json.loads(row["hardware"]) if row.get("hardware") else None
    except (ValueError, TypeError):
        hardware = None  # a detail; the device is still worth listing
    return DeviceRecord(
        id=device_id, name=_text(row.get("name")) or device_id, host=host.strip(), port=port,
        manual=bool(row.get("manual")), arch=_text(row.get("arch")),
        hardware=hardware if isinstance(hardware, dict) else None, model_name=_text(row.get("model_name")),
        model_version=_text(row.get("model_version")), first_seen=_time(row.get("first_seen")),
        last_seen=_time(row.get("last_seen")))


class DeviceStore:
    """Synchronous and single-threaded on purpose; `StoreWorker` gives it its own thread."""

    def __init__(self, database: ConsoleDatabase | Path) -> None:
        """`database`: the lane's open database (shared), or a path to open one of its own (sqlite3.DatabaseError
        when the file cannot be used: not a database, from a newer console)."""
        self.database, self._owns_database = open_or_share(database)
        self.path = self.database.path
        self.db = self.database.db
        self.devices = self.db.table("devices")

    def record_seen(self, record: DeviceRecord) -> None:
        """Insert or update a device; first_seen is kept from the first time, last_seen only moves forward."""
        row: dict[str, Any] = {
            "id": record.id, "name": record.name, "host": record.host, "port": record.port,
            "manual": int(record.manual), "arch": record.arch, "model_name": record.model_name,
            "model_version": record.model_version,
        }
        if record.hardware is not None:
            row["hardware"] = json.dumps(record.hardware, sort_keys=True)
        with self.db.conn:
            existing = next(self.devices.rows_where("id = ?", [record.id]), None)
            if existing is None:
                row["first_seen"] = record.first_seen or record.last_seen
                row["last_seen"] = record.last_seen
                self.devices.insert(row)
            else:
                row["manual"] = int(record.manual or bool(existing["manual"]))
                if record.last_seen and record.last_seen > (_time(existing["last_seen"]) or 0):
                    row["last_seen"] = record.last_seen
                if not existing["first_seen"] and record.first_seen:
                    row["first_seen"] = record.first_seen
                self.devices.update(record.id, row)

    def forget(self, device_id: str) -> None:
        with self.db.conn:
            self.devices.delete_where("id = ?", [device_id])

    def forget_stale_discovered(self, now: float | None = None) -> int:
        """Delete the devices found only by mDNS that were not seen for FORGET_DISCOVERED_AFTER_DAYS (or never
        answered at all); returns how many. Devices added by address stay."""
        cutoff = (time.time() if now is None else now) - FORGET_DISCOVERED_AFTER_DAYS * 86400
        with self.db.conn:
            cursor = self.db.conn.execute(
                "DELETE FROM devices WHERE NOT manual AND coalesce(last_seen, first_seen, 0) < ?"
                " AND id NOT IN (SELECT device_id FROM pins)", [cutoff])
        return cursor.rowcount

    def all_devices(self) -> list[DeviceRecord]:
        return self.restore(forget_stale=False).records

    def restore(self, forget_stale: bool = True, now: float | None = None) -> RestoredDevices:
        """Every remembered device that can be read; each row or part of the file that cannot, in `problems`."""
        result = RestoredDevices()
        if forget_stale:
            try:
                result.forgotten = self.forget_stale_discovered(now)
            except sqlite3.DatabaseError as exc:  # a damaged page in the way: forget nothing, still read the rest
                log.warning("console database %s: could not forget stale devices: %s", self.path, exc)
        rows, lost = self._readable_rows()
        for row in rows:
            try:
                result.records.append(record_from_row(row))
            except ValueError as exc:
                result.problems.append(f"device {_text(row.get('name') or row.get('id'))[:60]!r} was skipped: {exc}")
        if lost:
            result.problems.append(f"part of the database is damaged; rows {lost} could not be read")
        result.records.sort(key=lambda r: r.name.lower())
        return result

    def _readable_rows(self) -> tuple[list[dict], str]:
        """All rows; when a damaged page breaks the full scan, every rowid range that can still be read, and the
        ranges that cannot ("120-168")."""
        conn = self.db.conn
        query = "SELECT rowid AS _rowid, * FROM devices"
        try:
            return self._fetch(query, ()), ""
        except sqlite3.DatabaseError as exc:
            log.warning("console database %s is damaged (%s); reading around the damage", self.path, exc)
        try:
            highest = conn.execute("SELECT max(rowid) FROM devices").fetchone()[0] or 0
        except sqlite3.DatabaseError:
            return [], "all"
        rows: list[dict] = []
        lost: list[tuple[int, int]] = []
        pending = [(1, int(highest))]
        reads = 0
        while pending:
            lo, hi = pending.pop()
            reads += 1
            try:
                rows += self._fetch(query + " WHERE rowid BETWEEN ? AND ?", (lo, hi))
                continue
            except sqlite3.DatabaseError:
                pass
            if lo == hi or reads > MAX_RANGE_READS:
                lost.append((lo, hi))
                continue
            mid = (lo + hi) // 2
            pending += [(mid + 1, hi), (lo, mid)]  # the lower half is read first
        return rows, ", ".join(_merged_ranges(lost))

    def _fetch(self, query: str, params: tuple) -> list[dict]:
        cursor = self.db.conn.execute(query, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values)) for values in cursor.fetchall()]

    def close(self) -> None:
        if self._owns_database:
            self.database.close()


def _merged_ranges(ranges: list[tuple[int, int]]) -> list[str]:
    merged: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in merged]


def move_aside(path: Path) -> Path:
    """Rename a database that cannot be read (and its WAL files) out of the way; returns its new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.unreadable-{stamp}")
    path.replace(target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.replace(target.with_name(target.name + suffix))
    return target


class StoreWorker:
    """Runs every `DeviceStore` call on the task manager's "store" lane: one thread, in submission order.

    `on_done` callbacks reach the GUI thread through the task manager, so the GUI thread never waits on disk. A
    database that cannot be opened is reported once through `on_problem(message, can_reset=True)`; until it is
    reset (moved aside, a fresh one started), jobs are skipped instead of failing one traceback each. A job that
    fails for another reason is reported through `on_problem(message, False)`, each distinct message once.
    """

    LANE = "store"

    def __init__(self, path: Path, tasks: TaskManager, on_problem: Callable[[str, bool], None]) -> None:
        self._tasks = tasks
        self._on_problem = on_problem
        self._database: ConsoleDatabase | None = None  # the lane's one connection, shared by the stores on it
        self._store: DeviceStore | None = None
        self._closed = False  # close() ran on the lane: nothing reopens the file
        self._path = path
        self.unusable: str | None = None  # why the database cannot be opened (on the lane's thread)
        self._reported: set[str] = set()
        self.submit(lambda store: None)  # open the database now, on the lane's thread

    @property
    def path(self) -> Path:
        return self._path

    def _open(self) -> DeviceStore | None:
        if self._store is None and self.unusable is None and not self._closed:
            try:
                self._database = ConsoleDatabase(self._path)
                self._store = DeviceStore(self._database)
            except (sqlite3.DatabaseError, OSError) as exc:
                self.unusable = str(exc)
                log.error("console database %s cannot be used: %s", self._path, exc)  # one line, no traceback
                self._tasks.post(self._on_problem, f"The console's database {self._path} cannot be read ({exc}): "
                                 "devices seen before are not listed, and new ones are not remembered.", True)
        return self._store

    def database(self) -> ConsoleDatabase | None:
        """The lane's open database, for the other stores on this lane (pins, rollouts, audit heads); on the lane's
        thread only. None once closed; sqlite3.DatabaseError when the file cannot be used (already reported once,
        by `_open`: whoever asks need not say it again)."""
        self._open()
        if self.unusable is not None:
            raise sqlite3.DatabaseError(f"the console's database {self._path} cannot be used: {self.unusable}")
        return self._database

    def _close_database(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._database is not None:
            self._database.close()
            self._database = None

    def submit(self, job: Callable[[DeviceStore], Any], on_done: Callable[[Any], None] | None = None) -> None:
        def run(_task: object) -> Any:
            store = self._open()
            return None if store is None else job(store)

        def done(result: Any) -> None:
            if on_done is not None and self.unusable is None:
                on_done(result)

        def failed(exc: BaseException) -> None:
            message = f"database {self._path}: {exc}"
            if message not in self._reported:  # a full disk fails every write: say so once
                self._reported.add(message)
                log.error("console database job failed: %s", exc)
                self._on_problem(message, False)

        self._tasks.run(run, lane=self.LANE, on_done=done, on_failed=failed)

    def reset(self, on_done: Callable[[Path | None], None]) -> None:
        """Move the unreadable database aside and start a fresh one at the same path; `on_done(new name of the old
        file)` on the GUI thread (None if nothing needed moving)."""
        def run(_task: object) -> Path | None:
            self._close_database()  # the other stores on the lane notice: `database()` hands out a new one
            moved = move_aside(self._path) if self._path.exists() else None
            self.unusable = None
            self._open()
            return moved

        self._tasks.run(run, lane=self.LANE, on_done=on_done,
                        on_failed=lambda exc: self._on_problem(f"could not move {self._path} aside: {exc}", False))

    def close(self) -> None:
        """Close the database after every job submitted so far; the task manager joins the lane's thread."""
        def close_store(_task: object) -> None:
            self._closed = True
            self._close_database()

        self._tasks.run(close_store, lane=self.LANE)
