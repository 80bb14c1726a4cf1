"""Staged rollouts from a laptop with no server: canaries first, then batches, halting on failure; persisted at
every step in the console's database so a console killed mid-way picks up where it stopped. Qt-free (asyncio).

A rollout's devices each go: waiting -> pushing (upload, then the device's own states) -> good, or failed
(rejected, rolled back by its watchdog, unreachable), or skipped (not compatible, or not allowed). Canaries run
first and must pass probation; then the rest, `batch` at a time. The rollout halts on the first failure (or,
when `max_failure_pct` is set, above that share of failures) and offers to roll back what it changed.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
import sqlite_utils

from edge_console.core.versions import version_key

from .push import PushFailed, PushProgress, PushState, push, rollback

DONE_OK = ("good",)
DONE_BAD = ("failed",)


@dataclass
class DeviceFacts:
    """What the rollout needs to know of a device (from its /v1/info and its pin)."""

    device_id: str
    name: str
    base_url: str
    arch: str = ""
    agent_version: str = ""
    providers: list[str] = field(default_factory=list)
    role: str | None = None  # the console's role on it; None: not paired
    running: str = ""  # "line version" now running


def ineligible(summary: dict, device: DeviceFacts) -> str | None:
    """Why a release cannot go to `device` (checked before anything is sent), or None."""
    if device.role not in ("operator", "admin"):
        return "this console is not paired with it as an operator" if device.role else "not paired"
    archs = summary.get("architectures") or []
    if archs and device.arch and device.arch not in archs:
        return f"built for {', '.join(archs)}; the device is {device.arch}"
    needed = summary.get("min_agent_version") or "0"
    if device.agent_version and version_key(device.agent_version) < version_key(needed):
        return f"needs agent {needed}; the device runs {device.agent_version}"
    missing = [p for p in summary.get("required_providers") or [] if device.providers and p not in device.providers]
    if missing:
        return f"needs {', '.join(missing)}"
    return None


@dataclass
class DeviceStep:
    device_id: str
    name: str
    phase: str = "waiting"  # waiting, pushing, good, failed, skipped, rolled_back
    detail: str = ""
    push: dict = field(default_factory=lambda: asdict(PushState()))
    record: dict = field(default_factory=dict)
    canary: bool = False
    updated_at: float = 0.0


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

    def __init__(self, database: Path) -> None:
        self.db = sqlite_utils.Database(database)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.table = self.db.table("rollouts")
        if not self.table.exists():
            self.table.create({"id": str, "body": str, "status": str, "created_at": float}, pk="id")

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
        self.db.close()


Resolve = Callable[[str], tuple[str, ssl.SSLContext | None]]  # device id -> (base url, TLS context)


class RolloutRunner:
    """Runs one rollout on the console's loop; `save` persists it (on the store's thread), `changed` tells the UI."""

    def __init__(self, rollout: Rollout, release_file: Path, session: aiohttp.ClientSession, resolve: Resolve,
                 save: Callable[[Rollout], Awaitable[None] | None], changed: Callable[[Rollout], None] = lambda r: None,
                 audit: Callable[..., None] = lambda *a, **k: None) -> None:
        self.rollout = rollout
        self.release_file = release_file
        self.session = session
        self.resolve = resolve
        self._save = save
        self.changed = changed
        self.audit = audit
        self._cancelled = False

    async def _persist(self, step: DeviceStep | None = None) -> None:
        if step is not None:
            step.updated_at = time.time()
        result = self._save(self.rollout)
        if asyncio.iscoroutine(result):
            await result
        self.changed(self.rollout)

    async def _push_one(self, step: DeviceStep) -> None:
        base, tls = self.resolve(step.device_id)
        state = PushState(**step.push)
        step.phase = "pushing"
        await self._persist(step)

        def on_state(s: PushState) -> None:
            step.push = asdict(s)
            asyncio.get_running_loop().create_task(self._persist(step))

        def on_progress(p: PushProgress) -> None:
            step.detail = p.detail
            if p.record:
                step.record = p.record
            self.changed(self.rollout)

        try:
            record = await push(self.session, base, tls, self.release_file, state=state, on_state=on_state,
                                on_progress=on_progress, until=("good",))
            step.record = record
            step.phase = "good" if record.get("state") == "good" else "failed"
            step.detail = record.get("reason") or record.get("state", "")
        except (PushFailed, aiohttp.ClientError, OSError, TimeoutError) as exc:
            step.phase, step.detail = "failed", str(exc)
        self.audit("push", device=step.device_id, release=self.rollout.release_label, outcome=step.phase,
                   detail=step.detail[:300])
        await self._persist(step)

    async def run(self) -> Rollout:
        rollout = self.rollout
        self.audit("rollout started" if not any(s.updated_at for s in rollout.steps) else "rollout resumed",
                   rollout=rollout.id, release=rollout.release_label, devices=[s.device_id for s in rollout.steps])
        for batch in rollout.batches():
            todo = [s for s in batch if s.phase in ("waiting", "pushing")]
            if self._cancelled or rollout.status != "running":
                break
            await asyncio.gather(*(self._push_one(s) for s in todo))
            failed = [s for s in rollout.steps if s.phase == "failed"]
            attempted = [s for s in rollout.steps if s.phase in ("good", "failed")]
            limit = rollout.max_failure_pct
            if failed and (limit is None or 100 * len(failed) / len(attempted) > limit):
                rollout.status = "halted"
                rollout.reason = (f"{failed[0].name}: {failed[0].detail}" if limit is None else
                                  f"{len(failed)} of {len(attempted)} devices failed (limit {limit:g} %)")
                break
        if rollout.status == "running":
            rollout.status = "cancelled" if self._cancelled else "done"
        self.audit(f"rollout {rollout.status}", rollout=rollout.id, reason=rollout.reason)
        await self._persist()
        return rollout

    def cancel(self) -> None:
        """Stop after the pushes in flight (their uploads stay resumable); the rollout is marked cancelled."""
        self._cancelled = True

    async def roll_back(self) -> Rollout:
        """Undo the rollout: every device it made good (or left active) goes back to its previous model."""
        rollout = self.rollout
        for step in rollout.steps:
            if step.phase == "good" or step.record.get("state") in ("active", "good"):
                base, tls = self.resolve(step.device_id)
                try:
                    await rollback(self.session, base, tls)
                    step.phase, step.detail = "rolled_back", "rolled back with the rollout"
                except (PushFailed, aiohttp.ClientError, OSError) as exc:
                    step.detail = f"rollback failed: {exc}"
                self.audit("rollback", device=step.device_id, rollout=rollout.id, detail=step.detail)
                await self._persist(step)
        rollout.status = "rolled_back"
        await self._persist()
        return rollout
