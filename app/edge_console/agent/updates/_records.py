"""One record per update attempt, persisted at every step, and the events that tell consoles how it goes.

    <state>/updates/<id>/state.json   {id, state, release, line, version, source, actor, reason, figures, steps}

States, in order: staged -> verified -> checked -> active -> good; or, before active, rejected (with the reason
and the figures that decided it) or interrupted (the agent stopped mid-way: nothing changed); or, once active,
rolled_back (taken back, by the watchdog or an operator). `step` moves a record only as _states.RECORD_TRANSITIONS
allows; `recovery_step` is what start-up does with a record a restart cut short.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from edge_console.agent.updates._states import (
    ACTIVE,
    CHECKED,
    GOOD,
    INTERRUPTED,
    RECORD_START,
    RECORD_TRANSITIONS,
    ROLLED_BACK,
    record_step_from_disk,
)
from edge_console.core.atomic_files import write_atomic
from edge_console.core.disk_reserve import essential
from edge_console.core.protocol import UPDATE_FAILED, UPDATE_FINAL, UPDATE_IN_PROGRESS
from edge_console.core.state_machine import check_transition

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

    @classmethod
    def from_dict(cls, data: dict) -> UpdateRecord:
        """A record as read from disk; a key this version does not know (a newer agent's) is left out, a step it
        does not know is mapped (_states.record_step_from_disk)."""
        known = {f.name for f in fields(cls)}
        record = cls(**{k: v for k, v in data.items() if k in known})
        record.state = record_step_from_disk(record.state, record.id)
        return record


def recovery_step(record: UpdateRecord, switched: bool, on_probation: bool, running: bool) -> str | None:
    """Start-up's next step for a record a restart cut short, or None when it is where it should be. The
    lifecycle is the truth about which model runs: `switched` (it took this record's model, before or after a
    start-up rollback), `on_probation` (this record's model runs on probation now), `running` (it runs)."""
    if record.state in UPDATE_IN_PROGRESS:
        # Cut between the switch (lifecycle.json, written first) and the "active" step: the record follows the
        # lifecycle; otherwise nothing reached the store's use, and the attempt ends as interrupted.
        return ACTIVE if switched and record.state == CHECKED else INTERRUPTED
    if record.state == ACTIVE and not on_probation:
        return GOOD if running else ROLLED_BACK  # its probation ended while the agent was down (or at start-up)
    return None


class UpdateRecords:
    def __init__(self, folder: Path, publish: Callable[[dict], None]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._publish = publish
        self._lock = threading.Lock()

    def new(self, source: str, actor: str, release: str) -> UpdateRecord:
        record = UpdateRecord(time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6], RECORD_START, source, actor,
                              release)
        self._enter(record, RECORD_START, f"received {release}", {})  # where a record starts: no transition
        return record

    def work_dir(self, record: UpdateRecord) -> Path:
        return self.folder / record.id

    def step(self, record: UpdateRecord, state: str, note: str = "", **figures) -> None:
        """Move `record` to `state` and persist it before anything is reported or done next; InvalidTransition
        (nothing changed) when the table does not allow it. A write that fails (OSError) leaves the record moved
        in memory only (see UpdateManager._step_or_hold)."""
        check_transition(RECORD_TRANSITIONS, f"update record {record.id}", record.state, state)
        self._enter(record, state, note, figures)

    def _enter(self, record: UpdateRecord, state: str, note: str, figures: dict) -> None:
        with self._lock:
            record.state = state
            record.figures.update(figures)
            record.steps.append({"state": state, "at": round(time.time(), 3), "note": note})
            if state in UPDATE_FAILED:
                record.reason = note
            self._write(record)
        self.announce(record)

    def _write(self, record: UpdateRecord) -> None:
        path = self.work_dir(record) / "state.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        # An essential write (core/disk_reserve.py): a verdict is recorded even on a full disk.
        essential(lambda: write_atomic(path, json.dumps(record.to_dict(), indent=1).encode()))

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
        return UpdateRecord.from_dict(json.loads(path.read_text()))

    def all(self) -> list[UpdateRecord]:
        out = []
        for path in sorted(self.folder.glob("*/state.json")):
            try:
                out.append(UpdateRecord.from_dict(json.loads(path.read_text())))
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
        records = [r for r in self.all() if r.state in UPDATE_FINAL]
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
