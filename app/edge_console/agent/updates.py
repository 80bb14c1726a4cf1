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

from edge_console.core.audit_log import AuditLog
from edge_console.core.detector import Detector
from edge_console.core.errors import EdgeConsoleError
from edge_console.core.golden_check import run_golden_set
from edge_console.core.providers import available_providers
from edge_console.core.release_format import BundleError, BundleManifest
from edge_console.core.release_stream import StagedRelease, stage_release, verify_staged
from edge_console.core.release_trust import ReleaseTrustError, install_root
from edge_console.core.versions import version_key

from .lifecycle import ModelLifecycle
from .model_store import ModelStore, StoredModel
from .update_records import UNFINISHED, UpdateEvents, UpdateRecord, UpdateRecords

log = logging.getLogger(__name__)
SPACE_MARGIN = 64 * 2**20  # keep this much free besides what an update needs


class UpdateRejected(EdgeConsoleError):
    pass


def check_compatibility(manifest: BundleManifest, agent_version: str) -> None:
    arch = platform.machine()
    if manifest.architectures and arch not in manifest.architectures:
        raise UpdateRejected(f"incompatible: built for {', '.join(manifest.architectures)}; this device is {arch}")
    if version_key(agent_version) < version_key(manifest.min_agent_version):
        raise UpdateRejected(f"incompatible: needs agent {manifest.min_agent_version} or newer; this device runs "
                             f"{agent_version} (update the agent first)")
    missing = [p for p in manifest.required_providers if p not in available_providers()]
    if missing:
        raise UpdateRejected(f"incompatible: needs execution provider(s) {', '.join(missing)}; this device has "
                             f"{', '.join(available_providers())}")


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
        self._interrupt_unfinished()

    # -- start-up ---------------------------------------------------------------------------------------------
    def _interrupt_unfinished(self) -> None:
        """Attempts a restart cut short: nothing of them reached the store unless checked; say so and clean up."""
        for record in self.records.all():
            if record.state in UNFINISHED:
                self.records.step(record, "interrupted", f"the agent stopped while the update was {record.state}; "
                                                         "nothing was changed. Deliver it again.")
                self.records.clean_work(record)
                self.audit.append("device", "update interrupted", update=record.id, release=record.release,
                                  at_step=record.steps[-2]["state"] if len(record.steps) > 1 else "staged")
            elif record.state == "active" and not (self.lifecycle.state.state == "probation"
                                                   and self.lifecycle.state.active
                                                   and self.lifecycle.state.active.version == record.version):
                final = "good" if self.running.version == record.version else "rolled_back"
                self.records.step(record, final, "" if final == "good" else "rolled back when the agent restarted")

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

    def submit_release(self, release_file: Path, source: str, actor: str, name: str | None = None) -> UpdateRecord:
        """Start an update from a release file (a tar), moved into the update's folder."""
        if self.busy:
            raise UpdateRejected("another update is in progress on this device; wait for it to finish")
        record = self.records.new(source, actor, name or release_file.name)
        work = self.records.work_dir(record)
        shutil.move(str(release_file), work / "release.tar")
        self.audit.append(actor, "release received", update=record.id, release=record.release, source=source)
        self._busy = self._worker.submit(self._run_guarded, record)
        return record

    def submit(self, job: Callable[[], object]) -> Future:
        if self.busy:
            raise UpdateRejected("another update is in progress on this device; wait for it to finish")
        self._busy = self._worker.submit(job)
        return self._busy

    def _run_guarded(self, record: UpdateRecord) -> None:
        try:
            self._run(record)
        except (UpdateRejected, ReleaseTrustError, BundleError, ValueError) as exc:
            self._reject(record, str(exc))
        except OSError as exc:
            why = "the device's disk is full" if exc.errno == errno.ENOSPC else f"a file error ({exc})"
            self._reject(record, f"{why}; nothing was changed. Free some space and deliver it again.")
        except Exception as exc:  # a bug must not leave the record hanging in a middle state
            log.exception("update %s failed unexpectedly", record.id)
            self._reject(record, f"unexpected error: {exc!r}")
        finally:
            self.records.clean_work(record)
            self.records.prune()

    def _reject(self, record: UpdateRecord, reason: str) -> None:
        self.records.step(record, "rejected", reason)
        self.audit.append(record.actor, "update rejected", update=record.id, release=record.release,
                          line=record.line, version=record.version, reason=reason, figures=record.figures)
        log.warning("update %s rejected: %s", record.release, reason)

    def _stage(self, record: UpdateRecord) -> StagedRelease:
        """Unpack and check the release in one pass over its bytes (core/release_stream.py)."""
        work = self.records.work_dir(record)
        size = (work / "release.tar").stat().st_size
        if shutil.disk_usage(work).free < size + SPACE_MARGIN:
            raise OSError(errno.ENOSPC, "not enough free space to unpack the release")
        with open(work / "release.tar", "rb") as source:
            return stage_release(source, work / "delivery")

    def _run(self, record: UpdateRecord) -> None:
        t0 = time.perf_counter()
        staged = self._stage(record)
        t1 = time.perf_counter()
        verified = verify_staged(self.trust_dir, staged)
        t2 = time.perf_counter()
        manifest = staged.manifest
        record.figures["verify_ms"] = {"unpack_and_hashes": round((t1 - t0) * 1e3, 1),
                                       "signatures": round((t2 - t1) * 1e3, 1)}
        record.line, record.version = manifest.model_line, manifest.version
        check_compatibility(manifest, self.agent_version)
        if not self.store.newer_than_highest(self.lifecycle.state, manifest.model_line, manifest.version):
            highest = self.lifecycle.state.highest.get(manifest.model_line)
            raise UpdateRejected(f"older than installed: {manifest.label} is not newer than {manifest.model_line} "
                                 f"{highest}, the highest installed; going back is a rollback to a retained version")
        self.records.step(record, "verified", f"signed (targets v{verified.targets_version}), hashes, compatibility")
        self.audit.append(record.actor, "release verified", update=record.id, line=manifest.model_line,
                          version=manifest.version, sha256=verified.sha256)
        detector = self.host.load_detector(str(staged.bundle_dir / "model.onnx"))
        result = run_golden_set(detector, manifest, staged.bundle_dir)
        record.figures["golden"] = result.to_dict()
        if not result.passed:
            raise UpdateRejected("failed its check on this device: " + "; ".join(result.reasons))
        self.records.step(record, "checked", f"golden set F1 {result.f1:.3f}, p95 {result.latency_p95_ms:.1f} ms")
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
        self.records.step(record, "active", f"serving {stored.label} on probation for "
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
            if record.state == "active" and record.version == failed.version and record.line == failed.line:
                self.records.step(record, "rolled_back", reason)
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
            if record.state == "active" and record.version == good.version and record.line == good.line:
                self.records.step(record, "good", "probation passed")
        self.audit.append("watchdog", "model good", line=good.line, version=good.version)

    # -- the inbox (USB installs) and requests from the device's terminal -------------------------------------------
    def take_inbox(self) -> None:
        """Called every second: releases and rollback requests dropped in <state>/inbox by `edge-agent`."""
        if self.busy:
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


def run_in_loop(loop: asyncio.AbstractEventLoop, coro, timeout: float = 10.0):
    """From the update worker: run `coro` on the agent's event loop and wait for it."""
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)
