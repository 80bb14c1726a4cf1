"""Output decoders for the detector layouts real users bring, recognised from output shapes and metadata.

Supported:
- `yolov8`: Ultralytics YOLOv8 / YOLO11 heads, one output [1, 4+nc, N] of cx,cy,w,h and per-class scores
  (segment/pose exports carry extra rows after the class scores; they are ignored); also transposed [1, N, 4+nc],
  with boxes in pixels or normalised to 0..1 (RT-DETR exports);
- `yolov5`: YOLOv5-style heads [1, N, 5+nc] of cx,cy,w,h, objectness, per-class scores;
- `end2end`: NMS inside the model, one output [1, N, 6] of x1,y1,x2,y2,score,class (YOLOv10, YOLO26);
- `end2end-split`: NMS inside the model with separate boxes [1,N,4], scores [1,N], classes [1,N] outputs
  (TensorRT EfficientNMS style, optionally with a num_dets output).
Every decoder returns boxes as x1,y1,x2,y2 in model-input pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import UnknownModelLayoutError

MAX_NMS_CANDIDATES = 30000  # as Ultralytics: beyond this NMS time explodes on a bad threshold
END2END_MAX_ROWS = 1000  # end-to-end models emit a few hundred rows at most; raw heads emit thousands


@dataclass(slots=True)
class RawDetections:
    boxes: np.ndarray  # (N, 4) float32, x1 y1 x2 y2 in model-input pixels
    scores: np.ndarray  # (N,) float32
    class_ids: np.ndarray  # (N,) int64

    @classmethod
    def empty(cls) -> RawDetections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def take(self, index: np.ndarray) -> RawDetections:
        return RawDetections(self.boxes[index], self.scores[index], self.class_ids[index])


def cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    out = np.empty_like(b, dtype=np.float32)
    half_w, half_h = b[:, 2] / 2, b[:, 3] / 2
    out[:, 0] = b[:, 0] - half_w
    out[:, 1] = b[:, 1] - half_h
    out[:, 2] = b[:, 0] + half_w
    out[:, 3] = b[:, 1] + half_h
    return out


def class_aware_nms(raw: RawDetections, iou_threshold: float, max_detections: int) -> RawDetections:
    """Non-maximum suppression within each class (a bolt never suppresses an overlapping nut)."""
    if len(raw.scores) == 0:
        return raw
    xywh = raw.boxes.copy()
    xywh[:, 2:] -= xywh[:, :2]
    keep = cv2.dnn.NMSBoxesBatched(xywh, raw.scores, raw.class_ids.astype(np.int32), 0.0, iou_threshold)
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)[:max_detections]
    return raw.take(keep)


def _top_candidates(raw: RawDetections) -> RawDetections:
    if len(raw.scores) > MAX_NMS_CANDIDATES:
        return raw.take(np.argpartition(-raw.scores, MAX_NMS_CANDIDATES)[:MAX_NMS_CANDIDATES])
    return raw


class Yolov8Decoder:
    name = "yolov8"

    def __init__(self, num_classes: int, transposed: bool = False, input_size: tuple[int, int] | None = None):
        self.num_classes = num_classes
        # [1, N, 4+nc] as some third-party exporters and RT-DETR exports write it; RT-DETR's boxes are normalised
        # to 0..1, so the transposed layout is scaled back to pixels when it is (input_size given).
        self.transposed = transposed
        self.input_size = input_size

    def __call__(self, outputs: list[np.ndarray], conf: float, iou: float, max_det: int) -> RawDetections:
        pred = outputs[0][0]
        if self.transposed:
            pred = pred.T
        scores_all = pred[4 : 4 + self.num_classes]
        best = scores_all.max(axis=0)
        keep = np.flatnonzero(best > conf)  # filter first: argmax only over the few candidates left
        if keep.size == 0:
            return RawDetections.empty()
        class_ids = scores_all[:, keep].argmax(axis=0)
        boxes = cxcywh_to_xyxy(pred[:4, keep].T)
        raw = _top_candidates(RawDetections(boxes, best[keep].astype(np.float32), class_ids.astype(np.int64)))
        if self.input_size:
            raw = _scaled(raw, self.input_size)
        return class_aware_nms(raw, iou, max_det)


class Yolov5Decoder:
    name = "yolov5"

    def __init__(self, num_classes: int):
        self.num_classes = num_classes

    def __call__(self, outputs: list[np.ndarray], conf: float, iou: float, max_det: int) -> RawDetections:
        pred = outputs[0][0]
        candidates = pred[pred[:, 4] > conf]  # objectness gate, as YOLOv5's own NMS does
        if len(candidates) == 0:
            return RawDetections.empty()
        cls_scores = candidates[:, 5 : 5 + self.num_classes] * candidates[:, 4:5]
        class_ids = cls_scores.argmax(axis=1)
        scores = cls_scores[np.arange(len(candidates)), class_ids]
        keep = scores > conf
        raw = RawDetections(
            cxcywh_to_xyxy(candidates[keep, :4]), scores[keep].astype(np.float32), class_ids[keep].astype(np.int64)
        )
        return class_aware_nms(_top_candidates(raw), iou, max_det)


class End2EndDecoder:
    """NMS already ran inside the model: only the confidence threshold is ours to apply."""

    name = "end2end"

    def __init__(self, input_size: tuple[int, int]):
        self.input_size = input_size  # (width, height), to scale boxes some exporters write normalised

    def __call__(self, outputs: list[np.ndarray], conf: float, iou: float, max_det: int) -> RawDetections:
        pred = outputs[0][0]
        pred = pred[pred[:, 4] > conf][:max_det]
        return _scaled(RawDetections(pred[:, :4].astype(np.float32), pred[:, 4].astype(np.float32),
                                     pred[:, 5].astype(np.int64)), self.input_size)


class End2EndSplitDecoder:
    name = "end2end-split"

    def __init__(self, boxes_idx: int, scores_idx: int, classes_idx: int, count_idx: int | None,
                 input_size: tuple[int, int]):
        self.idx = (boxes_idx, scores_idx, classes_idx)
        self.count_idx = count_idx
        self.input_size = input_size

    def __call__(self, outputs: list[np.ndarray], conf: float, iou: float, max_det: int) -> RawDetections:
        boxes, scores, classes = (outputs[i][0] for i in self.idx)
        if self.count_idx is not None:
            n = int(np.asarray(outputs[self.count_idx]).reshape(-1)[0])
            boxes, scores, classes = boxes[:n], scores[:n], classes[:n]
        keep = scores > conf
        raw = RawDetections(boxes[keep].astype(np.float32), scores[keep].astype(np.float32), classes[keep].astype(np.int64))
        return _scaled(raw.take(np.arange(min(len(raw.scores), max_det))), self.input_size)


def _scaled(raw: RawDetections, input_size: tuple[int, int]) -> RawDetections:
    # Some exporters write boxes normalised to 0..1; no real box in pixels fits inside 1.5 px on both axes.
    if len(raw.boxes) and float(np.abs(raw.boxes).max()) <= 1.5:
        raw.boxes = raw.boxes * np.array([*input_size, *input_size], np.float32)
    return raw


def _find_split_outputs(names: list[str], shapes: list[tuple[int, ...]]):
    boxes = [i for i, s in enumerate(shapes) if len(s) == 3 and s[2] == 4]
    if len(boxes) != 1:
        return None
    n = shapes[boxes[0]][1]
    per_det = [i for i, s in enumerate(shapes) if len(s) == 2 and s[1] == n]
    if len(per_det) != 2:
        return None
    # Tell scores from classes by name where the exporter named them; else the float one with values <= 1 wins.
    by_name = {i: names[i].lower() for i in per_det}
    classes = [i for i in per_det if any(k in by_name[i] for k in ("class", "label"))]
    scores_idx, classes_idx = (per_det[0], per_det[1]) if not classes or classes[0] == per_det[1] else (per_det[1], per_det[0])
    counts = [i for i, s in enumerate(shapes) if len(s) == 2 and s[1] == 1 and i not in per_det]
    return boxes[0], scores_idx, classes_idx, counts[0] if counts else None


def select_decoder(path: Path, output_names: list[str], outputs: list[np.ndarray], num_classes: int,
                   task: str, end2end: bool | None, input_size: tuple[int, int]):
    """Recognise the layout from the outputs of a real (warm-up) run; raise a clear error naming what was seen."""
    shapes = [tuple(int(d) for d in np.asarray(o).shape) for o in outputs]
    if len(outputs) >= 3:
        split = _find_split_outputs(output_names, shapes)
        if split:
            return End2EndSplitDecoder(*split, input_size=input_size)
    main = shapes[0]
    if len(main) == 3 and main[0] == 1:
        _, a, b = main
        nc = num_classes
        extra_rows_ok = task in ("segment", "pose", "obb")
        if b == 6 and (end2end or (end2end is None and a <= END2END_MAX_ROWS)):
            return End2EndDecoder(input_size)
        if nc:
            if a < b and (a == 4 + nc or (extra_rows_ok and a > 4 + nc)):
                return Yolov8Decoder(nc)
            if b == 5 + nc and a > b:
                return Yolov5Decoder(nc)
            if b == 4 + nc and a > b:
                return Yolov8Decoder(nc, transposed=True, input_size=input_size)
        else:
            if 4 < a < b:
                return Yolov8Decoder(a - 4)
            if b > 5 and a > b:
                return Yolov5Decoder(b - 5)
    seen = ", ".join(f"{n} {list(s)}" for n, s in zip(output_names, shapes))
    names_note = f" with {num_classes} class names in its metadata" if num_classes else " (no class names in its metadata)"
    raise UnknownModelLayoutError(
        f"{path}: output layout not recognised{names_note}. Outputs seen: {seen}. Supported layouts: "
        "YOLOv8/YOLO11 [1, 4+nc, N], YOLOv5 [1, N, 5+nc], end-to-end [1, N, 6] (x1,y1,x2,y2,score,class), "
        "or separate boxes [1,N,4] / scores [1,N] / classes [1,N] outputs. Export the model in one of these layouts "
        "(Ultralytics: `yolo export format=onnx`)."
    )
