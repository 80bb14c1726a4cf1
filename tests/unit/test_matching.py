import pytest

from edge_console.core.detection.matching import iou_matrix, match_detections
from edge_console.core.detection.record import Detection


def det(x1, y1, x2, y2, cls=0, conf=0.9, name=None):
    return Detection(x1, y1, x2, y2, cls, name or f"c{cls}", conf)


def test_identical_lists_agree_perfectly():
    a = [det(0, 0, 10, 10), det(20, 20, 40, 40, cls=1)]
    r = match_detections(a, list(a))
    assert (r.precision, r.recall, r.f1, r.mean_iou) == (1.0, 1.0, 1.0, 1.0)
    assert not r.unmatched_a and not r.unmatched_b and not r.class_mismatches


def test_iou_values():
    m = iou_matrix([det(0, 0, 10, 10)], [det(5, 0, 15, 10), det(20, 20, 30, 30), det(0, 0, 10, 10)])
    assert m[0].tolist() == pytest.approx([50 / 150, 0.0, 1.0])


def test_greedy_by_confidence_like_coco():
    # Two a-boxes compete for one b-box: the more confident one takes it even though the other overlaps more.
    b = [det(0, 0, 10, 10)]
    a = [det(0, 0, 10, 10, conf=0.5), det(1, 0, 11, 10, conf=0.9)]
    r = match_detections(a, b)
    assert len(r.matched) == 1 and r.matched[0].a.confidence == 0.9
    assert r.matched[0].iou == pytest.approx(90 / 110)
    assert r.unmatched_a == [a[0]]
    assert r.precision == 0.5 and r.recall == 1.0 and r.f1 == pytest.approx(2 / 3)


def test_class_mismatch_is_reported_and_not_counted_as_a_match():
    a = [det(0, 0, 10, 10, cls=1), det(50, 50, 60, 60, cls=2)]
    b = [det(0, 0, 10, 10, cls=0)]
    r = match_detections(a, b)
    assert not r.matched
    assert len(r.class_mismatches) == 1 and r.class_mismatches[0].b.class_id == 0
    assert len(r.unmatched_a) == 2 and len(r.unmatched_b) == 1
    assert r.precision == 0.0 and r.recall == 0.0 and r.f1 == 0.0


def test_iou_threshold_is_respected():
    a, b = [det(0, 0, 10, 10)], [det(4, 0, 14, 10)]  # IoU = 60/140 = 0.43
    assert not match_detections(a, b, iou=0.5).matched
    assert match_detections(a, b, iou=0.4).matched[0].iou == pytest.approx(60 / 140)


def test_empty_sides():
    assert match_detections([], []).f1 == 1.0
    only_b = match_detections([], [det(0, 0, 1, 1)])
    assert only_b.recall == 0.0 and only_b.precision == 1.0 and only_b.mean_iou == 0.0
    assert match_detections([det(0, 0, 1, 1)], []).precision == 0.0


def test_summary_and_wire_round_trip():
    d = det(1.234, 2, 3, 4, cls=3, conf=0.87654, name="bracket")
    assert Detection.from_dict(d.to_dict()) == Detection(1.23, 2, 3, 4, 3, "bracket", 0.8765)
    with pytest.raises(ValueError, match="not a detection"):
        Detection.from_dict({"box": [1, 2]})
    assert match_detections([d], [d]).summary()["f1"] == 1.0
