"""A model is never guessed: every output must belong to a recognised layout, and without class names the shape
alone must prove it (rules in edge_console/core/detection/decoders.py's docstring).

The refused graphs are other detector families and exports with outputs no layout explains. Before these rules,
several were accepted by reading their first output as a YOLO head with a made-up class count.
"""

from pathlib import Path

import numpy as np
import pytest

from edge_console.core.detection import decoders
from edge_console.core.detection.decoders import End2EndSplitDecoder, select_decoder
from edge_console.core.detection.detector import Detector
from edge_console.core.errors import UnknownModelLayoutError
from tests.support.onnx_factory import constant_output_model, ultralytics_metadata

NAMES = ["bolt", "nut", "washer"]
Z = np.zeros  # shapes are what these tests are about; the values do not matter

# Input 64x64: a YOLO head over strides 8/16/32 has 8*8 + 4*4 + 2*2 = 84 cells; YOLOv5 has 3 anchors per cell.
OTHER_FAMILIES = {
    "ssd_scores_first": {"scores": Z((1, 3000, 91)), "boxes": Z((1, 3000, 4))},
    "ssd_boxes_first": {"boxes": Z((1, 3000, 4)), "scores": Z((1, 3000, 91))},
    "retinanet_concatenated_heads": {"cls_logits": Z((1, 756, 80)), "bbox_regression": Z((1, 756, 4))},
    "retinanet_per_level_heads": {
        **{f"cls_p{i}": Z((1, 9 * 80, 64 >> i, 64 >> i)) for i in (3, 4, 5)},
        **{f"box_p{i}": Z((1, 9 * 4, 64 >> i, 64 >> i)) for i in (3, 4, 5)},
    },
    "faster_rcnn_torchvision": {"boxes": Z((100, 4)), "labels": Z((100,)), "scores": Z((100,))},
    # TF Object Detection API: boxes are ymin,xmin,ymax,xmax, and it adds per-class scores next to the NMS outputs.
    "tf_object_detection_api": {"detection_boxes": Z((1, 100, 4)), "detection_scores": Z((1, 100)),
                                "detection_classes": Z((1, 100)), "num_detections": Z((1, 1)),
                                "detection_multiclass_scores": Z((1, 100, 91))},
    "yolov5_with_per_level_raw_outputs": {"output0": Z((1, 252, 8)), "p3": Z((1, 3, 8, 8, 8)),
                                          "p4": Z((1, 3, 4, 4, 8)), "p5": Z((1, 3, 2, 2, 8))},
    "yolov5_with_an_embedding_output": {"output0": Z((1, 252, 8)), "embeddings": Z((1, 252, 64))},
    "yolov9_dual_head_kept": {"output0": Z((1, 7, 84)), "aux_output": Z((1, 7, 84))},
    "yolov8_detect_with_protos_but_task_detect": {"output0": Z((1, 4 + 3 + 32, 84)), "output1": Z((1, 32, 16, 16))},
    "classifier": {"logits": Z((1, 1000))},
    "classifier_with_features": {"logits": Z((1, 1000)), "features": Z((1, 512))},
}


@pytest.mark.parametrize("family", sorted(OTHER_FAMILIES))
@pytest.mark.parametrize("with_names", [True, False])
def test_other_detector_families_are_refused_with_every_output_named(tmp_path, family, with_names):
    outputs = OTHER_FAMILIES[family]
    meta = ultralytics_metadata(NAMES) if with_names else None
    path = constant_output_model(tmp_path / f"{family}.onnx", outputs, metadata=meta)
    with pytest.raises(UnknownModelLayoutError) as err:
        Detector(path)
    msg = str(err.value)
    assert f"{family}.onnx" in msg and "not recognised" in msg
    for name, value in outputs.items():
        assert f"{name} {list(value.shape)}" in msg


def test_segment_export_whose_extra_rows_are_not_its_prototypes_is_refused(tmp_path):
    # task=segment, but 32 rows of mask coefficients against 16 prototype channels: not a segment head.
    outputs = {"output0": Z((1, 4 + 3 + 32, 84)), "output1": Z((1, 16, 16, 16))}
    path = constant_output_model(tmp_path / "seg.onnx", outputs, metadata=ultralytics_metadata(NAMES, task="segment"))
    with pytest.raises(UnknownModelLayoutError, match=r"output1 \[1, 16, 16, 16\]"):
        Detector(path)


@pytest.mark.parametrize("protos_first", [False, True])
def test_segment_export_with_its_prototypes_is_a_yolov8_head(tmp_path, protos_first):
    head = np.zeros((1, 4 + 3 + 32, 84), np.float32)
    head[0, :4, 5] = (32, 32, 16, 8)
    head[0, 4 + 2, 5] = 0.9
    head[0, 4 + 3:, 5] = 5.0  # mask coefficients: must not be read as class scores
    outputs = {"output0": head, "output1": Z((1, 32, 16, 16))}
    if protos_first:
        outputs = {"output1": outputs["output1"], "output0": head}
    path = constant_output_model(tmp_path / "seg.onnx", outputs, metadata=ultralytics_metadata(NAMES, task="segment"))
    det = Detector(path)
    assert det.layout == "yolov8"
    (d,) = det.detect(np.zeros((64, 64, 3), np.uint8)).detections
    assert (d.class_name, round(d.confidence, 3)) == ("washer", 0.9)
    np.testing.assert_allclose(d.box, (24, 28, 40, 36))


