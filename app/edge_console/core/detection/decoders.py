"""Output decoders for the detector layouts real users bring, recognised from output shapes and metadata.

Supported:
- `yolov8`: Ultralytics YOLOv8 / YOLO11 heads, one output [1, 4+nc, N] of cx,cy,w,h and per-class scores; also
  transposed [1, N, 4+nc], with boxes in pixels or normalised to 0..1 (RT-DETR exports). Segment exports
  (task=segment) carry 32 mask coefficients after the class scores plus a second output, the mask prototypes
  [1, 32, H/4, W/4]; pose and OBB exports carry keypoints or an angle after the scores. Those extra rows are
  ignored: the product draws boxes;
- `yolov5`: YOLOv5/YOLOv7-style heads [1, N, 5+nc] of cx,cy,w,h, objectness, per-class scores;
- `end2end`: NMS inside the model, one output [1, N, 6] of x1,y1,x2,y2,score,class (YOLOv10, YOLO26);
- `end2end-split`: NMS inside the model with separate boxes [1,N,4], scores [1,N], classes [1,N] outputs
  (TensorRT EfficientNMS style, optionally with a num_dets output [1,1]).
Every decoder returns boxes as x1,y1,x2,y2 in model-input pixels.

A model is never guessed (`select_decoder`):
- every output must belong to the layout. The only second output a one-output layout takes is a segment export's
  mask prototypes, and only when the metadata says task=segment and its channel count equals the mask
  coefficients left over after 4 + nc rows. Anything else (an SSD's separate boxes and scores, a RetinaNet's
  per-level heads, the per-level raw grids old YOLOv5 exports add next to the decoded output, a classifier) is
  refused: decoding the first output alone would invent a class count or drop what the other outputs mean;
- with class names in the metadata, the shape must match them exactly (4+nc rows, 5+nc or 4+nc columns);
- without class names the shape must prove the layout by itself, because the class count is read off the shape:
  [1, 4+nc, N] only when N is the cell count of a YOLO head for the input size (one anchor per cell of two or more
  consecutive stride levels, e.g. 8400 at 640: 80x80 + 40x40 + 20x20) and the task is plain detection;
  [1, N, 5+nc] only when N is three anchors per such cell (25200 at 640); [1, N, 6] with N <= 1000 rows that is
  no such count is end-to-end. A transposed head [1, N, 4+nc] is never read without names: YOLOX and other
  families share its shape with a different meaning;
- when two layouts still explain the shape (a 2-class [1, 300, 6] is end-to-end, or an RT-DETR head with 300
  queries), the one whose row count fits its family wins; if both fit, the model is refused and the error says
  which metadata (`end2end`, `names`) settles it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_console.core.errors import UnknownModelLayoutError

MAX_NMS_CANDIDATES = 30000  # as Ultralytics: beyond this NMS time explodes on a bad threshold
END2END_MAX_ROWS = 1000  # end-to-end models emit a few hundred rows at most; raw heads emit thousands
HEAD_STRIDES = (4, 8, 16, 32, 64)  # P2..P6: the stride levels YOLO heads are built from
ANCHORS_PER_CELL_V5 = 3
EXTRA_ROW_TASKS = ("segment", "pose", "obb")  # tasks whose head carries rows after the class scores


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


# Every decoder is called as decoder(outputs, conf, iou, max_det, input_size=(w, h)): `input_size` is the size of
# the tensor this very frame was run on, which differs from frame to frame with rectangular inference; decoders that
# scale normalised boxes use it (falling back to the size they were built with).

class Yolov8Decoder:
    name = "yolov8"

    def __init__(self, num_classes: int, transposed: bool = False, input_size: tuple[int, int] | None = None,
                 index: int = 0):
        self.num_classes = num_classes
        # [1, N, 4+nc] as some third-party exporters and RT-DETR exports write it; RT-DETR's boxes are normalised
        # to 0..1, so the transposed layout is scaled back to pixels when it is (input_size given).
        self.transposed = transposed
        self.input_size = input_size
        self.index = index  # which output holds the head (a segment export may list its prototypes first)

    def __call__(self, outputs: list[np.ndarray], conf: float, iou: float, max_det: int,
                 input_size: tuple[int, int] | None = None) -> RawDetections:
        pred = outputs[self.index][0]
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
            raw = _scaled(raw, input_size or self.input_size)
        return class_aware_nms(raw, iou, max_det)


class Yolov5Decoder:
    name = "yolov5"

    def __init__(self, num_classes: int):
        self.num_classes = num_classes

    def __call__(self, outputs: list[np.ndarray], conf: float, iou: float, max_det: int,
                 input_size: tuple[int, int] | None = None) -> RawDetections:
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

    def __call__(self, outputs: list[np.ndarray], conf: float, iou: float, max_det: int,
                 input_size: tuple[int, int] | None = None) -> RawDetections:
        pred = outputs[0][0]
        pred = pred[pred[:, 4] > conf][:max_det]
        return _scaled(RawDetections(pred[:, :4].astype(np.float32), pred[:, 4].astype(np.float32),
                                     pred[:, 5].astype(np.int64)), input_size or self.input_size)


class End2EndSplitDecoder:
    name = "end2end-split"

    def __init__(self, boxes_idx: int, scores_idx: int, classes_idx: int, count_idx: int | None,
                 input_size: tuple[int, int]):
        self.idx = (boxes_idx, scores_idx, classes_idx)
        self.count_idx = count_idx
        self.input_size = input_size

    def __call__(self, outputs: list[np.ndarray], conf: float, iou: float, max_det: int,
                 input_size: tuple[int, int] | None = None) -> RawDetections:
        boxes, scores, classes = (outputs[i][0] for i in self.idx)
        if self.count_idx is not None:
            n = int(np.asarray(outputs[self.count_idx]).reshape(-1)[0])
            boxes, scores, classes = boxes[:n], scores[:n], classes[:n]
        keep = scores > conf
        raw = RawDetections(boxes[keep].astype(np.float32), scores[keep].astype(np.float32), classes[keep].astype(np.int64))
        return _scaled(raw.take(np.arange(min(len(raw.scores), max_det))), input_size or self.input_size)


def _scaled(raw: RawDetections, input_size: tuple[int, int]) -> RawDetections:
    # Some exporters write boxes normalised to 0..1; no real box in pixels fits inside 1.5 px on both axes.
    if len(raw.boxes) and float(np.abs(raw.boxes).max()) <= 1.5:
        raw.boxes = raw.boxes * np.array([*input_size, *input_size], np.float32)
    return raw


# --- recognising the layout -------------------------------------------------------------------------------------

def head_cell_counts(input_size: tuple[int, int]) -> set[int]:
    """Row counts an anchor-free YOLO head can have for this input: the cells of two or more consecutive strides."""
    width, height = input_size
    cells = [math.ceil(height / s) * math.ceil(width / s) for s in HEAD_STRIDES]
    return {sum(cells[i:j]) for i in range(len(cells)) for j in range(i + 2, len(cells) + 1)}


def _find_split_outputs(names: list[str], shapes: list[tuple[int, ...]]):
    """Boxes/scores/classes(/count) indices when they are ALL the outputs, else None."""
    boxes = [i for i, s in enumerate(shapes) if len(s) == 3 and s[0] == 1 and s[2] == 4]
    if len(boxes) != 1:
        return None
    n = shapes[boxes[0]][1]
    per_det = [i for i, s in enumerate(shapes) if len(s) == 2 and s[0] == 1 and s[1] == n]
    if len(per_det) != 2:
        return None
    # Tell scores from classes by name where the exporter named them; else the first is the scores.
    by_name = {i: names[i].lower() for i in per_det}
    classes = [i for i in per_det if any(k in by_name[i] for k in ("class", "label"))]
    scores_idx, classes_idx = (per_det[0], per_det[1]) if not classes or classes[0] == per_det[1] else (per_det[1], per_det[0])
    counts = [i for i, s in enumerate(shapes) if len(s) == 2 and s == (1, 1) and i not in per_det]
    count_idx = counts[0] if len(counts) == 1 else None
    if len(shapes) != 3 + (count_idx is not None):
        return None  # an output none of the four roles explains
    return boxes[0], scores_idx, classes_idx, count_idx


@dataclass(frozen=True)
class _Candidate:
    label: str  # how the error message names it
    decoder: object
    fits: bool  # the row count is the one this family produces (tie-breaker between two readings of one shape)


def _candidates(shapes: list[tuple[int, ...]], nc: int, task: str, end2end: bool | None,
                input_size: tuple[int, int]) -> list[_Candidate]:
    """Every one-head layout (plus a segment export's prototypes) that explains ALL outputs."""
    main_idx, masks = 0, 0
    if len(shapes) == 2:
        # The only second output a one-head layout owns: segment prototypes [1, nm, h, w].
        protos = [i for i, s in enumerate(shapes) if len(s) == 4 and s[0] == 1]
        if task != "segment" or len(protos) != 1:
            return []
        main_idx, masks = 1 - protos[0], shapes[protos[0]][1]
    elif len(shapes) != 1:
        return []
    main = shapes[main_idx]
    if len(main) != 3 or main[0] != 1:
        return []
    _, a, b = main
    cells = head_cell_counts(input_size)
    v5_cells = {ANCHORS_PER_CELL_V5 * c for c in cells}
    found: list[_Candidate] = []
    if masks:  # segment export: [1, 4+nc+nm, N] next to its prototypes, nothing else
        classes = nc if nc else (a - 4 - masks if b in cells else 0)
        if a < b and classes > 0 and a == 4 + classes + masks:
            found.append(_Candidate(f"YOLOv8 segment [1, 4+{classes}+{masks}, N]", Yolov8Decoder(classes, index=main_idx), True))
        return found
    if b == 6 and end2end is not False and (end2end or a <= END2END_MAX_ROWS):
        e2e = _Candidate("end-to-end [1, N, 6]", End2EndDecoder(input_size), a not in cells and a not in v5_cells)
        if end2end:
            return [e2e]  # the metadata says so: no other reading of the shape is considered
        found.append(e2e)
    if nc:
        extra_rows = task in EXTRA_ROW_TASKS and a > 4 + nc
        if a < b and (a == 4 + nc or extra_rows):
            found.append(_Candidate(f"YOLOv8 [1, 4+{nc}, N]", Yolov8Decoder(nc), True))
        if a > b and b == 5 + nc:
            found.append(_Candidate(f"YOLOv5 [1, N, 5+{nc}]", Yolov5Decoder(nc), a in v5_cells))
        if a > b and b == 4 + nc:
            # Either one row per head cell, or a DETR-style query list of at most END2END_MAX_ROWS.
            found.append(_Candidate(f"transposed YOLOv8 / RT-DETR [1, N, 4+{nc}]",
                                    Yolov8Decoder(nc, transposed=True, input_size=input_size),
                                    a in cells or a <= END2END_MAX_ROWS))
    else:
        if 4 < a < b and b in cells and task == "detect":
            found.append(_Candidate(f"YOLOv8 [1, 4+{a - 4}, N]", Yolov8Decoder(a - 4), True))
        if a > b > 5 and a in v5_cells:
            found.append(_Candidate(f"YOLOv5 [1, N, 5+{b - 5}]", Yolov5Decoder(b - 5), True))
    return found


def select_decoder(path: Path, output_names: list[str], outputs: list[np.ndarray], num_classes: int,
                   task: str, end2end: bool | None, input_size: tuple[int, int]):
    """Recognise the layout from the outputs of a real (warm-up) run; raise a clear error naming what was seen.

    `input_size` is (width, height) of the warm-up input; see the module docstring for the rules.
    """
    shapes = [tuple(int(d) for d in np.asarray(o).shape) for o in outputs]
    seen = ", ".join(f"{n} {list(s)}" for n, s in zip(output_names, shapes))
    if len(outputs) >= 3:
        split = _find_split_outputs(output_names, shapes)
        if split:
            return End2EndSplitDecoder(*split, input_size=input_size)
        found: list[_Candidate] = []
    else:
        found = _candidates(shapes, num_classes, task or "detect", end2end, input_size)
    if len(found) > 1:
        found = [c for c in found if c.fits] or found
    if len(found) == 1:
        return found[0].decoder
    names_note = f" with {num_classes} class names in its metadata" if num_classes else " (no class names in its metadata)"
    if found:
        raise UnknownModelLayoutError(
            f"{path}: output layout is ambiguous{names_note}. Outputs seen: {seen}; they read as "
            f"{' or as '.join(c.label for c in found)}. Say which in the model's metadata: end2end='true' for a "
            "model with NMS inside, end2end='false' otherwise (and `names` with the class names).")
    raise UnknownModelLayoutError(
        f"{path}: output layout not recognised{names_note}, task={task or 'detect'}. Outputs seen: {seen}. "
        "Supported layouts: YOLOv8/YOLO11 [1, 4+nc, N] (task=segment: plus its prototypes [1, 32, H/4, W/4]), "
        "YOLOv5 [1, N, 5+nc], end-to-end [1, N, 6] (x1,y1,x2,y2,score,class), or separate boxes [1,N,4] / "
        "scores [1,N] / classes [1,N] outputs. Every output must belong to the layout, and without class names the "
        "shape must prove it (N the anchor count of a YOLO head for the input size). Export the model in one of "
        "these layouts with its class names (Ultralytics: `yolo export format=onnx`)."
    )
