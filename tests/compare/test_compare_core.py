"""Comparison pieces on their own: class mapping, summaries, the model library, the YOLO export."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest
import yaml

from edge_console.core.detection.comparison import (
    IncompatibleModelsError,
    class_mapping,
    compare_frame,
    remap,
    summarize,
)
from edge_console.core.detection.detector import Detector
from edge_console.core.detection.model_library import ModelLibrary
from edge_console.core.detection.record import Detection, Timings
from edge_console.core.detection.yolo_dataset import (
    ExportCancelled,
    LabelledFrame,
    export_yolo_dataset,
    yolo_label_lines,
)
from edge_console.core.protocol import StreamHeader
from edge_console.core.scene.conveyor import ConveyorScene


def test_class_mapping_matches_by_name_and_names_differences():
    assert class_mapping(["a", "b"], ["a", "b"]) == {0: 0, 1: 1}
    assert class_mapping(["a", "b"], ["b", "a"]) == {0: 1, 1: 0}
    with pytest.raises(IncompatibleModelsError, match="only on the device: b; only in the local model: c"):
        class_mapping(["a", "b"], ["a", "c"])
    d = Detection(0, 0, 1, 1, 0, "b", 0.9)
    assert remap([d], {0: 1, 1: 0})[0].class_id == 1


def test_compare_frame_rejects_a_frame_that_does_not_match_its_header(parts_v2):
    det = Detector(parts_v2)
    header = StreamHeader(1, 0.0, "2.0.0", 320, 240)
    with pytest.raises(ValueError, match="mismatched"):
        compare_frame(np.zeros((480, 640, 3), np.uint8), header, det, {i: i for i in range(4)})


def test_same_detector_on_the_same_frame_agrees(parts_v2):
    det = Detector(parts_v2)
    frame, _ = ConveyorScene(seed=5).frame(10)
    own = det.detect(frame)
    header = StreamHeader(7, 0.0, "2.0.0", 640, 480, own.timings, own.detections)
    fc = compare_frame(frame, header, det, {i: i for i in range(4)})
    assert fc.agrees and fc.report.f1 == 1.0 and fc.report.mean_iou > 0.999
    s = summarize([fc, fc])
    assert s["frames"] == 2 and s["matched"] == 2 * len(own.detections) and s["f1"] == 1.0
    assert s["local_timings_median"]["inference_ms"] > 0


def test_summary_pools_counts_over_frames():
    a = Detection(0, 0, 10, 10, 0, "a", 0.9)
    far = Detection(50, 50, 60, 60, 0, "a", 0.9)
    from edge_console.core.detection.comparison import FrameComparison
    from edge_console.core.detection.matching import match_detections

    f1 = FrameComparison(1, [a], [a], Timings(), Timings(), match_detections([a], [a]))
    f2 = FrameComparison(2, [a, far], [a], Timings(), Timings(), match_detections([a, far], [a]))
    s = summarize([f1, f2])
    assert (s["matched"], s["only_device"], s["only_local"]) == (2, 1, 0)
    assert s["precision"] == pytest.approx(2 / 3, abs=1e-4) and s["recall"] == 1.0 and s["disagreeing_frames"] == 1


def test_model_library_finds_by_sha_then_name_and_skips_broken_files(parts_v1, parts_v2, tmp_path):
    stick = tmp_path / "usb"
    stick.mkdir()
    shutil.copy(parts_v2, stick / "renamed.onnx")
    (stick / "broken.onnx").write_bytes(b"not a model")
    lib = ModelLibrary([stick])
    models = lib.models()
    assert [m.label for m in models] == ["parts 2.0.0"] and stick / "broken.onnx" in lib.problems
    v2 = models[0]
    assert lib.find("anything", "else", v2.sha256).path == stick / "renamed.onnx"
    assert lib.find("parts", "2.0.0").sha256 == v2.sha256
    assert lib.find("parts", "1.0.0") is None
    assert lib.add_file(parts_v1).version == "1.0.0" and lib.find("parts", "1.0.0") is not None
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        lib.add_folder(tmp_path / "absent")


def frames(n: int) -> list[LabelledFrame]:
    scene = ConveyorScene(width=320, height=240, seed=2)
    out = []
    for i in range(n):
        image, truth = scene.frame(i * 7)
        dets = [Detection(t.x1, t.y1, t.x2, t.y2, t.class_id, t.class_name, 1.0) for t in truth]
        out.append(LabelledFrame(f"dev-seq{i:06d}", image, dets))
    return out


def test_yolo_export_writes_a_dataset_a_yolo_reader_accepts(tmp_path):
    progress = []
    data = frames(4)
    out = export_yolo_dataset(data, tmp_path / "hard", ["bolt", "nut", "washer", "bracket"],
                              progress=lambda i, n: progress.append((i, n)))
    assert progress[-1] == (4, 4)
    cfg = yaml.safe_load((out / "data.yaml").read_text())
    assert cfg["nc"] == 4 and cfg["names"] == {0: "bolt", 1: "nut", 2: "washer", 3: "bracket"}
    images = sorted((out / cfg["train"]).glob("*.png"))
    labels = sorted((out / "labels" / "train").glob("*.txt"))
    assert [p.stem for p in images] == [p.stem for p in labels] == [f.name for f in data]
    for frame, label in zip(data, labels):
        rows = [line.split() for line in label.read_text().splitlines()]
        assert len(rows) == len(frame.detections)
        for row in rows:
            assert len(row) == 5 and 0 <= int(row[0]) < 4
            assert all(0.0 <= float(v) <= 1.0 for v in row[1:])
    # Boxes survive the normalisation: back to pixels within a hundredth of a pixel.
    d = data[0].detections[0]
    cls, cx, cy, w, h = map(float, yolo_label_lines([d], 320, 240)[0].split())
    assert (cx - w / 2) * 320 == pytest.approx(max(0, d.x1), abs=0.01)


def test_cancelled_or_clashing_export_leaves_nothing(tmp_path):
    cancel = threading.Event()
    with pytest.raises(ExportCancelled):
        export_yolo_dataset(frames(3), tmp_path / "ds", ["bolt"], progress=lambda i, n: cancel.set(), cancel=cancel)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        export_yolo_dataset(frames(1), tmp_path / "taken", ["bolt"])
