"""Staged rollouts from a laptop with no server, as records: a rollout and its devices' rows, persisted at every
step in the console's database so a console killed mid-way picks up where it stopped (Qt-free). The work that
moves them is rollout_runner.py's, for the window and the headless command alike.

A rollout's devices each go: waiting -> pushing (upload, then the device's own states) -> good, or failed
(rejected, rolled back by its watchdog, unreachable), or skipped (not compatible, or not allowed). Canaries run
first and must pass probation; then the rest, `batch` at a time. The rollout halts on the first failure (or,
when `max_failure_pct` is set, above that share of failures) and offers to roll back what it changed. Which
move may follow which is rollout_states.py's tables: `Rollout.move` and `DeviceStep.move` enforce them.

Cancelling stops what is being uploaded (nothing is installed there: "cancelled") and sends nothing more; a device
that was already installing finishes by itself, and its row follows it to the end the device reports (good, rolled
back, rejected), never "failed" for the cancel. Whether a release can go to a device at all is eligibility.py's.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge_console.client.releases.eligibility import DeviceFacts, ineligible
from edge_console.client.releases.push import PushFailed, PushState
from edge_console.client.releases.rollout_states import (
    DEVICE_TRANSITIONS,
    INSTALLING,
    PUSHING,
    ROLLOUT_TRANSITIONS,
    UPLOADING,
    WAITING,
)
from edge_console.client.storage.database import ConsoleDatabase, open_or_share
from edge_console.core.state_machine import check_transition

__all__ = ["DeviceAddresses", "DeviceFacts", "DeviceStep", "Rollout", "RolloutStore", "ineligible"]


@dataclass
class DeviceStep:
    device_id: str
    name: str
    phase: str = "waiting"  # waiting, pushing, good, failed, skipped, rolled_back, cancelled (nothing installed)
    detail: str = ""
    push: dict = field(default_factory=lambda: asdict(PushState()))
    record: dict = field(default_factory=dict)
    canary: bool = False
    updated_at: float = 0.0
    offline_since: float = 0.0  # time.time() the push lost the device (0: it is reachable); the row says so

    @property
    def stage(self) -> str:
        """Where the device is in its table (rollout_states.DEVICE_TRANSITIONS): the phase, with "pushing" told
        apart as uploading or installing (the device gave the install an update id)."""
        if self.phase == PUSHING:
            return INSTALLING if self.push.get("update_id") else UPLOADING
        return self.phase

    def move(self, to: str, detail: str | None = None, push: PushState | None = None) -> None:
        """Move to stage `to`, as the table allows (InvalidTransition, nothing changed, otherwise). `push`: the
        push's state to keep (moving to uploading or installing); back to waiting, nothing of the old push is kept."""
        check_transition(DEVICE_TRANSITIONS, f"device {self.name or self.device_id}", self.stage, to)
        if to in (UPLOADING, INSTALLING):
            pushed = asdict(push) if push is not None else self.push
            if bool(pushed.get("update_id")) != (to == INSTALLING):  # the stage is read back from the push's state
                raise ValueError(f"device {self.name or self.device_id}: {to} needs a push state "
                                 f"{'with' if to == INSTALLING else 'without'} the device's update id")
            self.phase, self.push = PUSHING, pushed
        else:
            self.phase = to
        if to == WAITING:
            self.push, self.record = asdict(PushState()), {}
        if detail is not None:
            self.detail = detail


@dataclass
class Rollout:
    id: str
    release_id: str
    release_label: str
    steps: list[DeviceStep]
    batch: int = 1
    max_failure_pct: float | None = None  # None: halt on the first failure
    status: str = "running"  # running, halted, done, cancelled, rolled_back
    reason: str = ""
    created_at: float = field(default_factory=time.time)
    delivery: dict = field(default_factory=dict)  # the file it sends: {name, sha256, size} (rollout_runner.Delivery)

    def move(self, to: str, reason: str | None = None) -> None:
        """Move to status `to`, as rollout_states.ROLLOUT_TRANSITIONS allows (InvalidTransition otherwise)."""
        check_transition(ROLLOUT_TRANSITIONS, f"rollout {self.id}", self.status, to)
        self.status = to
        if reason is not None:
            self.reason = reason

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Rollout:
        return cls(**{**d, "steps": [DeviceStep(**s) for s in d["steps"]]})

    def batches(self) -> list[list[DeviceStep]]:
        canaries = [s for s in self.steps if s.canary]
        rest = [s for s in self.steps if not s.canary]
        return ([canaries] if canaries else []) + [rest[i:i + self.batch] for i in range(0, len(rest), self.batch)]


class RolloutStore:
    """Rollouts in the console's database (one JSON row each), rewritten at every step."""

    def __init__(self, database: ConsoleDatabase | Path) -> None:
        """`database`: the lane's shared connection, or a path to open one of its own (closed by `close`)."""
        self.database, self._owns_database = open_or_share(database)
        self.db = self.database.db
        self.table = self.db.table("rollouts")

    def save(self, rollout: Rollout) -> None:
        with self.db.conn:
            self.table.upsert({"id": rollout.id, "body": json.dumps(rollout.to_dict()), "status": rollout.status,
                               "created_at": rollout.created_at}, pk="id")

    def get(self, rollout_id: str) -> Rollout | None:
        row = next(self.table.rows_where("id = ?", [rollout_id]), None)
        return Rollout.from_dict(json.loads(row["body"])) if row else None

    def unfinished(self) -> list[Rollout]:
        return [Rollout.from_dict(json.loads(r["body"])) for r in self.table.rows_where("status = ?", ["running"])]

    def all(self) -> list[Rollout]:
        return [Rollout.from_dict(json.loads(r["body"])) for r in self.table.rows_where(order_by="created_at")]

    def close(self) -> None:
        if self._owns_database:
            self.database.close()


Resolve = Callable[[str], tuple[str, ssl.SSLContext | None]]  # device id -> (base url, TLS context), or PushFailed


class DeviceAddresses:
    """Where each device is now, for pushes on the network loop: device id -> (base URL, TLS context), or why the
    console cannot reach it. Written by the GUI thread whenever a device's address or trust changes, read at every
    try of a push (`resolve`), so a device that came back at another address is reached there."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: dict[str, tuple[str, ssl.SSLContext | None] | str] = {}

    def set(self, device_id: str, target: tuple[str, ssl.SSLContext | None] | str) -> None:
        with self._lock:
            self._targets[device_id] = target

    def resolve(self, device_id: str) -> tuple[str, ssl.SSLContext | None]:
        with self._lock:
            target = self._targets.get(device_id, "the device is not known to this console now")
        if isinstance(target, str):
            raise PushFailed(target)
        return target