def test_segment_export_without_names_reads_the_class_count_past_the_prototypes():
    outputs = [np.zeros((1, 4 + 80 + 32, 8400)), np.zeros((1, 32, 160, 160))]
    dec = select_decoder(Path("seg.onnx"), ["output0", "output1"], outputs, 0, "segment", None, (640, 640))
    assert dec.name == "yolov8" and dec.num_classes == 80


def test_end2end_split_takes_every_output_and_nothing_more():
    base = {"det_boxes": Z((1, 100, 4)), "det_scores": Z((1, 100)), "det_classes": Z((1, 100))}
    for outputs in (base, {"num_dets": Z((1, 1)), **base}):
        dec = select_decoder(Path("m.onnx"), list(outputs), list(outputs.values()), 3, "detect", None, (64, 64))
        assert isinstance(dec, End2EndSplitDecoder)
    extra = {**base, "num_dets": Z((1, 1)), "det_masks": Z((1, 100, 32))}
    with pytest.raises(UnknownModelLayoutError, match=r"det_masks \[1, 100, 32\]"):
        select_decoder(Path("m.onnx"), list(extra), list(extra.values()), 3, "detect", None, (64, 64))


def test_head_cell_counts_are_those_of_yolo_heads():
    counts = decoders.head_cell_counts((640, 640))
    assert {8400, 8000, 2000, 33600} <= counts  # P3-P5, P3-P4, P4-P5, P2-P5
    assert 8400 + 10 * 10 in counts  # P3-P6
    assert 5000 not in counts and 300 not in counts
    assert 84 in decoders.head_cell_counts((64, 64)) and 7 * 7 + 4 * 4 + 2 * 2 in decoders.head_cell_counts((50, 50))


# --- without class names the shape must prove the layout; with names it must match them -------------------------

def pick(shape, nc=0, task="detect", end2end=None, size=(640, 640)):
    return select_decoder(Path("m.onnx"), ["output0"], [np.zeros(shape, np.float32)], nc, task, end2end, size)


@pytest.mark.parametrize("shape,expected,classes", [
    ((1, 84, 8400), "yolov8", 80),  # 8400 = the cells of an 80x80 + 40x40 + 20x20 head at 640
    ((1, 6, 2000), "yolov8", 2),  # a two-level head (strides 16 and 32)
    ((1, 25200, 85), "yolov5", 80),  # three anchors per cell
    ((1, 25200, 6), "yolov5", 1),  # a single-class YOLOv5, not an end-to-end model: 25200 rows
    ((1, 300, 6), "end2end", None),  # a few hundred rows that are no head's cell count
])
def test_without_names_a_shape_that_proves_its_layout_is_read(shape, expected, classes):
    dec = pick(shape)
    assert dec.name == expected
    if classes is not None:
        assert dec.num_classes == classes


@pytest.mark.parametrize("shape,task", [
    ((1, 84, 5000), "detect"),  # 5000 is no head's cell count at 640: not a YOLO head
    ((1, 10, 100), "detect"),  # an embedding or a classifier's logits, not 6 classes over 100 cells
    ((1, 8400, 85), "detect"),  # YOLOX (raw, 1 anchor/cell, objectness) or transposed YOLOv8 with 81 classes
    ((1, 8400, 84), "detect"),  # transposed YOLOv8 with 80 classes or YOLOX with 79: only names can tell
    ((1, 25201, 85), "detect"),  # one row too many for YOLOv5's three anchors per cell
    ((1, 116, 8400), "segment"),  # segment rows without the prototypes: 32 of the rows are not classes
    ((1, 56, 8400), "pose"),  # 51 keypoint rows after the class score: the class count is unknowable
])
def test_without_names_an_ambiguous_shape_is_refused(shape, task):
    with pytest.raises(UnknownModelLayoutError, match=r"no class names in its metadata.*output0 "):
        pick(shape, task=task)


@pytest.mark.parametrize("shape,nc", [((1, 84, 8400), 3), ((1, 25200, 85), 3), ((1, 8400, 84), 3), ((1, 300, 6), 0)])
def test_with_names_the_shape_must_match_them(shape, nc):
    if nc == 0:  # end2end explicitly off: [1, 300, 6] has nothing else to be without names
        with pytest.raises(UnknownModelLayoutError):
            pick(shape, end2end=False)
        return
    with pytest.raises(UnknownModelLayoutError, match="with 3 class names"):
        pick(shape, nc=nc)


def test_two_layouts_that_fit_one_shape_are_refused_until_the_metadata_says():
    # [1, 300, 6] with 2 classes: end-to-end (x1,y1,x2,y2,score,class) or an RT-DETR head of 300 queries
    # (cx,cy,w,h + 2 class scores). Reading one as the other gives boxes that look plausible and are wrong.
    with pytest.raises(UnknownModelLayoutError, match=r"ambiguous.*end-to-end.*RT-DETR.*end2end='true'"):
        pick((1, 300, 6), nc=2)
    assert pick((1, 300, 6), nc=2, end2end=True).name == "end2end"
    assert pick((1, 300, 6), nc=2, end2end=False).name == "yolov8"
    # One class: YOLOv5's reading needs three anchors per head cell, and 300 rows are not that: end-to-end.
    assert pick((1, 300, 6), nc=1).name == "end2end"
    assert pick((1, 25200, 6), nc=1).name == "yolov5"
    assert pick((1, 8400, 6), nc=2).name == "yolov8"  # 8400 rows: a transposed head, too many for end-to-end
