"""Rollout orchestration, written once for the window (console/releases_ui/rollouts.py) and the headless command
(`edge-console push`, cli.py) alike: start a rollout, follow it, halt it on failure, resume it, cancel it, settle
what a cancelled one left installing, undo it. Qt-free, on an asyncio loop. The callers keep only their glue:
where the devices are (`resolve`), where rows are saved (`save`), what is shown as they change (`changed`), and
where disk work runs (`off_loop`: the window's release lane; a thread for the command), so a delivery is signed,
copied and hashed off the loop, and the window's GUI thread waits on nothing.

Every row moves through rollout_states.py's tables (`Rollout.move`, `DeviceStep.move`): an impossible move raises.

The delivery (the release signed afresh by this console, delivery.py) is made once per rollout and kept in
<data>/deliveries/<rollout id>/ until the rollout ends; the rollout's row records its sha256 and size, and each
upload's state the sha256 of the bytes it sends. A resume, by the window or the command whichever started the
rollout, takes the kept file; an upload begun with other bytes (the file was lost, or a console before these
records made it) moves back to waiting and is sent again from its start, and the device's part of the old one is
dropped: a device never gets the head of one delivery and the tail of another.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from edge_console.client.releases.delivery import held_by_devices, make_delivery
from edge_console.client.releases.library import ReleaseEntry, ReleaseLibrary
from edge_console.client.releases.push import (
    LinkDown,
    PushFailed,
    PushProgress,
    PushState,
    drop_upload,
    follow_update,
    link_problem,
    plain_words,
    push,
    rollback,
)
from edge_console.client.releases.rollout import DeviceStep, Resolve, Rollout
from edge_console.client.releases.rollout_states import (
    CANCELLED,
    DONE,
    FAILED,
    GOOD,
    HALTED,
    IN_FLIGHT,
    INSTALLING,
    ROLLED_BACK,
    ROLLOUT_TRANSITIONS,
    RUNNING,
    UPLOADING,
    WAITING,
)
from edge_console.core.atomic_files import file_sha256, replacing
from edge_console.core.errors import EdgeConsoleError
from edge_console.core.state_machine import check_transition

DELIVERIES = "deliveries"  # <data>/deliveries/<rollout id>/: the file a rollout sends, kept while it may resume
CHANGED_IN_A_ROLLOUT = ("active", "good")  # device states a rollout's undo returns from
CUT_UPLOAD = "cancelled during the upload: nothing was installed on it"
OffLoop = Callable[[Callable[[], Any]], Awaitable[Any]]  # runs a blocking function elsewhere, awaited on the loop


@dataclass(frozen=True)
class Delivery:
    path: Path
    sha256: str
    size: int

    def record(self) -> dict:
        return {"name": self.path.name, "sha256": self.sha256, "size": self.size}


def _described(path: Path) -> Delivery:
    return Delivery(path, file_sha256(path), path.stat().st_size)


class DeliveryNotReady(EdgeConsoleError):
    """The rollout's delivery could not be made (the release is gone or refused, the disk...): nothing was sent,
    and the rollout stays as it was saved."""


@dataclass(frozen=True)
class DeliverySource:
    """Where a rollout's delivery comes from: `entry` in `library()` (called off the loop: it may touch the disk),
    signed with the delivery key in `data_dir`. Blocking methods: call them through `off_loop`."""

    library: Callable[[], ReleaseLibrary]
    entry: ReleaseEntry
    data_dir: Path

    def folder(self, rollout_id: str) -> Path:
        return Path(self.data_dir) / DELIVERIES / rollout_id

    def kept(self, rollout_id: str) -> Delivery | None:
        """The file an earlier run of the rollout made (a resume sends the very bytes the device has part of)."""
        folder = self.folder(rollout_id)
        kept = sorted(folder.glob("*.edgerelease")) if folder.is_dir() else []
        return _described(kept[0]) if kept else None

    def make(self, rollout_id: str, above: int) -> Delivery:
        """A new delivery, signed above version `above` (what the devices hold)."""
        folder = self.folder(rollout_id)
        folder.mkdir(parents=True, exist_ok=True)
        made = make_delivery(self.library(), self.entry, self.data_dir, folder, above)
        if made.parent != folder:  # delivered as signed: kept whole (written aside, then renamed), the library may
            kept = folder / made.name  # drop the release meanwhile
            with open(made, "rb") as src, replacing(kept) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            made = kept
        return _described(made)

    def discard(self, rollout_id: str) -> None:
        shutil.rmtree(self.folder(rollout_id), ignore_errors=True)


def new_rollout(entry: ReleaseEntry, steps: list[DeviceStep], batch: int = 1,
                max_failure_pct: float | None = None) -> Rollout:
    """A rollout of `entry` to `steps` (canaries marked, skipped devices with their reason): canaries first, then
    the rest `batch` at a time."""
    return Rollout(uuid.uuid4().hex[:12], entry.id, entry.label, steps, batch=max(1, batch),
                   max_failure_pct=max_failure_pct)


def undo_targets(rollout: Rollout) -> list[DeviceStep]:
    """The devices an undo returns to their previous model: those the rollout made good or left switched."""
    return [s for s in rollout.steps if s.phase == GOOD or s.record.get("state") in CHANGED_IN_A_ROLLOUT]


def something_to_undo(rollout: Rollout) -> bool:
    return bool(undo_targets(rollout))


def installing(rollout: Rollout) -> list[DeviceStep]:
    """The devices asked to install the release and not finished yet: a cancel lets them finish."""
    return [s for s in rollout.steps if s.stage == INSTALLING]


def _outcome(record: dict, cancelled: bool) -> tuple[str, str]:
    """(stage, detail) of a push that ended as the device reports `record`."""
    state = record.get("state")
    reason = record.get("reason") if isinstance(record.get("reason"), str) else ""
    if state == "good":
        return GOOD, reason or "good"
    if cancelled and state == "rolled_back":  # not a failure of the cancelled rollout: the device's own verdict
        return ROLLED_BACK, f"rolled back by the device: {reason}" if reason else "rolled back by the device"
    return FAILED, reason or str(state or "")


class RolloutRunner:
    """Runs one rollout on the loop; `save` persists it (it may return an awaitable), `changed` tells the caller."""

    def __init__(self, rollout: Rollout, session: aiohttp.ClientSession, resolve: Resolve,
                 save: Callable[[Rollout], Awaitable[None] | None], changed: Callable[[Rollout], None] = lambda r: None,
                 audit: Callable[..., None] = lambda *a, **k: None) -> None:
        self.rollout = rollout
        self.session = session
        self.resolve = resolve
        self._save = save
        self.changed = changed
        self.audit = audit
        self.delivery: Delivery | None = None
        self._cancelled = False
        self._sending = False  # the batches have begun
        self._in_flight: dict[str, asyncio.Task] = {}  # device id -> its push
        self._installing: set[str] = set()  # devices asked to install: a cancel lets them finish
        self._stale_uploads: dict[str, str] = {}  # device id -> an upload of other bytes, dropped before sending

    # -- start and resume -------------------------------------------------------------------------------------------
    async def run(self, source: DeliverySource, off_loop: OffLoop = asyncio.to_thread) -> Rollout:
        """Start the rollout, or resume it from its saved rows whoever started it; returns it ended (done, halted,
        cancelled). DeliveryNotReady when its delivery cannot be made (nothing sent, the rollout left resumable)."""
        rollout = self.rollout
        self.audit("rollout resumed" if any(s.updated_at for s in rollout.steps) else "rollout started",
                   rollout=rollout.id, release=rollout.release_label, devices=[s.device_id for s in rollout.steps])
        if not self._cancelled and rollout.status == RUNNING and self._unsent():
            self.delivery = await self._delivery(source, off_loop)
            self._recover()
            await self._persist()
            await self._send()
        if rollout.status == RUNNING:
            rollout.move(CANCELLED if self._cancelled else DONE)
        self.audit(f"rollout {rollout.status}", rollout=rollout.id, reason=rollout.reason)
        await self._persist()
        await off_loop(lambda: source.discard(rollout.id))  # ended: nothing resumes it, its file is not needed
        return rollout

    async def _delivery(self, source: DeliverySource, off_loop: OffLoop) -> Delivery:
        rollout = self.rollout
        try:
            delivery = await off_loop(lambda: source.kept(rollout.id))
            if delivery is None:  # signed above what the devices hold (a signer's clock may once have run ahead)
                above = await held_by_devices(self.session, self._reachable())
                delivery = await off_loop(lambda: source.make(rollout.id, above))
        except Exception as exc:  # noqa: BLE001 - whatever stops it (the release, the disk, its signing) is said
            raise DeliveryNotReady(f"cannot prepare the delivery: {exc}") from exc
        rollout.delivery = delivery.record()
        return delivery

    def _unsent(self) -> list[DeviceStep]:
        """The devices the rollout still has something to do for."""
        return [s for s in self.rollout.steps if s.stage in (WAITING, *IN_FLIGHT)]

    def _reachable(self) -> list[tuple[str, ssl.SSLContext | None]]:
        found = []
        for step in self._unsent():
            try:
                found.append(self.resolve(step.device_id))
            except PushFailed:
                pass  # unknown now: its push says so
        return found

    def _recover(self) -> None:
        """Each row goes on from where it was saved, through the table: an upload begun with other bytes than this
        delivery's goes back to waiting (sent again from its start, the device's part of it dropped first); an
        install the device runs is followed; a row not yet sent waits its batch."""
        assert self.delivery is not None
        for step in self.rollout.steps:
            if step.stage == UPLOADING and step.push.get("sha256") != self.delivery.sha256:
                if step.push.get("upload_url"):
                    self._stale_uploads[step.device_id] = step.push["upload_url"]
                step.move(WAITING, "sent again from the start: its upload began with other bytes than this delivery")

    async def _send(self) -> None:
        rollout = self.rollout
        self._sending = True
        for batch in rollout.batches():
            todo = [s for s in batch if s.stage in (WAITING, *IN_FLIGHT)]
            if self._cancelled or rollout.status != RUNNING:
                break
            for step in todo:
                self._in_flight[step.device_id] = asyncio.get_running_loop().create_task(self._push_one(step))
            # Each push ends by itself (a cancelled upload too); a failure nobody expected still ends the rollout.
            for outcome in await asyncio.gather(*self._in_flight.values(), return_exceptions=True):
                if isinstance(outcome, Exception):
                    raise outcome
            if self._cancelled:
                break
            failed = [s for s in rollout.steps if s.phase == FAILED]
            attempted = [s for s in rollout.steps if s.phase in (GOOD, FAILED)]
            limit = rollout.max_failure_pct
            if failed and (limit is None or 100 * len(failed) / len(attempted) > limit):
                rollout.move(HALTED, f"{failed[0].name}: {failed[0].detail}" if limit is None else
                             f"{len(failed)} of {len(attempted)} devices failed (limit {limit:g} %)")
                break

    # -- one device ---------------------------------------------------------------------------------------------------
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

    def _send_afresh(self, step: DeviceStep) -> PushState:
        assert self.delivery is not None
        step.move(UPLOADING, push=PushState(sha256=self.delivery.sha256))
        return PushState(**step.push)

    async def _drop_stale_upload(self, step: DeviceStep) -> None:
        stale = self._stale_uploads.pop(step.device_id, "")
        if stale:
            try:
                base, tls = self.resolve(step.device_id)
            except PushFailed:
                return  # it expires on the device by itself
            await drop_upload(self.session, base, tls, stale)

    async def _push_one(self, step: DeviceStep) -> None:
        assert self.delivery is not None
        state = self._send_afresh(step) if step.stage == WAITING else PushState(**step.push)
        if step.stage == INSTALLING:
            self._installing.add(step.device_id)

        def on_state(s: PushState) -> None:
            if s.update_id and step.stage == UPLOADING:
                step.move(INSTALLING, push=s)
            else:
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
            await self._drop_stale_upload(step)
            while True:
                record = await push(self.session, "", None, self.delivery.path, state=state, on_state=on_state,
                                    on_progress=on_progress, until=("good",),
                                    where=lambda: self.resolve(step.device_id), on_link=self._watch_link(step),
                                    before_install=lambda: self._before_install(step))
                if record.get("state") != "interrupted" or retried or self._cancelled:
                    break
                # The device stopped mid-install and says nothing changed: deliver it again, once.
                retried = True
                step.move(WAITING)
                self._installing.discard(step.device_id)
                state = self._send_afresh(step)
            step.record = record
            step.move(*_outcome(record, self._cancelled))
        except asyncio.CancelledError:
            if not self._cancelled or step.device_id in self._installing:
                raise  # the console is closing: the rollout stays as saved, resumable
            step.move(CANCELLED, CUT_UPLOAD)
        except PushFailed as exc:
            cut = self._cancelled and step.device_id not in self._installing
            step.move(CANCELLED if cut else FAILED, plain_words(str(exc)))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            step.move(FAILED, link_problem(exc, self._base(step.device_id)))
        finally:
            self._in_flight.pop(step.device_id, None)
        step.offline_since = 0.0
        self.audit("push", device=step.device_id, release=self.rollout.release_label, outcome=step.phase,
                   detail=step.detail[:300])
        await self._persist(step)

    # -- cancel, settle, undo ---------------------------------------------------------------------------------------
    def cancel(self) -> None:
        """On the loop: stop now. Uploads in flight end ("cancelled": nothing installed); nothing more is sent; a
        device already installing finishes by itself and its row follows it. The rollout is cancelled at once."""
        if self._cancelled:
            return
        self._cancelled = True
        if self.rollout.status == RUNNING:
            self.rollout.move(CANCELLED, "cancelled by the operator" if self._sending else
                              "cancelled by the operator before anything was sent")
        for device_id, task in list(self._in_flight.items()):
            if device_id not in self._installing:
                task.cancel()
        asyncio.get_running_loop().create_task(self._persist())

    async def settle(self) -> Rollout:
        """Follow to its end every update a cancelled (or halted) rollout left running on a device: its row ends
        as the device reports it. Used when a console finds such a rollout (it was closed while one installed)."""
        self._cancelled = True
        steps = [s for s in self.rollout.steps if s.stage in IN_FLIGHT]
        await asyncio.gather(*(self._settle_one(s) for s in steps))
        return self.rollout

    async def _settle_one(self, step: DeviceStep) -> None:
        if step.stage == UPLOADING:
            step.move(CANCELLED, CUT_UPLOAD)
        else:
            def on_progress(p: PushProgress) -> None:
                step.detail, step.record = p.detail, p.record or step.record
                self.changed(self.rollout)

            try:
                record = await follow_update(self.session, lambda: self.resolve(step.device_id),
                                             step.push["update_id"], on_progress=on_progress,
                                             on_link=self._watch_link(step))
                step.record = record
                step.move(*_outcome(record, True))
            except (PushFailed, aiohttp.ClientError, OSError, TimeoutError) as exc:
                step.move(CANCELLED, plain_words(f"the device could not be asked how its install ended ({exc}); "
                                                 "see Fleet versions"))
        step.offline_since = 0.0
        await self._persist(step)

    async def roll_back(self) -> Rollout:
        """Undo the rollout: every device it made good (or left active) goes back to its previous model."""
        rollout = self.rollout
        check_transition(ROLLOUT_TRANSITIONS, f"rollout {rollout.id}", rollout.status, ROLLED_BACK)  # before any
        for step in undo_targets(rollout):  # device is touched
            try:
                base, tls = self.resolve(step.device_id)
                await rollback(self.session, base, tls)
                step.move(ROLLED_BACK, "rolled back with the rollout")
            except PushFailed as exc:
                step.detail = plain_words(f"rollback failed: {exc}")
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                step.detail = f"rollback failed: {link_problem(exc, self._base(step.device_id))}"
            self.audit("rollback", device=step.device_id, rollout=rollout.id, detail=step.detail)
            await self._persist(step)
        rollout.move(ROLLED_BACK)
        await self._persist()
        return rollout
