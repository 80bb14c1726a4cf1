"""Counters the pipeline threads update, read by telemetry and health as one consistent snapshot.

The capture thread, the inference thread and the event loop each record what happened; nobody reads another
component's fields. `snapshot()` copies everything under one lock, so a telemetry sample or a health verdict is
computed from numbers that belong together.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from edge_console.core.detection.record import Detection, Timings

LATENCY_WINDOW_S = 10.0  # percentiles over the last 10 s: long enough for a p99, short enough to react


@dataclass(frozen=True)
class PipelineSnapshot:
    at: float  # monotonic clock
    captured: int
    dropped: int  # captured frames the model never saw (a newer one replaced them)
    inferred: int
    streamed: int
    model_errors: int
    capture_failures: int
    source_error: str | None  # why there are no frames right now; None while the source delivers
    model_error: str | None  # the newest inference failure, until a frame succeeds again
    last_inference_at: float | None  # monotonic
    latency: dict[str, float | None] = field(default_factory=dict)
    class_totals: dict[str, int] = field(default_factory=dict)  # cumulative detections per class


class PipelineStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._captured = self._dropped = self._inferred = self._streamed = 0
        self._model_errors = self._capture_failures = 0
        self._source_error: str | None = None
        self._model_error: str | None = None
        self._last_inference_at: float | None = None
        self._latencies: deque[tuple[float, float, float, float]] = deque()  # (t, inference, pre, post)
        self._classes: Counter[str] = Counter()

    # -- the capture thread ------------------------------------------------------------------------------------
    def record_captured(self, dropped_total: int) -> None:
        with self._lock:
            self._captured += 1
            self._dropped = dropped_total
            self._source_error = None

    def record_capture_failure(self, reason: str) -> None:
        with self._lock:
            self._capture_failures += 1
            self._source_error = reason

    # -- the inference thread ---------------------------------------------------------------------------------
    def record_inference(self, timings: Timings, detections: list[Detection]) -> None:
        now = time.monotonic()
        with self._lock:
            self._inferred += 1
            self._model_error = None
            self._last_inference_at = now
            self._latencies.append((now, timings.inference_ms, timings.preprocess_ms, timings.postprocess_ms))
            while self._latencies and self._latencies[0][0] < now - LATENCY_WINDOW_S:
                self._latencies.popleft()
            self._classes.update(d.class_name for d in detections)

    def record_model_error(self, reason: str) -> None:
        with self._lock:
            self._model_errors += 1
            self._model_error = reason

    # -- the event loop ----------------------------------------------------------------------------------------
    def record_streamed(self, n: int = 1) -> None:
        with self._lock:
            self._streamed += n

    @property
    def streamed(self) -> int:
        with self._lock:
            return self._streamed

    def snapshot(self) -> PipelineSnapshot:
        with self._lock:
            rows = np.array([r[1:] for r in self._latencies], np.float64).reshape(-1, 3)
            snap = dict(at=time.monotonic(), captured=self._captured, dropped=self._dropped,
                        inferred=self._inferred, streamed=self._streamed, model_errors=self._model_errors,
                        capture_failures=self._capture_failures, source_error=self._source_error,
                        model_error=self._model_error, last_inference_at=self._last_inference_at,
                        class_totals=dict(self._classes))
        return PipelineSnapshot(latency=_latency_summary(rows), **snap)


def _latency_summary(rows: np.ndarray) -> dict[str, float | None]:
    if not len(rows):
        return {"latency_p50_ms": None, "latency_p95_ms": None, "latency_p99_ms": None,
                "preprocess_ms": None, "postprocess_ms": None}
    p50, p95, p99 = np.percentile(rows[:, 0], [50, 95, 99])
    return {
        "latency_p50_ms": round(float(p50), 3),
        "latency_p95_ms": round(float(p95), 3),
        "latency_p99_ms": round(float(p99), 3),
        "preprocess_ms": round(float(rows[:, 1].mean()), 3),
        "postprocess_ms": round(float(rows[:, 2].mean()), 3),
    }
