"""Model updates on the device: a delivered release goes staged -> verified -> checked -> active (probation) ->
good, or is rejected with its reason; rollbacks return to a retained version. One update at a time, on one
worker thread (unpacking, hashing, loading and checking a model never run on the event loop).

Nothing reaches the model store before the release's signatures (TUF), every member's hash, its compatibility
with this device and the anti-downgrade rule are checked, and the golden set and latency budget have passed on
this hardware. A rejected release leaves the store exactly as it was. Releases arrive by upload (the console,
tus) or from a folder on the device (`edge-agent install PATH` drops them into <state>/inbox).
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import logging
import platform
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from edge_console.agent.updates._follower import FollowAbandoned, UploadFollower
from edge_console.agent.updates._lifecycle import ModelLifecycle
from edge_console.agent.updates._model_store import ModelStore, StoredModel
from edge_console.agent.updates._records import UpdateEvents, UpdateRecord, UpdateRecords, recovery_step
from edge_console.agent.updates._states import (
    ACTIVE,
    CHECKED,
    GOOD,
    INTERRUPTED,
    PROBATION,
    RECORD_TRANSITIONS,
    REJECTED,
    ROLLED_BACK,
    VERIFIED,
)
from edge_console.core.audit.log import AuditLog
from edge_console.core.detection.detector import Detector
from edge_console.core.detection.onnx_runtime import available_providers
from edge_console.core.errors import EdgeConsoleError, ModelError
from edge_console.core.releases.compatibility import compatibility_problem
from edge_console.core.releases.file_format import BundleManifest
from edge_console.core.releases.golden_check import run_golden_set
from edge_console.core.releases.stream import StagedRelease, stage_release, verify_staged
from edge_console.core.releases.trust import install_root
from edge_console.core.state_machine import can_move

log = logging.getLogger(__name__)
SPACE_MARGIN = 64 * 2**20  # keep this much free besides what an update needs


class UpdateRejected(EdgeConsoleError):
    pass


def check_compatibility(manifest: BundleManifest, agent_version: str) -> None:
    """The rule a console also judges by (core/releases/compatibility.py), with this device's own facts."""
    problem = compatibility_problem(manifest.architectures, manifest.min_agent_version, manifest.required_providers,
                                    arch=platform.machine(), agent_version=agent_version,
                                    providers=available_providers())
    if problem:
        raise UpdateRejected(f"incompatible: {problem}")


class UpdateHost(Protocol):
    """What the update manager needs of the agent that runs the models."""

    detector: Detector  # the one serving now (kept loaded during probation, for an instant rollback)

    def load_detector(self, path: str) -> Detector: ...
    def swap_from_worker(self, detector: Detector) -> None: ...  # serve it from the next frame (worker thread)
    def pipeline_figures(self) -> dict: ...  # {"inferred_fps": ..., "model_errors": ...} for the watchdog


