"""The console's own database: every device ever seen, so offline devices stay listed with their last-seen time.

One SQLite file (sqlite-utils) in the user's data directory, WAL mode so a killed console loses nothing and a
reader never blocks the writer. All calls run on the `StoreWorker`'s serial lane: the GUI thread never touches disk.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
import sqlite_utils

from .tasks import TaskManager

log = logging.getLogger(__name__)

APP_NAME = "edge-console"


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


class DeviceStore:
    """Synchronous and single-threaded on purpose; `StoreWorker` gives it its own thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite_utils.Database(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable against a killed process
        self.devices = self.db.table("devices")
        if not self.devices.exists():
            self.devices.create({
                "id": str, "name": str, "host": str, "port": int, "manual": int, "arch": str, "hardware": str,
                "model_name": str, "model_version": str, "first_seen": float, "last_seen": float,
            }, pk="id")

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
                if record.last_seen and record.last_seen > (existing["last_seen"] or 0):
                    row["last_seen"] = record.last_seen
                if not existing["first_seen"] and record.first_seen:
                    row["first_seen"] = record.first_seen
                self.devices.update(record.id, row)

    def forget(self, device_id: str) -> None:
        with self.db.conn:
            self.devices.delete_where("id = ?", [device_id])

    def all_devices(self) -> list[DeviceRecord]:
        records = []
        for row in self.devices.rows_where(order_by="name"):
            try:
                hardware = json.loads(row["hardware"]) if row["hardware"] else None
            except ValueError:
                hardware = None
            records.append(DeviceRecord(
                id=row["id"], name=row["name"] or row["id"], host=row["host"] or "", port=int(row["port"] or 0),
                manual=bool(row["manual"]), arch=row["arch"] or "", hardware=hardware,
                model_name=row["model_name"] or "", model_version=row["model_version"] or "",
                first_seen=row["first_seen"], last_seen=row["last_seen"],
            ))
        return records

    def close(self) -> None:
        self.db.close()


class StoreWorker:
    """Runs every `DeviceStore` call on the task manager's "store" lane: one thread, in submission order.

    `on_done` callbacks reach the GUI thread through the task manager, so the GUI thread never waits on disk. A
    failing job is logged and reported through `on_error`, never raised into the GUI.
    """

    LANE = "store"

    def __init__(self, path: Path, tasks: TaskManager, on_error: Callable[[str], None]) -> None:
        self._tasks = tasks
        self._on_error = on_error
        self._store: DeviceStore | None = None
        self._path = path
        self.submit(lambda store: None)  # open the database now, on the lane's thread

    def _open(self) -> DeviceStore:
        if self._store is None:
            self._store = DeviceStore(self._path)
        return self._store

    def submit(self, job: Callable[[DeviceStore], Any], on_done: Callable[[Any], None] | None = None) -> None:
        def failed(exc: BaseException) -> None:
            log.error("console database job failed", exc_info=exc)
            self._on_error(f"database {self._path}: {exc}")

        self._tasks.run(lambda _task: job(self._open()), lane=self.LANE, on_done=on_done, on_failed=failed)

    def close(self) -> None:
        """Close the database after every job submitted so far; the task manager joins the lane's thread."""
        def close_store(_task: object) -> None:
            if self._store is not None:
                self._store.close()
                self._store = None

        self._tasks.run(close_store, lane=self.LANE)
