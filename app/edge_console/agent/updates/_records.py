"""One record per update attempt, persisted at every step, and the events that tell consoles how it goes.

    <state>/updates/<id>/state.json   {id, state, release, line, version, source, actor, reason, figures, steps}

States, in order: staged -> verified -> checked -> active -> good; or, at any point, rejected (with the reason
and the figures that decided it), interrupted (the agent stopped mid-way: nothing changed), rolled_back (it was
active and was taken back, by the watchdog or an operator).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge_console.agent.updates._model_store import write_atomic

FINAL = ("good", "rejected", "interrupted", "rolled_back")
UNFINISHED = ("staged", "verified", "checked")
MAX_EVENTS = 500
MAX_RECORDS_KEPT = 50


@dataclass
class UpdateRecord:
    id: str
    state: str
    source: str  # "upload" or "usb"
    actor: str
    release: str = ""
    line: str = ""
    version: str = ""
    reason: str = ""
    figures: dict = field(default_factory=dict)
    steps: list[dict] = field(default_factory=list)  # [{state, at, note}]
    created_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        return asdict(self)


class UpdateRecords:
    def __init__(self, folder: Path, publish: Callable[[dict], None]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._publish = publish
        self._lock = threading.Lock()

    def new(self, source: str, actor: str, release: str) -> UpdateRecord:
        record = UpdateRecord(time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6], "staged", source, actor,
                              release)
        self.step(record, "staged", f"received {release}")
        return record

    def work_dir(self, record: UpdateRecord) -> Path:
        return self.folder / record.id

    def step(self, record: UpdateRecord, state: str, note: str = "", **figures) -> None:
        """Move `record` to `state` and persist it before anything is reported or done next."""
        with self._lock:
            record.state = state
            record.figures.update(figures)
            record.steps.append({"state": state, "at": round(time.time(), 3), "note": note})
            if state in ("rejected", "interrupted", "rolled_back"):
                record.reason = note
            self._write(record)
        self.announce(record)

    def _write(self, record: UpdateRecord) -> None:
        path = self.work_dir(record) / "state.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(record.to_dict(), indent=1).encode())

    def save(self, record: UpdateRecord) -> None:
        """Write `record` as it is in memory (a step that could not be written when it was taken)."""
        with self._lock:
            self._write(record)

    def announce(self, record: UpdateRecord) -> None:
        self._publish({"type": "update", **record.to_dict()})

    def get(self, update_id: str) -> UpdateRecord | None:
        path = self.folder / update_id / "state.json"
        if "/" in update_id or ".." in update_id or not path.is_file():
            return None
        return UpdateRecord(**json.loads(path.read_text()))

    def all(self) -> list[UpdateRecord]:
        out = []
        for path in sorted(self.folder.glob("*/state.json")):
            try:
                out.append(UpdateRecord(**json.loads(path.read_text())))
            except (ValueError, TypeError):
                continue
        return out

    def clean_work(self, record: UpdateRecord) -> None:
        """Delete what the attempt unpacked (the record stays)."""
        for name in ("delivery", "release.tar"):
            target = self.work_dir(record) / name
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)

    def prune(self) -> None:
        records = [r for r in self.all() if r.state in FINAL]
        for record in records[:-MAX_RECORDS_KEPT]:
            shutil.rmtree(self.work_dir(record), ignore_errors=True)


class UpdateEvents:
    """Numbered events for the progress WebSocket: a client asks for those after the last number it saw."""

    def __init__(self) -> None:
        self._events: deque[dict] = deque(maxlen=MAX_EVENTS)
        self._seq = 0
        self._cond = threading.Condition()
        self._waiters: list[Callable[[], None]] = []

    def publish(self, event: dict) -> None:
        with self._cond:
            self._seq += 1
            self._events.append({"seq": self._seq, "at": round(time.time(), 3), **event})
            waiters, self._waiters = self._waiters, []
        for wake in waiters:
            wake()

    @property
    def last_seq(self) -> int:
        with self._cond:
            return self._seq

    def after(self, seq: int) -> list[dict]:
        with self._cond:
            return [e for e in self._events if e["seq"] > seq]

    def on_next(self, wake: Callable[[], None]) -> None:
        with self._cond:
            self._waiters.append(wake)
