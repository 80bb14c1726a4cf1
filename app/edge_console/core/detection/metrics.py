"""Detection quality against ground truth: COCO-style mAP at one IoU threshold, and precision/recall.

Why our own instead of pycocotools: the product (model cards, bundle golden sets, the comparison view) needs these
numbers on devices and laptops where pycocotools is not installed, and from plain in-memory lists rather than
COCO JSON files. The definitions follow pycocotools' `COCOeval` for one IoU threshold, area "all" and 100
detections per image and class, so the two agree (tests/unit/test_metrics.py checks it):

- per class, each image's predictions are taken by descending confidence and each is matched to the unmatched
  ground-truth box it overlaps most, if that IoU is >= the threshold; the rest are false positives;
- all images' predictions of the class are then ranked by confidence (a stable sort, ties keep image order) to
  build the precision/recall curve; precision is made monotonic (the envelope) and sampled at the 101 recall
  points 0, 0.01, ..., 1 (0 where the curve never reaches that recall); AP is their mean;
- mAP is the mean AP over the classes that have at least one ground-truth box.

Precision, recall and F1 from match counts have one implementation, `precision_recall_f1`, used here, by
`matching.MatchReport` and by `comparison.summarize`. What a ratio is when its denominator is zero differs by
purpose and is always said by the caller: scoring against ground truth, an empty side scores 0.0 (nothing was
shown to be right); agreement between two detection lists, it is 1.0 (nothing claimed, nothing wrong).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

COCO_MAX_DETECTIONS = 100  # COCOeval's maxDets for the headline AP, applied per image and class as it does
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)


class BoxLike(Protocol):
    x1: float
    y1: float
    x2: float
    y2: float
    class_id: int


class ScoredBoxLike(BoxLike, Protocol):
    confidence: float


@dataclass(frozen=True, slots=True)
class PrecisionRecall:
    """Counts over all images and classes at one confidence threshold; ratios are 0.0 when undefined."""

    precision: float
    recall: float
    true_positives: int
    false_positives: int
    false_negatives: int
    f1: float = 0.0


class PrecisionRecallF1(NamedTuple):
    precision: float
    recall: float
    f1: float


def precision_recall_f1(true_positives: int, false_positives: int, false_negatives: int, *,
                        when_undefined: float) -> PrecisionRecallF1:
    """Precision tp/(tp+fp), recall tp/(tp+fn) and their harmonic mean F1 from match counts.

    `when_undefined` is the value of precision or recall whose denominator is zero (no prediction, or nothing to
    find): 0.0 against ground truth, 1.0 for agreement between two lists (see the module docstring). F1 is 0.0 when
    precision and recall are both 0.
    """
    claimed = true_positives + false_positives
    present = true_positives + false_negatives
    precision = true_positives / claimed if claimed else when_undefined
    recall = true_positives / present if present else when_undefined
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PrecisionRecallF1(precision, recall, f1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of Nx4 and Mx4 x1,y1,x2,y2 boxes (no +1 pixel convention, as pycocotools computes it)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _boxes(items: Sequence[BoxLike]) -> np.ndarray:
    return np.array([[i.x1, i.y1, i.x2, i.y2] for i in items], np.float64).reshape(-1, 4)


def _match_image(preds: Sequence[ScoredBoxLike], truths: Sequence[BoxLike],
                 iou_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy COCO matching within one image and class: (confidences by rank, is-true-positive flags)."""
    order = np.argsort([-p.confidence for p in preds], kind="mergesort")
    scores = np.array([preds[i].confidence for i in order], np.float64)
    hits = np.zeros(len(order), bool)
    if len(truths) == 0 or len(order) == 0:
        return scores, hits
    ious = box_iou(_boxes([preds[i] for i in order]), _boxes(truths))
    taken = np.zeros(len(truths), bool)
    threshold = min(iou_threshold, 1 - 1e-10)
    for rank in range(len(order)):
        candidates = np.where(taken, -1.0, ious[rank])
        # Highest IoU wins; among equals the later box, as COCOeval's `<` comparison leaves it.
        best = len(candidates) - 1 - int(np.argmax(candidates[::-1]))
        if candidates[best] >= threshold:
            taken[best] = True
            hits[rank] = True
    return scores, hits


