"""Pair two detection lists (device vs laptop, model vs golden set) and say how far they agree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_console.core.detection.metrics import PrecisionRecallF1, box_iou, precision_recall_f1
from edge_console.core.detection.record import Detection


def iou_matrix(a: Sequence[Detection], b: Sequence[Detection]) -> np.ndarray:
    """IoU of every box in a against every box in b, shape (len(a), len(b))."""
    return box_iou(np.array([d.box for d in a], np.float64), np.array([d.box for d in b], np.float64))


@dataclass(frozen=True, slots=True)
class MatchedPair:
    a: Detection
    b: Detection
    iou: float


@dataclass(frozen=True)
class MatchReport:
    """How list `a` (the one under test, e.g. the device) agrees with list `b` (the reference, e.g. the laptop)."""

    matched: list[MatchedPair] = field(default_factory=list)
    unmatched_a: list[Detection] = field(default_factory=list)  # in a only: false positives against b
    unmatched_b: list[Detection] = field(default_factory=list)  # in b only: what a missed
    class_mismatches: list[MatchedPair] = field(default_factory=list)  # same place, different class

    @property
    def ratios(self) -> PrecisionRecallF1:
        # Agreement between two lists: nothing claimed is nothing wrong, nothing to find is nothing missed.
        return precision_recall_f1(len(self.matched), len(self.unmatched_a), len(self.unmatched_b),
                                   when_undefined=1.0)

    @property
    def precision(self) -> float:
        return self.ratios.precision

    @property
    def recall(self) -> float:
        return self.ratios.recall

    @property
    def f1(self) -> float:
        return self.ratios.f1

    @property
    def mean_iou(self) -> float:
        return float(np.mean([m.iou for m in self.matched])) if self.matched else 0.0

    def summary(self) -> dict:
        ratios = self.ratios
        return {
            "matched": len(self.matched),
            "only_a": len(self.unmatched_a),
            "only_b": len(self.unmatched_b),
            "class_mismatches": len(self.class_mismatches),
            "precision": round(ratios.precision, 4),
            "recall": round(ratios.recall, 4),
            "f1": round(ratios.f1, 4),
            "mean_iou": round(self.mean_iou, 4),
        }


def match_detections(a: Sequence[Detection], b: Sequence[Detection], iou: float = 0.5) -> MatchReport:
    """Class-aware greedy matching as COCO does: a's detections by descending confidence each take the
    unmatched b detection of the same class with the highest IoU >= `iou`.

    Detections of a left unmatched that overlap an unmatched b detection of another class at >= `iou` are
    reported as class mismatches (they still count as unmatched on both sides for precision and recall).
    """
    ious = iou_matrix(a, b)
    order = sorted(range(len(a)), key=lambda i: -a[i].confidence)
    taken_b: set[int] = set()
    matched: list[MatchedPair] = []
    matched_a: set[int] = set()
    for i in order:
        best_j, best_iou = -1, iou
        for j in range(len(b)):
            if j in taken_b or b[j].class_id != a[i].class_id:
                continue
            if ious[i, j] >= best_iou:
                best_j, best_iou = j, float(ious[i, j])
        if best_j >= 0:
            taken_b.add(best_j)
            matched_a.add(i)
            matched.append(MatchedPair(a[i], b[best_j], best_iou))

    mismatches: list[MatchedPair] = []
    mismatched_b: set[int] = set()
    for i in order:
        if i in matched_a:
            continue
        candidates = [j for j in range(len(b)) if j not in taken_b and j not in mismatched_b and ious[i, j] >= iou]
        if candidates:
            j = max(candidates, key=lambda j: ious[i, j])
            mismatched_b.add(j)
            mismatches.append(MatchedPair(a[i], b[j], float(ious[i, j])))

    return MatchReport(
        matched=matched,
        unmatched_a=[a[i] for i in range(len(a)) if i not in matched_a],
        unmatched_b=[b[j] for j in range(len(b)) if j not in taken_b],
        class_mismatches=mismatches,
    )
