"""Every supported output layout, decoded from hand-built tensors and through real ONNX files."""

from pathlib import Path

import numpy as np
import pytest

from edge_console.core.detection.decoders import (
    End2EndDecoder,
    End2EndSplitDecoder,
    Yolov5Decoder,
    Yolov8Decoder,
    select_decoder,
)
from edge_console.core.detection.detector import Detector
from edge_console.core.errors import UnknownModelLayoutError
from tests.support.onnx_factory import constant_output_model, ultralytics_metadata

NAMES = ["bolt", "nut", "washer"]


def v8_tensor(rows, n=84, nc=3):
    """rows: (cx, cy, w, h, class_id, score) -> [1, 4+nc, n]."""
    out = np.zeros((1, 4 + nc, n), np.float32)
    for i, (cx, cy, w, h, c, s) in enumerate(rows):
        out[0, :4, i] = (cx, cy, w, h)
        out[0, 4 + c, i] = s
    return out


def v5_tensor(rows, n=100, nc=3):
    out = np.zeros((1, n, 5 + nc), np.float32)
    for i, (cx, cy, w, h, c, obj, cls) in enumerate(rows):
        out[0, i, :4] = (cx, cy, w, h)
        out[0, i, 4] = obj
        out[0, i, 5 + c] = cls
    return out


def test_yolov8_decodes_thresholds_and_runs_class_aware_nms():
    t = v8_tensor([
        (32, 32, 10, 20, 0, 0.9),
        (33, 32, 10, 20, 0, 0.8),  # same class, overlapping: suppressed
        (33, 32, 10, 20, 1, 0.7),  # other class at the same place: kept (NMS is class-aware)
        (10, 10, 4, 4, 2, 0.1),  # under the threshold
    ])
    raw = Yolov8Decoder(3)([t], conf=0.25, iou=0.45, max_det=300)
    assert sorted(raw.class_ids.tolist()) == [0, 1]
    i = int(np.flatnonzero(raw.class_ids == 0)[0])
    np.testing.assert_allclose(raw.boxes[i], [27, 22, 37, 42])
    assert raw.scores[i] == pytest.approx(0.9)


def test_yolov8_max_detections_keeps_the_best():
    rows = [(10 + 20 * i, 10, 8, 8, 0, 0.3 + 0.01 * i) for i in range(20)]
    raw = Yolov8Decoder(3)([v8_tensor(rows)], conf=0.25, iou=0.45, max_det=5)
    assert len(raw.scores) == 5 and raw.scores.min() >= 0.3 + 0.01 * 15 - 1e-6


def test_yolov5_multiplies_objectness_by_class_score():
    t = v5_tensor([(50, 50, 20, 10, 2, 0.9, 0.9), (10, 10, 4, 4, 1, 0.9, 0.2), (80, 80, 4, 4, 0, 0.2, 1.0)])
    raw = Yolov5Decoder(3)([t], conf=0.25, iou=0.45, max_det=300)
    assert raw.class_ids.tolist() == [2]
    assert raw.scores[0] == pytest.approx(0.81)
    np.testing.assert_allclose(raw.boxes[0], [40, 45, 60, 55])


def test_end2end_applies_only_the_threshold_and_scales_normalised_boxes():
    t = np.zeros((1, 300, 6), np.float32)
    t[0, 0] = (10, 20, 30, 40, 0.9, 1)
    t[0, 1] = (11, 21, 31, 41, 0.8, 1)  # overlapping, same class: the model's own NMS kept it, so do we
    raw = End2EndDecoder((64, 64))([t], conf=0.25, iou=0.45, max_det=300)
    assert len(raw.scores) == 2 and raw.class_ids.tolist() == [1, 1]
    t2 = np.zeros((1, 300, 6), np.float32)
    t2[0, 0] = (0.25, 0.5, 0.5, 1.0, 0.9, 0)
    raw2 = End2EndDecoder((64, 32))([t2], conf=0.25, iou=0.45, max_det=300)
    np.testing.assert_allclose(raw2.boxes[0], [16, 16, 32, 32])


def test_end2end_split_outputs_honour_num_dets():
    boxes = np.zeros((1, 100, 4), np.float32)
    boxes[0, :3] = [(1, 2, 11, 12), (20, 20, 30, 30), (40, 40, 50, 50)]
    scores = np.zeros((1, 100), np.float32)
    scores[0, :3] = (0.9, 0.8, 0.7)
    classes = np.zeros((1, 100), np.float32)
    classes[0, :3] = (0, 1, 2)
    count = np.array([[2]], np.float32)
    dec = select_decoder(Path("m.onnx"), ["num_dets", "det_boxes", "det_scores", "det_classes"],
                         [count, boxes, scores, classes], 3, "detect", None, (64, 64))
    assert isinstance(dec, End2EndSplitDecoder)
    raw = dec([count, boxes, scores, classes], conf=0.25, iou=0.45, max_det=300)
    assert raw.class_ids.tolist() == [0, 1]


