"""Which model the device runs, and every change of it: start-up recovery, activation into probation, the
watchdog's verdict, marking good, rollback. All decisions are written to lifecycle.json (atomically) before they
take effect, so a `kill -9` at any point restarts into a consistent, verified model.

Start-up, in order: a model whose file no longer matches its verified hash is never loaded (fall back to the
previous one, else the factory model); a model still in probation resumes it, unless the agent has restarted
more than MAX_PROBATION_RESTARTS times during it (a crash loop), in which case it is rolled back at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from edge_console.agent.updates._model_store import Lifecycle, ModelStore, StoredModel
from edge_console.core.audit.log import AuditLog
from edge_console.core.versions import version_key

log = logging.getLogger(__name__)
MAX_PROBATION_RESTARTS = 2
MIN_RESUMED_PROBATION_S = 10.0
FPS_COLLAPSE_RATIO = 0.5  # probation fails when the model infers less than half the frames the old one did
MODEL_ERRORS_ALLOWED = 2  # a third inference error during probation fails it


class ModelLifecycle:
    def __init__(self, store: ModelStore, audit: AuditLog, factory: StoredModel, probation_s: float) -> None:
        self.store = store
        self.audit = audit
        self.factory = factory
        self.probation_s = probation_s
        self.state: Lifecycle = store.load()
        self.errors_at_activation = 0

    # -- start-up -----------------------------------------------------------------------------------------------
    def startup_model(self) -> StoredModel:
        lc = self.state
        if lc.active is None:
            return self.factory
        if not self.store.intact(lc.active):
            damaged = lc.active
            fallback = lc.previous if lc.previous and (lc.previous.factory or self.store.intact(lc.previous)) \
                else self.factory
            self._switch_record(fallback, previous=None, state="good")
            self.audit.append("device", "rollback", version=damaged.version, line=damaged.line,
                              to=fallback.label, automatic=True,
                              reason="the active model's file no longer matches its verified hash (damaged storage)")
            log.error("active model %s is damaged; running %s instead", damaged.label, fallback.label)
            return fallback
        if lc.state == "probation":
            lc.probation_restarts += 1
            if lc.probation_restarts > MAX_PROBATION_RESTARTS:
                failed = lc.active
                target = lc.previous or self.factory
                self._switch_record(target, previous=None, state="good")
                self.audit.append("watchdog", "rollback", line=failed.line, version=failed.version, to=target.label,
                                  automatic=True, reason=f"the agent restarted {lc.probation_restarts} times during "
                                                         "probation (a crash loop)")
                return target
            remaining = (lc.probation_until or 0) - time.time()
            lc.probation_until = time.time() + max(remaining, MIN_RESUMED_PROBATION_S)
            self.store.save(lc)
            self.audit.append("device", "probation resumed", line=lc.active.line, version=lc.active.version,
                              restarts=lc.probation_restarts)
        return lc.active

    # -- changes ----------------------------------------------------------------------------------------------------
    def _switch_record(self, target: StoredModel, previous: StoredModel | None, state: str) -> None:
        lc = self.state
        lc.active = None if target.factory else target
        lc.previous = previous
        lc.state = state
        lc.probation_until = None
        lc.probation_restarts = 0
        self.store.save(lc)

    def begin_probation(self, new: StoredModel, running: StoredModel, baseline_fps: float | None,
                        model_errors: int) -> None:
        """Record the switch to `new` (persisted first; the caller swaps the detector right after)."""
        lc = self.state
        lc.previous = running
        lc.active = new
        lc.state = "probation"
        lc.probation_until = time.time() + self.probation_s
        lc.probation_restarts = 0
        lc.baseline_fps = baseline_fps
        lc.highest[new.line] = new.version if self.store.newer_than_highest(lc, new.line, new.version) \
            else lc.highest[new.line]
        lc.retained = [new, *[m for m in lc.retained if m.key() != new.key()]]
        self.errors_at_activation = model_errors
        self.store.save(lc)

    def highest(self) -> dict[str, str]:
        """The highest version of each line this device has run: every release activated, and the factory model
        (a device shipped with parts 2.0.0 has parts 2.0.0: a release parts 2.0.0 is not newer)."""
        highest = dict(self.state.highest)
        line, version = self.factory.line, self.factory.version
        if line not in highest or version_key(version) > version_key(highest[line]):
            highest[line] = version
        return highest

    def is_newer(self, line: str, version: str) -> bool:
        known = self.highest().get(line)
        return known is None or version_key(version) > version_key(known)

    def mark_good(self) -> StoredModel | None:
        lc = self.state
        if lc.state != "probation" or lc.active is None:
            return None
        lc.state = "good"
        lc.probation_until = None
        lc.probation_restarts = 0
        self.store.prune(lc)
        self.store.save(lc)
        return lc.active

    def rollback_target(self, version: str | None) -> StoredModel:
        """The previous model, or a retained version (by `version`, or `line:version`); ValueError otherwise."""
        lc = self.state
        if version is None:
            return lc.previous or self.factory
        for model in [*lc.retained, self.factory]:
            if version in (model.version, f"{model.line}:{model.version}", "factory" if model.factory else None):
                return model
        kept = ", ".join(m.label for m in [*lc.retained, self.factory])
        raise ValueError(f"version {version!r} is not retained on this device; it keeps {kept}. A version that is "
                         "not retained can only come back as a new, higher release.")

    def switch_to(self, target: StoredModel, running: StoredModel) -> None:
        """Persist a rollback (or activation of a retained version): it is good at once (it has run before)."""
        lc = self.state
        if not target.factory and not self.store.intact(target):
            raise ValueError(f"{target.label} is damaged on this device (its file does not match its hash)")
        self._switch_record(target, previous=running if running.key() != target.key() else lc.previous,
                            state="good")

    # -- the probation watchdog ---------------------------------------------------------------------------------------
    def probation_verdict(self, inferred_fps: float | None, model_errors: int, model_failing: bool,
                          source_ok: bool) -> tuple[str, str] | None:
        """("rollback", reason), ("good", "") or None (keep watching)."""
        lc = self.state
        if lc.state != "probation" or lc.active is None:
            return None
        errors = model_errors - self.errors_at_activation
        if model_failing or errors > MODEL_ERRORS_ALLOWED:
            return "rollback", f"the new model failed on {errors} frames during probation"
        if (source_ok and inferred_fps is not None and lc.baseline_fps
                and inferred_fps < lc.baseline_fps * FPS_COLLAPSE_RATIO):
            return "rollback", (f"inference rate collapsed during probation: {inferred_fps:.1f} fps against "
                                f"{lc.baseline_fps:.1f} before the switch")
        if time.time() >= (lc.probation_until or 0):
            return "good", ""
        return None

    def describe(self, running: StoredModel) -> dict:
        lc = self.state
        until = lc.probation_until
        return {
            "running": {**running.__dict__, "state": lc.state if lc.active else "good"},
            "previous": lc.previous.__dict__ if lc.previous else None,
            "retained": [m.__dict__ for m in lc.retained] + [self.factory.__dict__],
            "probation_s_left": max(0.0, round(until - time.time(), 1)) if until and lc.state == "probation" else None,
            "highest": self.highest(),
        }


def factory_entry(path: str, name: str, version: str, sha256: str) -> StoredModel:
    return replace(StoredModel(name, version, path, sha256), factory=True)
