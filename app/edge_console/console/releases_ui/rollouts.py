"""Rollouts from the GUI: start one, follow it, cancel it, resume it after a restart, undo it; roll back one device.

Qt glue only: the orchestration is client/releases/rollout_runner.py's, the same the headless `edge-console push`
runs. Its runner works on the console's network loop, saves at every step in the console database (on the store's
lane, `db_lane.py`) and does its disk work (the delivery) on the release lane; the GUI thread only starts tasks and
sees snapshots: every change is copied on the loop and handed over through the task manager's `post`, so a view
never reads an object the loop is changing.

Closing the console cancels a runner where it waits and leaves its rollout "running" in the database: the next
console finds it (`unfinished_found`) and offers to resume it, whether a window or the headless command started
it; a push that was uploading resumes from the offset the device confirms with the very bytes it began (the
runner keeps the delivery), one that was installing follows the device's update.

The operator's cancel is the runner's (`RolloutRunner.cancel`, on the loop): the rollout is cancelled at once,
uploads stop, and a device already installing is followed to the end it reports. A console that finds a cancelled
rollout with such a device left (it was closed meanwhile) asks the device how it ended (`settle`).

Pushes follow the device, not an address: `addresses` (a lock-protected map the loop reads at every try) is kept
up to date here, on the GUI thread, whenever a device's address or trust changes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from PySide6.QtCore import QObject, Signal, SignalInstance

from edge_console.client.net.session_terms import describe_error
from edge_console.client.releases.db_lane import ReleaseDb
from edge_console.client.releases.library import ReleaseEntry, ReleaseLibrary
from edge_console.client.releases.push import PushFailed, link_problem, plain_words, rollback
from edge_console.client.releases.rollout import DeviceAddresses, DeviceStep, Rollout
from edge_console.client.releases.rollout_runner import (
    DeliveryNotReady,
    DeliverySource,
    RolloutRunner,
    installing,
    new_rollout,
)
from edge_console.client.releases.rollout_states import RUNNING
from edge_console.client.tasks import Task, TaskCancelled, TaskManager
from edge_console.console.device_state import DeviceState
from edge_console.console.fleet import Fleet
from edge_console.console.releases_ui.versions import FleetVersions

T = TypeVar("T")


class ReleaseCenterLike(Protocol):
    """What the rollouts need of the release center (center.py, which makes this control: said here, not imported,
    so the two do not import each other)."""

    fleet: Fleet
    versions: FleetVersions
    db: ReleaseDb
    tasks: TaskManager
    data_dir: Path
    loaded: bool
    entries_changed: SignalInstance

    def entry(self, entry_id: str) -> ReleaseEntry | None: ...

    def library_now(self) -> ReleaseLibrary: ...

    def log(self, event: str, **details: object) -> None: ...


@dataclass(eq=False)  # hashed by identity: FleetVersions keeps watchers in a set
class Running:
    runner: RolloutRunner | None = None  # made on the loop
    task: Task | None = None
    cancel_requested: bool = False


def in_words(exc: BaseException, base: str = "") -> str:
    """An error for the user: what the device or the link said, never a Python repr."""
    if isinstance(exc, PushFailed | LookupError):
        return plain_words(str(exc))
    return link_problem(exc, base) if base else plain_words(describe_error(exc))


class RolloutControl(QObject):
    changed = Signal(str)  # rollout id: its snapshot in `rollouts` was replaced
    unfinished_found = Signal(list)  # [Rollout] left running by an earlier console
    ended = Signal(str)  # rollout id: done, halted, cancelled, rolled back (see its status and reason)
    message = Signal(str, str)  # text, kind

    def __init__(self, center: ReleaseCenterLike, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.center = center
        self.fleet = center.fleet
        self.rollouts: dict[str, Rollout] = {}  # newest snapshot of every rollout, oldest first
        self.delivery_sizes: dict[str, int] = {}  # rollout id -> bytes of the file it delivers
        self.running: dict[str, Running] = {}
        self.loaded = False
        self._closed = False
        self._resume_when_listed: list[str] = []  # asked before the library was read
        self._to_settle: dict[str, Rollout] = {}  # cancelled with a device installing: asked once it is known
        self.addresses = DeviceAddresses()  # where each device is now, for the pushes on the loop
        for state in self.fleet.states:
            self._follow_device(state)
        self.fleet.device_added.connect(self._follow_device)
        self.fleet.device_removed.connect(self._device_gone)
        center.versions.follow_library(center)  # the release root the devices' trust is judged against
        center.entries_changed.connect(self._listed)
        self.center.db.call(lambda db: db.rollouts().all(), self.fleet.runtime.post, self._loaded,
                            self._unreadable)

    def _unreadable(self, exc: BaseException) -> None:
        # An unreadable database file is the console store's to report (once, with its "start a fresh one"
        # action, which this notice must not replace): rollouts live in the same file.
        if not isinstance(exc, sqlite3.DatabaseError):
            self.message.emit(f"Cannot read the rollouts: {exc}", "error")

    def _loaded(self, rollouts: list[Rollout]) -> None:
        self.loaded = True
        for rollout in rollouts:
            self.rollouts.setdefault(rollout.id, rollout)
            self.changed.emit(rollout.id)
        unfinished = [r for r in rollouts if r.status == "running" and r.id not in self.running]
        if unfinished:
            self.unfinished_found.emit(unfinished)
        for rollout in rollouts:  # cancelled while a device installed, then closed: ask the devices how it ended
            if rollout.status != "running" and rollout.id not in self.running and installing(rollout):
                self._to_settle[rollout.id] = rollout
        self._settle_known()

    def _settle_known(self) -> None:
        """Settle each such rollout once the console knows where its installing devices are."""
        for rollout_id, rollout in list(self._to_settle.items()):
            if all(self._known(step.device_id) for step in installing(rollout)):
                del self._to_settle[rollout_id]
                self._work_on(Rollout.from_dict(rollout.to_dict()), "settle")

    def _known(self, device_id: str) -> bool:
        try:
            self.addresses.resolve(device_id)
        except PushFailed:
            return False
        return True

    # -- where the devices are -----------------------------------------------------------------------------------
    def _follow_device(self, state: DeviceState) -> None:
        state.changed.connect(lambda s=state: self._note_address(s))
        self._note_address(state)

    def _note_address(self, state: DeviceState) -> None:
        if self._closed or not state.device_id:
            return
        try:
            self.addresses.set(state.device_id, self.fleet.transport(state))
        except LookupError as exc:
            self.addresses.set(state.device_id, str(exc))
            return
        if self._to_settle:
            self._settle_known()

    def _device_gone(self, state: DeviceState) -> None:
        if state.device_id and self.fleet.find(device_id=state.device_id) is None:
            self.addresses.set(state.device_id, f"{state.name} was removed from this console's list")

    def is_running(self, rollout_id: str) -> bool:
        return rollout_id in self.running

    # -- starting ----------------------------------------------------------------------------------------------------
    def start(self, entry: ReleaseEntry, devices: list[DeviceState], canaries: list[DeviceState],
              skipped: dict[DeviceState, str], batch: int = 1, max_failure_pct: float | None = None) -> Rollout:
        """A new rollout of `entry`: `canaries` first (they must pass probation), then the rest `batch` at a time.
        `skipped` devices are listed with their reason and never sent anything."""
        steps = [DeviceStep(s.device_id or "", s.name, canary=s in canaries) for s in devices]
        steps += [DeviceStep(s.device_id or "", s.name, phase="skipped", detail=why) for s, why in skipped.items()]
        rollout = new_rollout(entry, steps, batch, max_failure_pct)
        self.rollouts[rollout.id] = rollout
        saved = Rollout.from_dict(rollout.to_dict())
        self.center.db.submit(lambda db: db.rollouts().save(saved))  # resumable from the very start
        self.changed.emit(rollout.id)
        self._launch(rollout, entry)
        return rollout

    def _listed(self) -> None:
        waiting, self._resume_when_listed = self._resume_when_listed, []
        for rollout_id in waiting:
            self.resume(rollout_id)

    def resume(self, rollout_id: str) -> bool:
        """Resume a rollout left running (by an earlier console, or by `edge-console push`) from its saved rows."""
        rollout = self.rollouts.get(rollout_id)
        if rollout is None or rollout_id in self.running:
            return False
        if rollout.status != RUNNING:  # only a rollout left running goes on; the others are ended (their table)
            self.message.emit(f"The rollout of {rollout.release_label} is {rollout.status}: it cannot be resumed",
                              "error")
            return False
        if not self.center.loaded:
            self._resume_when_listed.append(rollout_id)
            return True
        entry = self.center.entry(rollout.release_id)
        if entry is None or not entry.verified:
            why = entry.problem if entry else "it is no longer in the library"
            self.message.emit(f"Cannot resume the rollout of {rollout.release_label}: {why}", "error")
            return False
        self._launch(rollout, entry)
        return True

    def _targets(self, rollout: Rollout) -> dict[str, tuple[str, object] | str]:
        """Device id -> (base URL, TLS context), or why the console cannot reach it; read on the GUI thread."""
        targets: dict[str, tuple[str, object] | str] = {}
        for step in rollout.steps:
            state = self.fleet.find(device_id=step.device_id) if step.device_id else None
            if state is None:
                targets[step.device_id] = f"{step.name} is not known to this console now"
                continue
            self._note_address(state)
            try:
                targets[step.device_id] = self.fleet.transport(state)
            except LookupError as exc:
                targets[step.device_id] = str(exc)
        return targets

    def _on_release_lane(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """For the runner on the loop: run the blocking `fn` on the release lane (in order with imports and
        removals of release files) and await it there."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def job(_task: Task) -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # noqa: BLE001 - handed to the runner, which awaits it
                    future.set_exception(exc)

        task = self.center.tasks.run(job, lane="releases")
        if task.abandoned and task.done:  # refused: the console is closing
            future.set_exception(RuntimeError("the console is closing"))
        return asyncio.wrap_future(future)

    def _launch(self, rollout: Rollout, entry: ReleaseEntry) -> None:
        """Run (start or resume) the rollout on the loop; the GUI thread waits for nothing."""
        running = self.running[rollout.id] = Running()
        self._targets(rollout)  # every device's address noted now; kept up to date as they change
        runtime, db, post, center = self.fleet.runtime, self.center.db, self.fleet.runtime.post, self.center
        source = DeliverySource(center.library_now, entry, center.data_dir)
        worked_on = Rollout.from_dict(rollout.to_dict())  # the loop's own copy: the GUI keeps its snapshots

        async def go(_task: Task) -> Rollout:
            running.runner = RolloutRunner(worked_on, runtime.http(), self.addresses.resolve, db.save_async,
                                           changed=lambda r: post(self._snapshot, Rollout.from_dict(r.to_dict())),
                                           audit=center.log)
            if running.cancel_requested:  # asked between the start and now
                running.runner.cancel()
            return await running.runner.run(source, off_loop=self._on_release_lane)

        running.task = runtime.tasks.run_async(go, on_done=lambda r: self._ended(r.id),
                                               on_failed=lambda exc: self._failed(rollout, exc))
        self.center.versions.watch(running, True)

    def _snapshot(self, rollout: Rollout) -> None:
        if self._closed:
            return
        before = self.rollouts.get(rollout.id)
        was = {s.device_id: s.record.get("state") for s in before.steps} if before else {}
        self.rollouts[rollout.id] = rollout
        if rollout.delivery:
            self.delivery_sizes[rollout.id] = rollout.delivery.get("size", 0)
        # A device that has just switched is asked for its versions now, so its probation countdown starts at
        # once rather than at the next poll.
        switched = [s.device_id for s in rollout.steps if s.record.get("state") == "active"
                    and was.get(s.device_id) != "active"]
        states = [self.fleet.find(device_id=d) for d in switched if d]
        if any(states):
            self.center.versions.refresh([s for s in states if s is not None])
        self.changed.emit(rollout.id)

    def _ended(self, rollout_id: str) -> None:
        running = self.running.pop(rollout_id, None)
        if running is not None:
            self.center.versions.watch(running, False)
        self.center.versions.refresh()
        self.ended.emit(rollout_id)

    def _failed(self, rollout: Rollout, exc: BaseException) -> None:
        self._ended(rollout.id)
        if isinstance(exc, TaskCancelled):
            return
        if isinstance(exc, DeliveryNotReady):
            self.message.emit(f"The rollout of {rollout.release_label} did not start: {exc}", "error")
            return
        self.message.emit(f"The rollout of {rollout.release_label} stopped unexpectedly ({in_words(exc)}); it can be "
                          "resumed.", "error")

    # -- stopping and undoing -----------------------------------------------------------------------------------------
    def cancel(self, rollout_id: str) -> None:
        """Stop now: uploads in flight end, nothing more is sent. A device already installing finishes by itself,
        and its row follows it to the end it reports (the rollout's task ends then)."""
        running = self.running.get(rollout_id)
        if running is None:
            return
        running.cancel_requested = True
        if running.runner is not None:
            self.fleet.runtime.network.call_soon(running.runner.cancel)  # the runner lives on the loop

    def roll_back(self, rollout_id: str) -> None:
        """Undo a rollout that is not running: every device it changed goes back to its previous model."""
        rollout = self.rollouts.get(rollout_id)
        if rollout is None or rollout_id in self.running:
            return
        self._work_on(Rollout.from_dict(rollout.to_dict()), "undo")

    def _work_on(self, rollout: Rollout, what: str) -> None:
        """Undo a rollout, or settle what a cancelled one left installing, in the background."""
        self._targets(rollout)  # every device's address noted now
        runtime, db, post = self.fleet.runtime, self.center.db, self.fleet.runtime.post
        running = self.running[rollout.id] = Running()

        async def go(_task: Task) -> Rollout:
            runner = RolloutRunner(rollout, runtime.http(), self.addresses.resolve, db.save_async,
                                   changed=lambda r: post(self._snapshot, Rollout.from_dict(r.to_dict())),
                                   audit=self.center.log)
            if what == "settle":
                return await runner.settle()
            self.center.log("rollout undo requested", rollout=rollout.id, release=rollout.release_label)
            return await runner.roll_back()

        running.task = runtime.tasks.run_async(go, on_done=lambda r: self._ended(r.id),
                                               on_failed=lambda exc: self._failed(rollout, exc))

    def rollback_device(self, state: DeviceState, version: str | None = None) -> None:
        """Return one device to its previous model, or to the retained `version`."""
        try:
            base, tls = self.fleet.transport(state)
        except LookupError as exc:
            self.message.emit(f"Cannot roll back {state.name}: {in_words(exc)}", "error")
            return
        runtime, name, device_id = self.fleet.runtime, state.name, state.device_id

        async def go(_task: Task) -> dict:
            body = await rollback(runtime.http(), base, tls, version)
            running = body.get("running") if isinstance(body.get("running"), dict) else {}
            self.center.log("rollback", device=device_id, to=f"{running.get('line')} {running.get('version')}",
                            requested=version or "previous")
            return running

        def done(running: dict) -> None:
            self.message.emit(f"{name} rolled back to {running.get('line')} {running.get('version')}.", "info")
            self.center.versions.refresh([state])

        runtime.tasks.run_async(go, on_done=done, on_failed=lambda exc: self.message.emit(
            f"{name} did not roll back: {in_words(exc, base)}", "error"))

    def close(self) -> None:
        """Stop following every rollout (each stays as last saved: resumable) without waiting."""
        self._closed = True
        for running in self.running.values():
            if running.task is not None:
                running.task.abandon()  # not a cancel by the operator: nothing is marked
        self.running.clear()


def age_of(rollout: Rollout) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(rollout.created_at))
