"""Which model the device runs, and every change of it: start-up recovery, activation into probation, the
watchdog's verdict, marking good, rollback. All decisions are written to lifecycle.json (atomically) before they
take effect, so a `kill -9` at any point restarts into a consistent, verified model.

Every change goes through `_move`, which allows only what _states.LIFECYCLE_TRANSITIONS does (factory, probation,
good). Start-up, in order, each a transition from that table: a model whose file no longer matches its verified
hash is never loaded (-> good on the previous one, else -> factory); a model still in probation resumes it
(probation -> probation), unless the agent has restarted more than MAX_PROBATION_RESTARTS times during it (a
crash loop), in which case it is rolled back at once (-> good or factory).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from edge_console.agent.updates._model_store import Lifecycle, ModelStore, StoredModel
from edge_console.agent.updates._states import FACTORY, GOOD, LIFECYCLE_TRANSITIONS, PROBATION
from edge_console.core.audit.log import AuditLog
from edge_console.core.state_machine import check_transition
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
            self._switch_record(fallback, previous=None)
            self.audit.append("device", "rollback", version=damaged.version, line=damaged.line,
                              to=fallback.label, automatic=True,
                              reason="the active model's file no longer matches its verified hash (damaged storage)")
            log.error("active model %s is damaged; running %s instead", damaged.label, fallback.label)
            return fallback
        if lc.state == PROBATION:
            restarts = lc.probation_restarts + 1
            if restarts > MAX_PROBATION_RESTARTS:
                failed = lc.active
                target = lc.previous or self.factory
                self._switch_record(target, previous=None)
                self.audit.append("watchdog", "rollback", line=failed.line, version=failed.version, to=target.label,
                                  automatic=True, reason=f"the agent restarted {restarts} times during "
                                                         "probation (a crash loop)")
                return target
            remaining = (lc.probation_until or 0) - time.time()
            self._move(PROBATION, probation_until=time.time() + max(remaining, MIN_RESUMED_PROBATION_S),
                       probation_restarts=restarts)
            self.audit.append("device", "probation resumed", line=lc.active.line, version=lc.active.version,
                              restarts=lc.probation_restarts)
        return lc.active

    # -- changes ----------------------------------------------------------------------------------------------------
    def _move(self, state: str, **changes) -> None:
        """The one way the lifecycle changes: `state` must follow the current one in LIFECYCLE_TRANSITIONS
        (InvalidTransition, with nothing changed, if not); `changes` are the other fields that change with it.
        Persisted before the caller acts on it."""
        check_transition(LIFECYCLE_TRANSITIONS, "model lifecycle", self.state.state, state)
        active = changes.get("active", self.state.active)
        if (state == FACTORY) != (active is None):  # "factory" means no release is active, and only that
            raise RuntimeError(f"model lifecycle: state {state!r} does not fit the active model {active!r}")
        for name, value in changes.items():
            if not hasattr(self.state, name):  # a misspelt field would be set here and never written
                raise AttributeError(f"the model lifecycle has no field {name!r}")
            setattr(self.state, name, value)
        self.state.state = state
        self.store.save(self.state)

    def _switch_record(self, target: StoredModel, previous: StoredModel | None) -> None:
        """To a model that has run before: good at once (factory when it is the factory model)."""
        self._move(FACTORY if target.factory else GOOD, active=None if target.factory else target,
                   previous=previous, probation_until=None, probation_restarts=0)

    def begin_probation(self, new: StoredModel, running: StoredModel, baseline_fps: float | None,
                        model_errors: int) -> None:
        """Record the switch to `new` (persisted first; the caller swaps the detector right after)."""
        lc = self.state
        highest = {**lc.highest, new.line: new.version} if self.store.newer_than_highest(lc, new.line, new.version) \
            else lc.highest
        self._move(PROBATION, previous=running, active=new, probation_until=time.time() + self.probation_s,
                   probation_restarts=0, baseline_fps=baseline_fps, highest=highest,
                   retained=[new, *[m for m in lc.retained if m.key() != new.key()]])
        self.errors_at_activation = model_errors

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
        if lc.state != PROBATION:
            return None
        self.store.prune(lc)  # trims lc.retained, saved with the move
        self._move(GOOD, probation_until=None, probation_restarts=0)
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
        self._switch_record(target, previous=running if running.key() != target.key() else lc.previous)

    # -- the probation watchdog ---------------------------------------------------------------------------------------
    def probation_verdict(self, inferred_fps: float | None, model_errors: int, model_failing: bool,
                          source_ok: bool) -> tuple[str, str] | None:
        """("rollback", reason), ("good", "") or None (keep watching)."""
        lc = self.state
        if lc.state != PROBATION:
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
            "running": {**running.__dict__, "state": GOOD if lc.state == FACTORY else lc.state},  # the API says good of the factory model
            "previous": lc.previous.__dict__ if lc.previous else None,
            "retained": [m.__dict__ for m in lc.retained] + [self.factory.__dict__],
            "probation_s_left": max(0.0, round(until - time.time(), 1)) if until and lc.state == PROBATION else None,
            "highest": self.highest(),
        }


def factory_entry(path: str, name: str, version: str, sha256: str) -> StoredModel:
    return replace(StoredModel(name, version, path, sha256), factory=True)
