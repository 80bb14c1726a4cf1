"""Health: ok, degraded or failing, always with the reasons a person needs to act."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

STALE_AFTER_S = 5.0  # no inferred frame for this long while the source delivers: the model is stuck or too slow
HOT_C = 85.0


@dataclass(frozen=True)
class Health:
    status: str  # "ok" | "degraded" | "failing"
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"status": self.status, "reasons": list(self.reasons)}


def assess(source_error: str | None, model_error: str | None, last_inference_monotonic: float | None,
           started_monotonic: float, temperature_c: float | None) -> Health:
    failing, degraded = [], []
    if source_error:
        failing.append(f"source: {source_error}")
    if model_error:
        failing.append(f"model: {model_error}")
    now = time.monotonic()
    last = last_inference_monotonic or started_monotonic
    if not source_error and not model_error and now - last > STALE_AFTER_S:
        degraded.append(f"no inferred frame for {now - last:.0f} s")
    if temperature_c is not None and temperature_c >= HOT_C:
        degraded.append(f"temperature {temperature_c:.0f} °C (throttling likely above {HOT_C:.0f} °C)")
    if failing:
        return Health("failing", failing + degraded)
    return Health("degraded", degraded) if degraded else Health("ok")