class UpdateManager:
    def __init__(self, state_dir: Path, lifecycle: ModelLifecycle, audit: AuditLog, agent_version: str,
                 host: UpdateHost) -> None:
        self.state_dir = Path(state_dir)
        self.trust_dir = self.state_dir / "release-trust"
        self.inbox = self.state_dir / "inbox"
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.lifecycle = lifecycle
        self.store: ModelStore = lifecycle.store
        self.audit = audit
        self.agent_version = agent_version
        self.host = host
        self.events = UpdateEvents()
        self.records = UpdateRecords(self.state_dir / "updates", self.events.publish)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-update")
        self._busy: Future | None = None
        self.running: StoredModel = lifecycle.startup_model()
        self._standby: tuple[StoredModel, Detector] | None = None  # the previous model, kept loaded in probation
        # Verdicts the disk could not take when they were reached (see _step_or_hold); written once there is room.
        self._unsaved: list[UpdateRecord] = []
        self._unsaved_audit: list[tuple[str, str, dict]] = []
        self._interrupt_unfinished()

    # -- start-up ---------------------------------------------------------------------------------------------
    def _interrupt_unfinished(self) -> None:
        """Attempts a restart cut short: each record is moved, by its table's transitions (recovery_step), to what
        the lifecycle says happened; an unfinished one that did not reach the switch is interrupted, its work
        cleaned up."""
        for record in self.records.all():
            while (to := recovery_step(record, self._switched_to(record), self._on_probation(record),
                                       self.running.key() == (record.line, record.version))) is not None:
                at_step = record.state
                if to == ACTIVE:
                    # Cut between the switch (lifecycle.json, written first) and this record's "active" step: the
                    # device runs the new model, so the record follows it rather than saying nothing was changed.
                    self._step_or_hold(record, ACTIVE, "the agent restarted right after switching to "
                                                       f"{record.line} {record.version}; probation goes on")
                    self._audit_or_hold(record.actor, "model activated", update=record.id, line=record.line,
                                        version=record.version, probation_s=self.lifecycle.probation_s,
                                        after_restart=True)
                elif to == INTERRUPTED:
                    self.records.clean_work(record)  # first: on a full disk, this is the room the verdict needs
                    self._step_or_hold(record, INTERRUPTED, f"the agent stopped while the update was {at_step}; "
                                                            "nothing was changed. Deliver it again.")
                    self._audit_or_hold("device", "update interrupted", update=record.id, release=record.release,
                                        at_step=at_step)
                else:  # its probation ended while the agent was down, or start-up rolled it back
                    self._step_or_hold(record, to, "" if to == GOOD else "rolled back when the agent restarted")

    def _on_probation(self, record: UpdateRecord) -> bool:
        lc = self.lifecycle.state
        return lc.state == PROBATION and lc.active is not None and lc.active.key() == (record.line, record.version)

    def _switched_to(self, record: UpdateRecord) -> bool:
        """Whether the lifecycle took this record's model (it is active, or was and start-up rolled it back). A
        release not newer than the highest installed is refused before "checked", so no earlier update can have
        put this line and version there."""
        lc = self.lifecycle.state
        return bool(record.line) and any(m is not None and m.key() == (record.line, record.version)
                                         for m in [lc.active, *lc.retained])

    def install_trust(self, root_json: bytes, actor: str) -> dict:
        root = install_root(self.trust_dir, root_json)
        keys = sorted(root.signed.keys)
        self.audit.append(actor, "release trust installed", root_version=root.signed.version,
                          keyids=[k[:16] for k in keys])
        return {"root_version": root.signed.version, "keys": len(keys)}

    # -- jobs -----------------------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._busy is not None and not self._busy.done()

    def submit_release(self, release_file: Path, source: str, actor: str, name: str | None = None,
                       follower: UploadFollower | None = None) -> UpdateRecord:
        """Start an update from a release file (a tar), moved into the update's folder; `follower` staged it as it
        was uploaded (upload_follower.py)."""
        if self.busy:
            raise UpdateRejected("another update is in progress on this device; wait for it to finish")
        record = self.records.new(source, actor, name or release_file.name)
        work = self.records.work_dir(record)
        shutil.move(str(release_file), work / "release.tar")
        self.audit.append(actor, "release received", update=record.id, release=record.release, source=source)
        self._busy = self._worker.submit(self._run_guarded, record, follower)
        self._busy.add_done_callback(_log_failure)
        return record

    def submit(self, job: Callable[[], object]) -> Future:
        if self.busy:
            raise UpdateRejected("another update is in progress on this device; wait for it to finish")
        self._busy = self._worker.submit(job)
        return self._busy

    def _run_guarded(self, record: UpdateRecord, follower: UploadFollower | None = None) -> None:
        try:
            self._run(record, follower)
        except (EdgeConsoleError, ValueError) as exc:  # UpdateRejected, ReleaseTrustError, BundleError, ModelError
            self._reject(record, str(exc))
        except OSError as exc:
            why = "the device's disk is full" if exc.errno == errno.ENOSPC else f"a file error ({exc})"
            self._reject(record, f"{why}; nothing was changed. Free some space and deliver it again.")
        except Exception as exc:  # a bug must not leave the record hanging in a middle state
            log.exception("update %s failed unexpectedly", record.id)
            self._reject(record, f"unexpected error: {exc!r}")
        finally:
            self.records.clean_work(record)  # frees the unpacked release: often the room an unsaved verdict needs
            self.persist_unsaved()
            self.records.prune()

    def _reject(self, record: UpdateRecord, reason: str) -> None:
        if not can_move(RECORD_TRANSITIONS, record.state, REJECTED):
            # It failed after the switch (an audit entry not written, say): the device runs the new model on
            # probation, and the watchdog's verdict, not "rejected", is this record's end.
            log.error("update %s failed after it became %s, which it stays: %s", record.id, record.state, reason)
            return
        self._step_or_hold(record, REJECTED, reason)
        self._audit_or_hold(record.actor, "update rejected", update=record.id, release=record.release,
                            line=record.line, version=record.version, reason=reason, figures=record.figures)
        log.warning("update %s rejected: %s", record.release, reason)

    # -- verdicts on a disk that may be full -------------------------------------------------------------------------
    def _step_or_hold(self, record: UpdateRecord, state: str, reason: str) -> None:
        """A verdict (rejected, interrupted) or a step start-up takes on its own. The disk that failed the update,
        often a full one, may not take it either: then consoles are told from memory at once, and the record is
        written as soon as there is room (persist_unsaved). Telling before writing is safe for these steps only:
        if the agent stops first, start-up finds the record as it was and reaches the same conclusion (a verdict
        lost this way reads "interrupted", which means the same: nothing changed, deliver it again)."""
        try:
            self.records.step(record, state, reason)
        except OSError as exc:
            log.error("update %s %s, but its record cannot be written yet (%s); it will be when there is room",
                      record.id, state, exc)
            self.records.announce(record)  # step() changed the record in memory before it failed to write it
            if not any(held is record for held in self._unsaved):  # start-up may move one twice (checked, active...)
                self._unsaved.append(record)

    def _audit_or_hold(self, actor: str, event: str, **details) -> None:
        try:
            self.audit.append(actor, event, **details)
        except OSError as exc:
            log.error("audit entry %r not written yet (%s); it will be when there is room", event, exc)
            self._unsaved_audit.append((actor, event, {**details, "decided_at": round(time.time(), 3)}))

    def persist_unsaved(self) -> None:
        """Write the verdicts a full disk refused (worker thread; also called every second while any wait)."""
        if not self.has_unsaved:
            return
        try:
            while self._unsaved:
                self.records.save(self._unsaved[0])
                self._unsaved.pop(0)
            while self._unsaved_audit:
                actor, event, details = self._unsaved_audit[0]
                self.audit.append(actor, event, **details)
                self._unsaved_audit.pop(0)
        except OSError:
            return  # still no room: the next tick tries again
        log.info("update verdicts held back by a full disk are written now")

    @property
    def has_unsaved(self) -> bool:
        return bool(self._unsaved or self._unsaved_audit)

    def _stage(self, record: UpdateRecord, follower: UploadFollower | None) -> tuple[StagedRelease, bool]:
        """Unpack and check the release in one pass over its bytes (core/releases/stream.py): taken from the
        follower that did it while the upload arrived (then True), or done now from the file."""
        work = self.records.work_dir(record)
        if follower is not None:
            try:
                staged = follower.result()
            except FollowAbandoned:
                log.info("update %s: staging the release from its file (it was not followed to the end)", record.id)
            else:
                staged.folder.replace(work / "delivery")
                return dataclasses.replace(staged, folder=work / "delivery"), True
        size = (work / "release.tar").stat().st_size
        if shutil.disk_usage(work).free < size + SPACE_MARGIN:
            raise OSError(errno.ENOSPC, "not enough free space to unpack the release")
        with open(work / "release.tar", "rb") as source:
            return stage_release(source, work / "delivery"), False

    def _run(self, record: UpdateRecord, follower: UploadFollower | None) -> None:
        t0 = time.perf_counter()
        staged, as_received = self._stage(record, follower)
        t1 = time.perf_counter()
        verified = verify_staged(self.trust_dir, staged)
        t2 = time.perf_counter()
        manifest = staged.manifest
        record.figures["verify_ms"] = {"unpack_and_hashes": round((t1 - t0) * 1e3, 1),
                                       "signatures": round((t2 - t1) * 1e3, 1),
                                       "staged_as_received": as_received,
                                       "signatures_checked_as_received": verified.checked_on_arrival}
        record.line, record.version = manifest.model_line, manifest.version
        check_compatibility(manifest, self.agent_version)
        if not self.lifecycle.is_newer(manifest.model_line, manifest.version):
            highest = self.lifecycle.highest().get(manifest.model_line)
            raise UpdateRejected(f"older than installed: {manifest.label} is not newer than {manifest.model_line} "
                                 f"{highest}, the highest installed; going back is a rollback to a retained version")
        self.records.step(record, VERIFIED, f"signed (targets v{verified.targets_version}), hashes, compatibility")
        self.audit.append(record.actor, "release verified", update=record.id, line=manifest.model_line,
                          version=manifest.version, sha256=verified.sha256)
        model = staged.bundle_dir / "model.onnx"
        try:
            detector = self.host.load_detector(str(model))
        except ModelError as exc:  # signed and ONNX-shaped, yet onnxruntime refuses it here
            raise UpdateRejected(f"model.onnx of {manifest.label} cannot be run on this device: "
                                 f"{str(exc).replace(str(model), 'model.onnx')}") from None
        result = run_golden_set(detector, manifest, staged.bundle_dir)
        record.figures["golden"] = result.to_dict()
        if not result.passed:
            raise UpdateRejected("failed its check on this device: " + "; ".join(result.reasons))
        self.records.step(record, CHECKED, f"golden set F1 {result.f1:.3f}, p95 {result.latency_p95_ms:.1f} ms")
        self.audit.append(record.actor, "release checked", update=record.id, figures=result.to_dict())
        stored = self.store.add(staged.bundle_dir, manifest.model_line, manifest.version, manifest.members[
            "model.onnx"]["sha256"])
        self._activate(record, stored, detector)

    def _activate(self, record: UpdateRecord, stored: StoredModel, detector: Detector) -> None:
        stats = self.host.pipeline_figures()
        self.lifecycle.begin_probation(stored, self.running, stats.get("inferred_fps"), stats.get("model_errors", 0))
        self._standby = (self.running, self.host.detector)
        self.host.swap_from_worker(detector)
        self.running = stored
        self.records.step(record, ACTIVE, f"serving {stored.label} on probation for "
                                            f"{self.lifecycle.probation_s:g} s")
        self.audit.append(record.actor, "model activated", update=record.id, line=stored.line,
                          version=stored.version, probation_s=self.lifecycle.probation_s)

    # -- rollback and the watchdog ---------------------------------------------------------------------------------
    def rollback(self, version: str | None, actor: str, reason: str, automatic: bool = False) -> StoredModel:
        """Return to the previous model (or a retained `version`), live. Runs on the worker thread."""
        target = self.lifecycle.rollback_target(version)
        failed = self.running
        if target.key() == failed.key():
            raise ValueError(f"{target.label} is already running")
        standby = self._standby
        detector = standby[1] if standby and standby[0].key() == target.key() else \
            self.host.load_detector(target.path)
        self.lifecycle.switch_to(target, failed)
        self.host.swap_from_worker(detector)
        self.running, self._standby = target, None
        for record in self.records.all():
            if record.state == ACTIVE and record.version == failed.version and record.line == failed.line:
                self.records.step(record, ROLLED_BACK, reason)
        self.audit.append(actor, "rollback", line=failed.line, version=failed.version, to=target.label,
                          automatic=automatic, reason=reason)
        self.events.publish({"type": "rollback", "from": failed.label, "to": target.label, "reason": reason,
                             "automatic": automatic})
        log.warning("rolled back %s -> %s: %s", failed.label, target.label, reason)
        return target

    def watch(self, inferred_fps: float | None, model_errors: int, model_failing: bool, source_ok: bool) -> None:
        """Called every second on the event loop: hand a verdict of the probation watchdog to the worker."""
        if self.busy:
            return
        verdict = self.lifecycle.probation_verdict(inferred_fps, model_errors, model_failing, source_ok)
        if verdict is None:
            return
        action, reason = verdict
        if action == "rollback":
            self.submit(lambda: self.rollback(None, "watchdog", reason, automatic=True))
        else:
            self.submit(self._mark_good)

    def _mark_good(self) -> None:
        good = self.lifecycle.mark_good()
        self._standby = None
        if good is None:
            return
        for record in self.records.all():
            if record.state == ACTIVE and record.version == good.version and record.line == good.line:
                self.records.step(record, GOOD, "probation passed")
        self.audit.append("watchdog", "model good", line=good.line, version=good.version)

    # -- the inbox (USB installs) and requests from the device's terminal -------------------------------------------
    def take_inbox(self) -> None:
        """Called every second: releases and rollback requests dropped in <state>/inbox by `edge-agent`."""
        if self.busy:
            return
        if self.has_unsaved:
            self.submit(self.persist_unsaved)
            return
        for path in sorted(self.inbox.glob("*")):
            if path.name.startswith("."):
                continue  # still being copied in (the CLI renames it when complete)
            if path.suffix == ".edgerelease":
                self.submit_release(path, "usb", "device terminal")
                return
            if path.name.startswith("rollback-") and path.suffix == ".json":
                request = json.loads(path.read_text() or "{}")
                path.unlink()
                self.submit(lambda r=request: self._rollback_request(r))
                return
            path.unlink()  # nothing we know: do not let it block the inbox

    def _rollback_request(self, request: dict) -> None:
        try:
            self.rollback(request.get("version"), "device terminal", "requested on the device")
        except ValueError as exc:
            self.events.publish({"type": "rollback refused", "reason": str(exc)})
            log.warning("rollback refused: %s", exc)

    def describe(self) -> dict:
        return {**self.lifecycle.describe(self.running), "busy": self.busy,
                "trust_installed": (self.trust_dir / "root.json").exists(),
                "updates": [r.to_dict() for r in self.records.all()[-10:]]}

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)


def _log_failure(future: Future) -> None:
    """An update's exception would otherwise die unseen in its Future (nobody waits for it)."""
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.error("update worker job failed: %r", exc, exc_info=exc)


def run_in_loop(loop: asyncio.AbstractEventLoop, coro, timeout: float = 10.0):
    """From the update worker: run `coro` on the agent's event loop and wait for it."""
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)
