"""Staged rollouts from a laptop with no server: canaries first, then batches, halting on failure; persisted at
every step in the console's database so a console killed mid-way picks up where it stopped. Qt-free (asyncio).

A rollout's devices each go: waiting -> pushing (upload, then the device's own states) -> good, or failed
(rejected, rolled back by its watchdog, unreachable), or skipped (not compatible, or not allowed). Canaries run
first and must pass probation; then the rest, `batch` at a time. The rollout halts on the first failure (or,
when `max_failure_pct` is set, above that share of failures) and offers to roll back what it changed.

Cancelling stops what is being uploaded (nothing is installed there: "cancelled") and sends nothing more; a device
that was already installing finishes by itself, and its row follows it to the end the device reports (good, rolled
back, rejected), never "failed" for the cancel. Whether a release can go to a device at all is eligibility.py's.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
import sqlite_utils

from edge_console.client.releases.eligibility import DeviceFacts, ineligible
from edge_console.client.releases.push import (
    LinkDown,
    PushFailed,
    PushProgress,
    PushState,
    follow_update,
    link_problem,
    plain_words,
    push,
    rollback,
)

__all__ = ["DeviceAddresses", "DeviceFacts", "DeviceStep", "Rollout", "RolloutRunner", "RolloutStore", "ineligible"]
DONE_OK = ("good",)
DONE_BAD = ("failed",)


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


def _outcome(record: dict, cancelled: bool) -> tuple[str, str]:
    """(phase, detail) of a push that ended as the device reports `record`."""
    state = record.get("state")
    reason = record.get("reason") if isinstance(record.get("reason"), str) else ""
    if state == "good":
        return "good", reason or "good"
    if cancelled and state == "rolled_back":  # not a failure of the cancelled rollout: the device's own verdict
        return "rolled_back", f"rolled back by the device: {reason}" if reason else "rolled back by the device"
    return "failed", reason or str(state or "")


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
        self._in_flight: dict[str, asyncio.Task] = {}  # device id -> its push
        self._installing: set[str] = set()  # devices asked to install: a cancel lets them finish

    async def _persist(self, step: DeviceStep | None = None) -> None:
        if step is not None:
            step.updated_at = time.time()
        result = self._save(self.rollout)
        if asyncio.iscoroutine(result):
            await result
        self.changed(self.rollout)

    def _watch_link(self, step: DeviceStep) -> Callable[[LinkDown | None], None]:
        def on_link(down: LinkDown | None) -> None:
            first = down is not None and not step.offline_since
            step.offline_since = down.since if down is not None else 0.0
            step.detail = down.text if down is not None else "reached again"
            if first:  # saved once when it goes; the seconds left are only shown
                asyncio.get_running_loop().create_task(self._persist(step))
            else:
                self.changed(self.rollout)
        return on_link

    def _before_install(self, step: DeviceStep) -> None:
        if self._cancelled:
            raise PushFailed("cancelled before the install: nothing was installed")
        self._installing.add(step.device_id)

    def _base(self, device_id: str) -> str:
        try:
            return self.resolve(device_id)[0]
        except PushFailed:
            return ""

    async def _push_one(self, step: DeviceStep) -> None:
        state = PushState(**step.push)
        step.phase = "pushing"
        if state.update_id:
            self._installing.add(step.device_id)

        def on_state(s: PushState) -> None:
            step.push = asdict(s)
            asyncio.get_running_loop().create_task(self._persist(step))

        def on_progress(p: PushProgress) -> None:
            step.detail = p.detail
            if p.record:
                step.record = p.record
            self.changed(self.rollout)

        retried = False
        try:
            await self._persist(step)
            while True:
                record = await push(self.session, "", None, self.release_file, state=state, on_state=on_state,
                                    on_progress=on_progress, until=("good",),
                                    where=lambda: self.resolve(step.device_id), on_link=self._watch_link(step),
                                    before_install=lambda: self._before_install(step))
                if record.get("state") != "interrupted" or retried or self._cancelled:
                    break
                # The device stopped mid-install and says nothing changed: deliver it again, once.
                retried, state = True, PushState()
                step.push, step.record = asdict(state), {}
                self._installing.discard(step.device_id)
            step.record = record
            step.phase, step.detail = _outcome(record, self._cancelled)
        except asyncio.CancelledError:
            if not self._cancelled or step.device_id in self._installing:
                raise  # the console is closing: the rollout stays as saved, resumable
            step.phase, step.detail = "cancelled", "cancelled during the upload: nothing was installed on it"
        except PushFailed as exc:
            cut = self._cancelled and step.device_id not in self._installing
            step.phase, step.detail = ("cancelled" if cut else "failed"), plain_words(str(exc))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            step.phase, step.detail = "failed", link_problem(exc, self._base(step.device_id))
        finally:
            self._in_flight.pop(step.device_id, None)
        step.offline_since = 0.0
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
            for step in todo:
                self._in_flight[step.device_id] = asyncio.get_running_loop().create_task(self._push_one(step))
            # Each push ends by itself (a cancelled upload too); a failure nobody expected still ends the rollout.
            for outcome in await asyncio.gather(*self._in_flight.values(), return_exceptions=True):
                if isinstance(outcome, Exception):
                    raise outcome
            if self._cancelled:
                break
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
        """On the loop: stop now. Uploads in flight end ("cancelled": nothing installed); nothing more is sent; a
        device already installing finishes by itself and its row follows it. The rollout is cancelled at once."""
        if self._cancelled:
            return
        self._cancelled = True
        if self.rollout.status == "running":
            self.rollout.status, self.rollout.reason = "cancelled", "cancelled by the operator"
        for device_id, task in list(self._in_flight.items()):
            if device_id not in self._installing:
                task.cancel()
        asyncio.get_running_loop().create_task(self._persist())

    async def settle(self) -> Rollout:
        """Follow to its end every update a cancelled (or halted) rollout left running on a device: its row ends
        as the device reports it. Used when a console finds such a rollout (it was closed while one installed)."""
        self._cancelled = True
        steps = [s for s in self.rollout.steps if s.phase == "pushing"]
        await asyncio.gather(*(self._settle_one(s) for s in steps))
        return self.rollout

    async def _settle_one(self, step: DeviceStep) -> None:
        update_id = step.push.get("update_id") if isinstance(step.push, dict) else ""
        if not update_id:
            step.phase, step.detail = "cancelled", "cancelled during the upload: nothing was installed on it"
        else:
            def on_progress(p: PushProgress) -> None:
                step.detail, step.record = p.detail, p.record or step.record
                self.changed(self.rollout)

            try:
                record = await follow_update(self.session, lambda: self.resolve(step.device_id), update_id,
                                             on_progress=on_progress, on_link=self._watch_link(step))
                step.record = record
                step.phase, step.detail = _outcome(record, True)
            except (PushFailed, aiohttp.ClientError, OSError, TimeoutError) as exc:
                step.phase = "cancelled"
                step.detail = plain_words(f"the device could not be asked how its install ended ({exc}); see "
                                          "Fleet versions")
        step.offline_since = 0.0
        await self._persist(step)

    async def roll_back(self) -> Rollout:
        """Undo the rollout: every device it made good (or left active) goes back to its previous model."""
        rollout = self.rollout
        for step in rollout.steps:
            if step.phase == "good" or step.record.get("state") in ("active", "good"):
                try:
                    base, tls = self.resolve(step.device_id)
                    await rollback(self.session, base, tls)
                    step.phase, step.detail = "rolled_back", "rolled back with the rollout"
                except PushFailed as exc:
                    step.detail = plain_words(f"rollback failed: {exc}")
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    step.detail = f"rollback failed: {link_problem(exc, self._base(step.device_id))}"
                self.audit("rollback", device=step.device_id, rollout=rollout.id, detail=step.detail)
                await self._persist(step)
        rollout.status = "rolled_back"
        await self._persist()
        return rollout
