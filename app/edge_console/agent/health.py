"""Health: ok, degraded or failing, always with the reasons a person needs to act.

failing  the device is not doing its job now: no frames from the source, the model fails on every frame, or a
         background service of the agent died (it is being restarted).
degraded it works, but not as it should: no inferred frame for STALE_AFTER_S, more than DROP_RATIO_DEGRADED of
         the captured frames never reach the model (over the last WINDOW_S), the model failed on some frames
         recently, the SoC runs hot, or a notice such as a telemetry history that had to be replaced.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from edge_console.agent.pipeline.stats import PipelineSnapshot

STALE_AFTER_S = 5.0  # no inferred frame for this long while the source delivers: the model is stuck or too slow
HOT_C = 85.0
WINDOW_S = 30.0  # rates (dropped frames, recent model errors) are judged over this window
DROP_RATIO_DEGRADED = 0.5  # above this share of captured frames dropped, the model cannot keep up with the camera
MIN_FRAMES_FOR_RATIO = 20  # a ratio over a handful of frames (just started, slow source) means nothing


@dataclass(frozen=True)
class Health:
    status: str  # "ok" | "degraded" | "failing"
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"status": self.status, "reasons": list(self.reasons)}


class SnapshotWindow:
    """The pipeline snapshots of the last WINDOW_S (one per telemetry tick), for rates over that window."""

    def __init__(self, span_s: float = WINDOW_S) -> None:
        self.span_s = span_s
        self._snapshots: deque[PipelineSnapshot] = deque()

    def add(self, snapshot: PipelineSnapshot) -> None:
        self._snapshots.append(snapshot)
        while len(self._snapshots) > 1 and self._snapshots[1].at <= snapshot.at - self.span_s:
            self._snapshots.popleft()

    def oldest(self) -> PipelineSnapshot | None:
        return self._snapshots[0] if self._snapshots else None


def assess(now: PipelineSnapshot, earlier: PipelineSnapshot | None, started_at: float,
           temperature_c: float | None = None, problems: list[str] | None = None,
           notices: list[str] | None = None) -> Health:
    """`now` and a snapshot taken up to WINDOW_S earlier; `problems` make it failing, `notices` degraded."""
    failing: list[str] = []
    degraded: list[str] = []
    if now.source_error:
        failing.append(f"source: {now.source_error}")
    if now.model_error:
        failing.append(f"model: {now.model_error}")
    failing += problems or []
    clock = time.monotonic()
    last = now.last_inference_at or started_at
    if not now.source_error and not now.model_error and clock - last > STALE_AFTER_S:
        degraded.append(f"no inferred frame for {clock - last:.0f} s")
    if earlier is not None and earlier is not now:
        captured = now.captured - earlier.captured
        dropped = now.dropped - earlier.dropped
        if captured >= MIN_FRAMES_FOR_RATIO and dropped / captured > DROP_RATIO_DEGRADED:
            span = max(now.at - earlier.at, 1e-6)
            degraded.append(f"dropping {dropped / captured:.0%} of camera frames: the model infers "
                            f"{(now.inferred - earlier.inferred) / span:.1f} fps of {captured / span:.1f} captured "
                            f"(degraded above {DROP_RATIO_DEGRADED:.0%})")
        errors = now.model_errors - earlier.model_errors
        if errors and not now.model_error:
            degraded.append(f"model failed on {errors} frame{'s' if errors != 1 else ''} in the last "
                            f"{now.at - earlier.at:.0f} s")
    if temperature_c is not None and temperature_c >= HOT_C:
        degraded.append(f"temperature {temperature_c:.0f} °C (throttling likely above {HOT_C:.0f} °C)")
    degraded += notices or []
    if failing:
        return Health("failing", failing + degraded)
    return Health("degraded", degraded) if degraded else Health("ok")
