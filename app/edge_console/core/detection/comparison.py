"""Device vs laptop on the very same pixels: run a local model on the frame the device inferred and match results.

The device's detections are the ones under test (side a), the local model's the reference (side b), so
precision says how much of what the device reports the reference confirms, and recall how much of the
reference the device found.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_console.core.detection.detector import Detector
from edge_console.core.detection.matching import MatchReport, match_detections
from edge_console.core.detection.metrics import precision_recall_f1
from edge_console.core.detection.record import Detection, Timings
from edge_console.core.errors import EdgeConsoleError
from edge_console.core.protocol import StreamHeader


class IncompatibleModelsError(EdgeConsoleError):
    pass


def class_mapping(device_classes: Sequence[str], local_classes: Sequence[str]) -> dict[int, int]:
    """Local class id -> device class id, matched by name. Different class sets cannot be compared: say which."""
    if not local_classes:
        raise IncompatibleModelsError("the local model has no class names in its metadata; it cannot be compared")
    only_device = [c for c in device_classes if c not in local_classes]
    only_local = [c for c in local_classes if c not in device_classes]
    if only_device or only_local:
        raise IncompatibleModelsError(
            "the device's model and the local model detect different classes: "
            f"only on the device: {', '.join(only_device) or '-'}; only in the local model: "
            f"{', '.join(only_local) or '-'}. Pick a local model trained on the same classes.")
    return {i: list(device_classes).index(name) for i, name in enumerate(local_classes)}


def remap(detections: Sequence[Detection], mapping: dict[int, int]) -> list[Detection]:
    """Give local detections the device's class ids, so a reordered class list still matches by name."""
    if all(k == v for k, v in mapping.items()):
        return list(detections)
    return [Detection(d.x1, d.y1, d.x2, d.y2, mapping[d.class_id], d.class_name, d.confidence) for d in detections]


@dataclass(frozen=True)
class FrameComparison:
    seq: int
    device: list[Detection]
    local: list[Detection]
    device_timings: Timings
    local_timings: Timings
    report: MatchReport
    image: np.ndarray | None = field(default=None, repr=False, compare=False)  # kept for display and export

    @property
    def agrees(self) -> bool:
        return not (self.report.unmatched_a or self.report.unmatched_b or self.report.class_mismatches)

    def to_dict(self) -> dict:
        s = self.report.summary()
        return {
            "seq": self.seq,
            "matched": s["matched"],
            "only_device": s["only_a"],
            "only_local": s["only_b"],
            **{k: s[k] for k in ("class_mismatches", "precision", "recall", "f1", "mean_iou")},
            "device_timings": self.device_timings.to_dict(),
            "local_timings": self.local_timings.to_dict(),
        }


def compare_frame(image_bgr: np.ndarray, header: StreamHeader, detector: Detector, mapping: dict[int, int],
                  iou: float = 0.5, keep_image: bool = True) -> FrameComparison:
    """Run the local detector on the device's frame and match both results (runs the model: not on a GUI thread)."""
    if image_bgr.shape[:2] != (header.height, header.width):
        raise ValueError(f"frame is {image_bgr.shape[1]}x{image_bgr.shape[0]} but its header says "
                         f"{header.width}x{header.height}: the device sent mismatched data")
    result = detector.detect(image_bgr)
    local = remap(result.detections, mapping)
    report = match_detections(header.detections, local, iou=iou)
    return FrameComparison(header.seq, list(header.detections), local, header.timings, result.timings, report,
                           image_bgr if keep_image else None)


def _median_timings(timings: list[Timings]) -> dict:
    if not timings:
        return Timings().to_dict()
    return Timings(statistics.median(t.preprocess_ms for t in timings),
                   statistics.median(t.inference_ms for t in timings),
                   statistics.median(t.postprocess_ms for t in timings)).to_dict()


def summarize(frames: Sequence[FrameComparison]) -> dict:
    """Agreement over several frames: counts pooled over all frames (micro average), latency medians per stage."""
    matched = sum(len(f.report.matched) for f in frames)
    only_device = sum(len(f.report.unmatched_a) for f in frames)
    only_local = sum(len(f.report.unmatched_b) for f in frames)
    # Agreement, as in MatchReport: no frame with a detection on either side is full agreement, not zero.
    ratios = precision_recall_f1(matched, only_device, only_local, when_undefined=1.0)
    ious = [m.iou for f in frames for m in f.report.matched]
    return {
        "frames": len(frames),
        "matched": matched,
        "only_device": only_device,
        "only_local": only_local,
        "class_mismatches": sum(len(f.report.class_mismatches) for f in frames),
        "precision": round(ratios.precision, 4),
        "recall": round(ratios.recall, 4),
        "f1": round(ratios.f1, 4),
        "mean_iou": round(float(np.mean(ious)), 4) if ious else 0.0,
        "disagreeing_frames": sum(not f.agrees for f in frames),
        "device_timings_median": _median_timings([f.device_timings for f in frames]),
        "local_timings_median": _median_timings([f.local_timings for f in frames]),
    }
