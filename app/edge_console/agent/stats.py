"""Counters the pipeline threads update and the telemetry sampler reads once a second."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np

from edge_console.core.detection import Detection, Timings

LATENCY_WINDOW_S = 10.0  # percentiles over the last 10 s: long enough for a p99, short enough to react


class PipelineStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inferred = 0
        self.streamed = 0  # frame messages sent, all clients together
        self.model_errors = 0
        self._latencies: deque[tuple[float, float, float, float]] = deque()  # (t, inference, pre, post)
        self._classes: Counter[str] = Counter()

    def record_inference(self, timings: Timings, detections: list[Detection]) -> None:
        now = time.monotonic()
        with self._lock:
            self.inferred += 1
            self._latencies.append((now, timings.inference_ms, timings.preprocess_ms, timings.postprocess_ms))
            while self._latencies and self._latencies[0][0] < now - LATENCY_WINDOW_S:
                self._latencies.popleft()
            self._classes.update(d.class_name for d in detections)

    def record_streamed(self, n: int = 1) -> None:
        with self._lock:
            self.streamed += n

    def record_error(self) -> None:
        with self._lock:
            self.model_errors += 1

    def take_class_counts(self) -> dict[str, int]:
        """Detections per class since the previous call."""
        with self._lock:
            counts, self._classes = dict(self._classes), Counter()
        return counts

    def latency_summary(self) -> dict[str, float | None]:
        with self._lock:
            rows = np.array([r[1:] for r in self._latencies], np.float64)
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
