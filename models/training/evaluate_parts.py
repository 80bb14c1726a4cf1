"""Measure a parts detector on a held-out set of generated conveyor scenes, through the product's own Detector.

Why through `Detector`: the figures in MODEL_CARD.md must describe what a user gets from the product
(its letterbox, its decoding, its NMS at the default thresholds), not what the training code believes.

Prints one line per model and writes a JSON report: mAP@0.5 (COCO definition, app/edge_console/core/detection/metrics.py), AP per class,
and precision/recall at the confidence threshold. With --coco the same predictions are also scored by pycocotools
as a cross-check of our mAP.

    python models/training/evaluate_parts.py models/parts-v1.onnx models/parts-v2.onnx --coco --json /tmp/eval.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "app"))  # run from a checkout without installing it

from edge_console.core.detection.detector import Detector  # noqa: E402
from edge_console.core.detection.metrics import average_precision_per_class, precision_recall  # noqa: E402
from edge_console.core.detection.record import Detection  # noqa: E402
from edge_console.core.scene.conveyor import CLASS_NAMES, GroundTruth, render_scene  # noqa: E402

EVAL_SEED = 3000  # distinct from training (1000+) and validation (2000+) streams in train_parts.py
FRAME_SIZE = (640, 480)  # what the simulator's camera produces


def held_out_scene(index: int, seed: int = EVAL_SEED) -> tuple[np.ndarray, list[GroundTruth]]:
    """Scene i of the evaluation stream depends only on (seed, i), so any prefix of the stream is the same set."""
    return render_scene(np.random.default_rng([seed, index]), *FRAME_SIZE)


def coco_map50(predictions: list[list[Detection]], truths: list[list[GroundTruth]], num_classes: int) -> float:
    """mAP@0.5 as pycocotools computes it, for the same predictions (the cross-check)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = [{"id": i, "width": FRAME_SIZE[0], "height": FRAME_SIZE[1]} for i in range(len(truths))]
    annotations = [
        {"image_id": i, "category_id": t.class_id, "iscrowd": 0,
         "bbox": [t.x1, t.y1, t.x2 - t.x1, t.y2 - t.y1], "area": (t.x2 - t.x1) * (t.y2 - t.y1)}
        for i, image_truths in enumerate(truths) for t in image_truths
    ]
    for n, annotation in enumerate(annotations):
        annotation["id"] = n + 1  # COCO ids start at 1
    results = [{"image_id": i, "category_id": p.class_id, "score": p.confidence,
                "bbox": [p.x1, p.y1, p.x2 - p.x1, p.y2 - p.y1]}
               for i, image_preds in enumerate(predictions) for p in image_preds]
    if not results:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools narrates every step
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations,
                      "categories": [{"id": c} for c in range(num_classes)]}
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluation.params.iouThrs = np.array([0.5])
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][0, :, :, 0, -1]  # IoU 0.5, all recall points, all classes, area all
    per_class = [precision[:, k].mean() for k in range(precision.shape[1]) if (precision[:, k] > -1).any()]
    return float(np.mean(per_class)) if per_class else 0.0


def report(detector: Detector, predictions: list[list[Detection]], truths: list[list[GroundTruth]], seed: int,
           seconds: float, with_coco: bool) -> dict:
    conf = detector.conf_threshold
    per_class = average_precision_per_class(predictions, truths, 0.5, len(CLASS_NAMES))
    pr = precision_recall(predictions, truths, conf_threshold=conf, iou_threshold=0.5)
    result = {
        "model": detector.spec.name,
        "version": detector.spec.version,
        "file": detector.spec.path.name,
        "sha256": detector.spec.sha256,
        "images": len(truths),
        "ground_truth_boxes": sum(len(t) for t in truths),
        "seed": seed,
        "conf_threshold": conf,
        "nms_iou_threshold": detector.iou_threshold,
        "map50": float(np.mean(list(per_class.values()))),
        "ap50_per_class": {CLASS_NAMES[k]: round(v, 4) for k, v in per_class.items()},
        "precision": pr.precision,
        "recall": pr.recall,
        "true_positives": pr.true_positives,
        "false_positives": pr.false_positives,
        "false_negatives": pr.false_negatives,
        "ms_per_image": 1000 * seconds / len(truths),
    }
    if with_coco:
        result["pycocotools_map50"] = coco_map50(predictions, truths, len(CLASS_NAMES))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path, help="ONNX files to evaluate")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--seed", type=int, default=EVAL_SEED)
    parser.add_argument("--conf", type=float, default=0.25, help="confidence threshold (the Detector's default)")
    parser.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold (the Detector's default)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--coco", action="store_true", help="also score with pycocotools as a cross-check")
    parser.add_argument("--json", type=Path, help="write the reports here as a JSON list")
    args = parser.parse_args(argv)
    cv2.setNumThreads(args.threads)

    detectors = [Detector(path, conf_threshold=args.conf, iou_threshold=args.iou, intra_op_threads=args.threads,
                          inter_op_threads=1) for path in args.models]
    predictions: list[list[list[Detection]]] = [[] for _ in detectors]
    seconds = [0.0 for _ in detectors]
    truths = []
    for index in range(args.images):  # one scene at a time through every model: no need to hold the set
        frame, scene_truths = held_out_scene(index, args.seed)
        truths.append(scene_truths)
        for k, detector in enumerate(detectors):
            started = time.perf_counter()
            predictions[k].append(detector.detect(frame).detections)
            seconds[k] += time.perf_counter() - started
    reports = []
    for detector, model_predictions, model_seconds in zip(detectors, predictions, seconds):
        result = report(detector, model_predictions, truths, args.seed, model_seconds, args.coco)
        reports.append(result)
        coco = f" (pycocotools {result['pycocotools_map50']:.4f})" if args.coco else ""
        print(f"{result['model']} {result['version']}: mAP@0.5 {result['map50']:.4f}{coco}, "
              f"P {result['precision']:.4f} R {result['recall']:.4f} at conf {args.conf} on {args.images} images; "
              f"AP {result['ap50_per_class']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2) + "\n")
    print(json.dumps(reports))


if __name__ == "__main__":
    main()
