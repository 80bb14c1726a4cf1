"""The check a bundle must pass on the very hardware that will run it, before it is switched on: its golden set.

Each golden frame is run through the new model; its detections are matched (class-aware, IoU) with the ones
recorded when the bundle was built. Pooled over the set, F1 must reach the bundle's `min_f1`; the p95 of the
inference times (after a warm-up run) must stay within the latency budget, when there is one. The figures are
kept whatever the outcome, so a rejection says by how much it missed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge_console.core.detection.detector import Detector
from edge_console.core.detection.matching import match_detections
from edge_console.core.detection.metrics import precision_recall_f1
from edge_console.core.releases.file_format import BundleManifest

WARMUP_RUNS = 2


@dataclass(frozen=True)
class GoldenResult:
    passed: bool
    frames: int
    f1: float
    precision: float
    recall: float
    latency_p95_ms: float
    min_f1: float
    latency_budget_p95_ms: float | None
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "frames": self.frames, "f1": round(self.f1, 4),
                "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "latency_p95_ms": round(self.latency_p95_ms, 2), "min_f1": self.min_f1,
                "latency_budget_p95_ms": self.latency_budget_p95_ms, "reasons": list(self.reasons)}


def run_golden_set(detector: Detector, manifest: BundleManifest, folder: Path, cancel=None) -> GoldenResult:
    """`folder` holds the unpacked bundle; `cancel` (an Event) stops between frames (raising InterruptedError)."""
    images = []
    for frame in manifest.golden:
        image = cv2.imread(str(folder / frame.image), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"golden frame {frame.image} cannot be decoded")
        images.append(image)
    if images:
        for _ in range(WARMUP_RUNS):
            detector.detect(images[0])
    matched = only_device = only_expected = 0
    times = []
    for frame, image in zip(manifest.golden, images):
        if cancel is not None and cancel.is_set():
            raise InterruptedError("the check was cancelled")
        t0 = time.perf_counter()
        result = detector.detect(image)
        times.append((time.perf_counter() - t0) * 1e3)
        report = match_detections(result.detections, frame.detections, iou=manifest.iou)
        matched += len(report.matched)
        only_device += len(report.unmatched_a)
        only_expected += len(report.unmatched_b)
    scores = precision_recall_f1(matched, only_device, only_expected, when_undefined=1.0)
    precision, recall, f1 = scores.precision, scores.recall, scores.f1
    p95 = float(np.percentile(times, 95)) if times else 0.0
    reasons = []
    if f1 < manifest.min_f1:
        reasons.append(f"golden set F1 {f1:.3f} is below the bundle's minimum {manifest.min_f1:.2f} "
                       f"(precision {precision:.3f}, recall {recall:.3f} over {len(images)} frames)")
    budget = manifest.latency_budget_p95_ms
    if budget is not None and p95 > budget:
        reasons.append(f"inference p95 {p95:.1f} ms on this device exceeds the latency budget {budget:g} ms")
    return GoldenResult(not reasons, len(images), f1, precision, recall, p95, manifest.min_f1, budget, reasons)
