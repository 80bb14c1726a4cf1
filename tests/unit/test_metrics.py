import contextlib
import io

import numpy as np
import pytest

from edge_console.core.detection.metrics import (
    average_precision_per_class,
    box_iou,
    mean_average_precision,
    precision_recall,
    precision_recall_f1,
)
from edge_console.core.detection.record import Detection
from edge_console.core.scene.conveyor import GroundTruth


def gt(x1, y1, x2, y2, c=0) -> GroundTruth:
    return GroundTruth(float(x1), float(y1), float(x2), float(y2), c)


def det(x1, y1, x2, y2, conf, c=0) -> Detection:
    return Detection(float(x1), float(y1), float(x2), float(y2), c, f"class{c}", float(conf))


def test_box_iou_of_known_overlaps():
    ious = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    np.testing.assert_allclose(ious, [[1.0, 50 / 150, 0.0]])


def test_perfect_predictions_score_one():
    truths = [[gt(0, 0, 10, 10), gt(20, 20, 40, 40, 1)], [gt(5, 5, 15, 15, 1)]]
    preds = [[det(*t.box, 0.9, t.class_id) for t in image] for image in truths]
    assert mean_average_precision(preds, truths) == pytest.approx(1.0)
    pr = precision_recall(preds, truths)
    assert (pr.precision, pr.recall, pr.false_positives, pr.false_negatives) == (1.0, 1.0, 0, 0)


def test_no_predictions_score_zero():
    truths = [[gt(0, 0, 10, 10)]]
    assert mean_average_precision([[]], truths) == 0.0
    assert precision_recall([[]], truths).recall == 0.0


def test_hand_computed_curve():
    # Ranked: hit, miss, hit over 2 truths -> recall 0.5, 0.5, 1.0 and precision 1, 1/2, 2/3. The envelope is
    # 1 up to recall 0.5 (51 of the 101 points) and 2/3 above it (50 points).
    truths = [[gt(0, 0, 10, 10), gt(50, 50, 60, 60)]]
    preds = [[det(0, 0, 10, 10, 0.9), det(100, 100, 110, 110, 0.8), det(50, 50, 60, 61, 0.7)]]
    expected = (51 * 1.0 + 50 * 2 / 3) / 101
    assert mean_average_precision(preds, truths) == pytest.approx(expected, abs=1e-12)


def test_duplicates_are_false_positives_and_confidence_decides_who_matches():
    truths = [[gt(0, 0, 10, 10)]]
    # The lower-confidence duplicate fits better but comes second: the box is already taken.
    preds = [[det(0, 0, 10, 11, 0.9), det(0, 0, 10, 10, 0.5)]]
    pr = precision_recall(preds, truths, conf_threshold=0.0)
    assert (pr.true_positives, pr.false_positives) == (1, 1)
    assert mean_average_precision(preds, truths) == pytest.approx(1.0)  # the first hit already reached recall 1


def test_iou_threshold_and_class_must_both_hold():
    truths = [[gt(0, 0, 10, 10)]]
    half = [[det(5, 0, 15, 10, 0.9)]]  # IoU 1/3
    assert mean_average_precision(half, truths, iou_threshold=0.3) == pytest.approx(1.0)
    assert mean_average_precision(half, truths, iou_threshold=0.5) == 0.0
    wrong_class = [[det(0, 0, 10, 10, 0.9, c=1)]]
    assert mean_average_precision(wrong_class, truths, num_classes=2) == 0.0


def test_classes_without_ground_truth_are_left_out_of_the_mean():
    truths = [[gt(0, 0, 10, 10, 0)]]
    preds = [[det(0, 0, 10, 10, 0.9, 0), det(30, 30, 40, 40, 0.9, 2)]]  # class 2 has no truth anywhere
    assert average_precision_per_class(preds, truths, num_classes=3) == {0: pytest.approx(1.0)}
    assert mean_average_precision(preds, truths, num_classes=3) == pytest.approx(1.0)


def test_precision_recall_respects_the_confidence_threshold():
    truths = [[gt(0, 0, 10, 10), gt(20, 0, 30, 10)]]
    preds = [[det(0, 0, 10, 10, 0.9), det(20, 0, 30, 10, 0.2), det(50, 50, 60, 60, 0.3)]]
    pr = precision_recall(preds, truths, conf_threshold=0.25)
    assert (pr.true_positives, pr.false_positives, pr.false_negatives) == (1, 1, 1)
    assert (pr.precision, pr.recall) == (0.5, 0.5)


