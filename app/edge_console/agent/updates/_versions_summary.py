"""`edge-agent versions` as a person reads it: what runs (and its probation), what a rollback returns to, what is
kept, and how the last update ended. `--json` prints the model store's lifecycle instead, for scripts."""

from __future__ import annotations

import time

from edge_console.agent.updates._model_store import Lifecycle, StoredModel
from edge_console.agent.updates._records import UpdateRecord
from edge_console.agent.updates._states import PROBATION
from edge_console.core.terminal_text import for_terminal


def _model(model: StoredModel) -> str:
    return for_terminal(model.label, 120)


def _when(at: float, now: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at)) if at else "at an unknown time"


def versions_summary(lifecycle: Lifecycle, last: UpdateRecord | None = None, now: float | None = None) -> str:
    now = time.time() if now is None else now
    lc = lifecycle
    if lc.active is None:
        running = ("Running: the model the agent was started with (--model), its factory model: "
                   + ("it was rolled back to it" if lc.retained or lc.highest else "no release has been installed"))
    elif lc.state == PROBATION:
        left = (lc.probation_until or 0) - now
        when = (f"{left:.0f} s left; the watchdog rolls it back if it misbehaves" if left > 0 else
                "its time is up: the agent marks it good when it runs")
        restarts = f"; restarted {lc.probation_restarts} time(s) during it" if lc.probation_restarts else ""
        running = f"Running: {_model(lc.active)}, ON PROBATION ({when}{restarts})"
    else:
        running = f"Running: {_model(lc.active)}, good (installed {_when(lc.active.installed_at, now)})"
    lines = [running]
    lines.append(f"Previous: {_model(lc.previous)} (`edge-agent rollback` returns to it)" if lc.previous else
                 "Previous: none (nothing to roll back to yet)")
    kept = ", ".join(_model(m) for m in lc.retained)
    lines.append(f"Retained: {kept}, and the factory model (`edge-agent rollback VERSION` returns to one)" if kept
                 else "Retained: the factory model only")
    if last is not None:
        what = for_terminal(f"{last.line} {last.version}".strip() or last.release, 120)
        outcome = last.state + (f": {for_terminal(last.reason, 300)}" if last.reason else "")
        lines.append(f"Last update: {what} from {for_terminal(last.release, 120)} ({last.source}, "
                     f"{_when(last.created_at, now)}): {outcome}")
    lines.append("(--json prints all of it)")
    return "\n".join(lines)