def _by_class(items: Sequence[BoxLike], class_id: int) -> list:
    return [i for i in items if i.class_id == class_id]


def average_precision_per_class(predictions: Sequence[Sequence[ScoredBoxLike]],
                                ground_truths: Sequence[Sequence[BoxLike]], iou_threshold: float = 0.5,
                                num_classes: int | None = None) -> dict[int, float]:
    """AP of every class that has ground truth, keyed by class id (see the module docstring for the definition)."""
    if len(predictions) != len(ground_truths):
        raise ValueError(f"need one prediction list per image: got {len(predictions)} for {len(ground_truths)} images")
    if num_classes is None:
        num_classes = 1 + max((t.class_id for truths in ground_truths for t in truths), default=-1)
    result: dict[int, float] = {}
    for class_id in range(num_classes):
        scores, hits, n_truths = [], [], 0
        for preds, truths in zip(predictions, ground_truths):
            class_truths = _by_class(truths, class_id)
            n_truths += len(class_truths)
            s, h = _match_image(_by_class(preds, class_id), class_truths, iou_threshold)
            scores.append(s[:COCO_MAX_DETECTIONS])
            hits.append(h[:COCO_MAX_DETECTIONS])
        if n_truths == 0:
            continue
        all_scores, all_hits = np.concatenate(scores), np.concatenate(hits)
        if len(all_scores) == 0:  # ground truth but not one prediction: nothing was found
            result[class_id] = 0.0
            continue
        order = np.argsort(-all_scores, kind="mergesort")
        tp = np.cumsum(all_hits[order])
        fp = np.cumsum(~all_hits[order])
        recall = tp / n_truths
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        at = np.searchsorted(recall, _RECALL_POINTS, side="left")
        sampled = np.where(at < len(envelope), envelope[np.minimum(at, len(envelope) - 1)], 0.0)
        result[class_id] = float(sampled.mean())
    return result


def mean_average_precision(predictions: Sequence[Sequence[ScoredBoxLike]], ground_truths: Sequence[Sequence[BoxLike]],
                           iou_threshold: float = 0.5, num_classes: int | None = None) -> float:
    """COCO mAP at one IoU threshold over per-image lists of predictions and ground-truth boxes.

    `predictions[i]` are image i's detections (objects with x1, y1, x2, y2, class_id, confidence, such as
    `Detection`), `ground_truths[i]` its true boxes (x1, y1, x2, y2, class_id, such as `scene.GroundTruth`).
    `num_classes` limits the classes considered (default: every class id seen in the ground truth).
    Returns 0.0 when no class has ground truth.
    """
    per_class = average_precision_per_class(predictions, ground_truths, iou_threshold, num_classes)
    return float(np.mean(list(per_class.values()))) if per_class else 0.0


def precision_recall(predictions: Sequence[Sequence[ScoredBoxLike]], ground_truths: Sequence[Sequence[BoxLike]],
                     conf_threshold: float = 0.25, iou_threshold: float = 0.5) -> PrecisionRecall:
    """Precision and recall of the predictions at or above `conf_threshold`, matched per class as for mAP.

    This is what an operator sees at a given threshold: the share of drawn boxes that are right, and the share of
    real parts that got a box. Counts are summed over all classes and images.
    """
    if len(predictions) != len(ground_truths):
        raise ValueError(f"need one prediction list per image: got {len(predictions)} for {len(ground_truths)} images")
    tp = fp = n_truths = 0
    for preds, truths in zip(predictions, ground_truths):
        kept = [p for p in preds if p.confidence >= conf_threshold]
        n_truths += len(truths)
        for class_id in {p.class_id for p in kept}:
            _, hits = _match_image(_by_class(kept, class_id), _by_class(truths, class_id), iou_threshold)
            tp += int(hits.sum())
            fp += int((~hits).sum())
    ratios = precision_recall_f1(tp, fp, n_truths - tp, when_undefined=0.0)
    return PrecisionRecall(
        precision=ratios.precision,
        recall=ratios.recall,
        true_positives=tp,
        false_positives=fp,
        false_negatives=n_truths - tp,
        f1=ratios.f1,
    )