def test_precision_recall_f1_from_counts_and_the_empty_convention_is_the_callers():
    assert precision_recall_f1(3, 1, 2, when_undefined=0.0) == pytest.approx((0.75, 0.6, 2 * 0.75 * 0.6 / 1.35))
    assert precision_recall_f1(0, 2, 3, when_undefined=1.0) == (0.0, 0.0, 0.0)
    # Nothing claimed and nothing to find: ground-truth scoring says 0, agreement between two lists says 1.
    assert precision_recall_f1(0, 0, 0, when_undefined=0.0) == (0.0, 0.0, 0.0)
    assert precision_recall_f1(0, 0, 0, when_undefined=1.0) == (1.0, 1.0, 1.0)
    assert precision_recall_f1(0, 0, 4, when_undefined=1.0) == (1.0, 0.0, 0.0)  # nothing claimed, all missed
    with pytest.raises(TypeError):
        precision_recall_f1(1, 0, 0)  # the convention must be stated, never defaulted


def test_precision_recall_carries_f1_from_the_shared_function():
    truths = [[gt(0, 0, 10, 10), gt(20, 0, 30, 10)]]
    preds = [[det(0, 0, 10, 10, 0.9), det(50, 50, 60, 60, 0.3), det(70, 70, 80, 80, 0.3)]]
    pr = precision_recall(preds, truths)
    assert (pr.precision, pr.recall) == pytest.approx((1 / 3, 0.5)) and pr.f1 == pytest.approx(0.4)


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="one prediction list per image"):
        mean_average_precision([[]], [[], []])


def _random_case(seed: int, images: int = 30, classes: int = 3):
    rng = np.random.default_rng(seed)
    truths, preds = [], []
    for _ in range(images):
        image_truths, image_preds = [], []
        for _ in range(rng.integers(0, 6)):
            x, y = rng.uniform(0, 500, 2)
            w, h = rng.uniform(10, 80, 2)
            c = int(rng.integers(classes))
            image_truths.append(gt(x, y, x + w, y + h, c))
            for _ in range(rng.integers(0, 3)):  # jittered guesses, sometimes with the wrong class
                j = rng.normal(0, 0.07, 4) * [w, h, w, h]
                pc = c if rng.random() < 0.8 else int(rng.integers(classes))
                image_preds.append(det(x + j[0], y + j[1], x + w + j[2], y + h + j[3], rng.random(), pc))
        for _ in range(rng.integers(0, 3)):  # plain false positives
            x, y = rng.uniform(0, 500, 2)
            image_preds.append(det(x, y, x + rng.uniform(10, 80), y + rng.uniform(10, 80), rng.random(),
                                   int(rng.integers(classes))))
        truths.append(image_truths)
        preds.append(image_preds)
    return preds, truths


def _pycocotools_map(preds, truths, iou_threshold, classes):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    annotations = [{"id": n + 1, "image_id": i, "category_id": t.class_id, "iscrowd": 0,
                    "bbox": [t.x1, t.y1, t.x2 - t.x1, t.y2 - t.y1], "area": (t.x2 - t.x1) * (t.y2 - t.y1)}
                   for n, (i, t) in enumerate((i, t) for i, ts in enumerate(truths) for t in ts)]
    results = [{"image_id": i, "category_id": p.class_id, "score": p.confidence,
                "bbox": [p.x1, p.y1, p.x2 - p.x1, p.y2 - p.y1]} for i, ps in enumerate(preds) for p in ps]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": [{"id": i} for i in range(len(truths))], "annotations": annotations,
                        "categories": [{"id": c} for c in range(classes)]}
        coco.createIndex()
        evaluation = COCOeval(coco, coco.loadRes(results), "bbox")
        evaluation.params.iouThrs = np.array([iou_threshold])
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][0, :, :, 0, -1]
    return float(np.mean([precision[:, k].mean() for k in range(classes) if (precision[:, k] > -1).any()]))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("iou_threshold", [0.5, 0.75])
def test_agrees_with_pycocotools(seed, iou_threshold):
    pytest.importorskip("pycocotools")
    preds, truths = _random_case(seed)
    ours = mean_average_precision(preds, truths, iou_threshold=iou_threshold, num_classes=3)
    assert 0.1 < ours < 0.99  # a case that exercises misses and false positives, not a trivial one
    assert ours == pytest.approx(_pycocotools_map(preds, truths, iou_threshold, 3), abs=1e-6)