@pytest.mark.parametrize("shape,nc,end2end,expected", [
    ((1, 7, 8400), 3, None, "yolov8"),
    ((1, 84, 8400), 0, None, "yolov8"),  # no names: nc from the shape
    ((1, 4 + 3 + 32, 8400), 3, None, "yolov8"),  # segment head: extra rows, only with task=segment
    ((1, 25200, 8), 3, None, "yolov5"),
    ((1, 25200, 85), 0, None, "yolov5"),
    ((1, 300, 6), 80, None, "end2end"),
    ((1, 300, 6), 80, True, "end2end"),
    ((1, 8400, 7), 3, None, "yolov8"),  # transposed v8 from third-party exporters
])
def test_layout_is_recognised_from_shapes_and_metadata(shape, nc, end2end, expected):
    task = "segment" if shape[1] == 39 else "detect"
    dec = select_decoder(Path("m.onnx"), ["output0"], [np.zeros(shape, np.float32)], nc, task, end2end, (640, 640))
    assert dec.name == expected


def test_unknown_layout_error_names_the_file_and_every_output_shape():
    with pytest.raises(UnknownModelLayoutError) as err:
        select_decoder(Path("/x/odd.onnx"), ["logits", "aux"], [np.zeros((1, 1000)), np.zeros((1, 5))], 0,
                       "detect", None, (224, 224))
    msg = str(err.value)
    assert "/x/odd.onnx" in msg and "logits [1, 1000]" in msg and "aux [1, 5]" in msg and "YOLOv8" in msg


# --- the same layouts through real ONNX files and the Detector, boxes mapped to the source frame ---

def test_detector_yolov8_file_maps_boxes_to_the_source_frame(tmp_path):
    path = constant_output_model(tmp_path / "v8.onnx", {"output0": v8_tensor([(32, 32, 16, 8, 1, 0.9)])},
                                 metadata=ultralytics_metadata(NAMES, version="3.1.0", model_name="parts"))
    det = Detector(path)
    assert det.layout == "yolov8" and det.spec.class_names == tuple(NAMES)
    assert det.spec.version == "3.1.0" and det.spec.name == "parts" and len(det.spec.sha256) == 64
    # 128x64 source -> 64x32 content with 16 px padding at the top: input (24,28,40,36) -> source (48,24,80,40)
    result = det.detect(np.zeros((64, 128, 3), np.uint8))
    (d,) = result.detections
    assert (d.class_id, d.class_name) == (1, "nut")
    np.testing.assert_allclose(d.box, (48, 24, 80, 40), atol=1e-4)
    assert result.timings.inference_ms > 0 and result.timings.preprocess_ms > 0


def test_detector_yolov5_and_end2end_files(tmp_path):
    v5 = constant_output_model(tmp_path / "v5.onnx", {"output0": v5_tensor([(32, 32, 8, 8, 2, 1.0, 0.9)])},
                               metadata=ultralytics_metadata(NAMES))
    assert [d.class_name for d in Detector(v5).detect(np.zeros((64, 64, 3), np.uint8)).detections] == ["washer"]
    e2e = np.zeros((1, 300, 6), np.float32)
    e2e[0, 0] = (8, 8, 24, 24, 0.95, 0)
    path = constant_output_model(tmp_path / "e2e.onnx", {"output0": e2e}, metadata=ultralytics_metadata(NAMES))
    det = Detector(path)
    assert det.layout == "end2end"
    (d,) = det.detect(np.zeros((64, 64, 3), np.uint8)).detections
    np.testing.assert_allclose(d.box, (8, 8, 24, 24))


def test_model_without_metadata_uses_generic_class_names(tmp_path):
    path = constant_output_model(tmp_path / "bare.onnx", {"output0": v8_tensor([(32, 32, 8, 8, 2, 0.9)])})
    det = Detector(path)
    assert det.spec.version == "unknown" and det.spec.name == "bare"
    assert [d.class_name for d in det.detect(np.zeros((64, 64, 3), np.uint8)).detections] == ["class2"]


def test_transposed_head_with_normalised_boxes_like_rtdetr(tmp_path):
    # RT-DETR exports [1, 300, 4+nc] with cx,cy,w,h normalised to 0..1 and class scores.
    out = np.zeros((1, 300, 4 + 3), np.float32)
    out[0, 0, :4] = (0.5, 0.5, 0.25, 0.5)
    out[0, 0, 4 + 1] = 0.9
    path = constant_output_model(tmp_path / "rtdetr.onnx", {"output0": out}, metadata=ultralytics_metadata(NAMES))
    det = Detector(path)
    assert det.layout == "yolov8"
    (d,) = det.detect(np.zeros((64, 64, 3), np.uint8)).detections
    assert d.class_name == "nut"
    np.testing.assert_allclose(d.box, (24, 16, 40, 48))


def test_dynamic_input_axes_take_their_size_from_imgsz(tmp_path):
    # `yolo export dynamic=True` leaves batch, height and width symbolic; imgsz in the metadata says the size.
    path = constant_output_model(tmp_path / "dyn.onnx", {"output0": v8_tensor([(48, 32, 16, 8, 0, 0.9)])},
                                 input_shape=("batch", 3, "height", "width"),
                                 metadata=ultralytics_metadata(NAMES, imgsz=(64, 96)))
    det = Detector(path)
    assert (det.spec.input_height, det.spec.input_width) == (64, 96)
    (d,) = det.detect(np.zeros((64, 96, 3), np.uint8)).detections
    np.testing.assert_allclose(d.box, (40, 28, 56, 36))
