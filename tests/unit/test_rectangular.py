"""Rectangular inference: a dynamic-shape model is fed the smallest stride-aligned rectangle, a fixed one its square.

The shapes asserted are the ones the onnxruntime session really received (a recording wrapper around it).
"""

import numpy as np
import pytest

from edge_console.core.detection.detector import Detector
from edge_console.core.errors import ModelError
from tests.support.onnx_factory import constant_output_model, ultralytics_metadata

NAMES = ["bolt", "nut", "washer"]
DYNAMIC = ("batch", 3, "height", "width")
FRAME = np.zeros((720, 1280, 3), np.uint8)


class RecordingSession:
    """Passes every call to the real session and keeps the shape of each input tensor it was given."""

    def __init__(self, session):
        self._session = session
        self.fed: list[tuple[int, ...]] = []

    def run(self, names, feeds):
        self.fed.extend(tuple(v.shape) for v in feeds.values())
        return self._session.run(names, feeds)

    def __getattr__(self, name):
        return getattr(self._session, name)


def v8_head(n=2100, box=(160, 96, 32, 16), cls=1):
    out = np.zeros((1, 4 + len(NAMES), n), np.float32)
    out[0, :4, 0] = box
    out[0, 4 + cls, 0] = 0.9
    return out


def recorded(path, **kw) -> tuple[Detector, RecordingSession]:
    det = Detector(path, **kw)
    det.session = RecordingSession(det.session)
    return det, det.session


def test_dynamic_model_runs_on_the_ultralytics_rectangle(tmp_path):
    # imgsz 320, stride 32, a 1280x720 frame: 320x180 content + 12 rows of padding = 320x192, as Ultralytics.
    path = constant_output_model(tmp_path / "dyn.onnx", {"output0": v8_head()}, input_shape=DYNAMIC,
                                 metadata=ultralytics_metadata(NAMES, imgsz=(320, 320)))
    det, session = recorded(path)
    assert det.rectangular and det.stride == 32
    result = det.detect(FRAME)
    assert session.fed == [(1, 3, 192, 320)]
    assert det.last_input_size == (320, 192) and det.input_size_for(1280, 720) == (320, 192)
    assert det.input_size_for(720, 1280) == (192, 320) and det.input_size_for(640, 640) == (320, 320)
    # The box (160, 96) +- (16, 8) in the 320x192 input, 6 rows of padding on top, scale 1/4: back in the frame.
    (d,) = result.detections
    np.testing.assert_allclose(d.box, ((160 - 16) * 4, (96 - 8 - 6) * 4, (160 + 16) * 4, (96 + 8 - 6) * 4))
    info = det.describe((1280, 720))["input"]
    assert (info["rectangular"], info["used_width"], info["used_height"], info["width"]) == (True, 320, 192, 320)


def test_fixed_model_keeps_its_square(tmp_path):
    path = constant_output_model(tmp_path / "fixed.onnx", {"output0": v8_head()}, input_shape=(1, 3, 320, 320),
                                 metadata=ultralytics_metadata(NAMES, imgsz=(320, 320)))
    det, session = recorded(path)
    assert not det.rectangular
    (d,) = det.detect(FRAME).detections
    assert session.fed == [(1, 3, 320, 320)] and det.last_input_size == (320, 320)
    assert det.input_size_for(1280, 720) == (320, 320)
    # Same output, square input: 70 rows of padding on top instead of 6.
    np.testing.assert_allclose(d.box, ((160 - 16) * 4, (96 - 8 - 70) * 4, (160 + 16) * 4, (96 + 8 - 70) * 4))
    with pytest.raises(ModelError, match=r"fixed.onnx: rectangular inference needs a model with dynamic input"):
        Detector(path, rectangular=True)


@pytest.mark.parametrize("how", ["parameter", "metadata"])
def test_rectangles_can_be_turned_off_for_a_dynamic_model(tmp_path, how):
    extra = {"rect": "false"} if how == "metadata" else {}
    path = constant_output_model(tmp_path / "dyn.onnx", {"output0": v8_head()}, input_shape=DYNAMIC,
                                 metadata=ultralytics_metadata(NAMES, imgsz=(320, 320), **extra))
    det, session = recorded(path, **({"rectangular": False} if how == "parameter" else {}))
    assert not det.rectangular
    det.detect(FRAME)
    assert session.fed == [(1, 3, 320, 320)]
    if how == "metadata":  # the caller's explicit choice wins over the file's
        forced, forced_session = recorded(path, rectangular=True)
        forced.detect(FRAME)
        assert forced.rectangular and forced_session.fed == [(1, 3, 192, 320)]


def test_stride_comes_from_the_metadata(tmp_path):
    path = constant_output_model(tmp_path / "dyn.onnx", {"output0": v8_head()}, input_shape=DYNAMIC,
                                 metadata=ultralytics_metadata(NAMES, imgsz=(320, 320), stride="64"))
    det, session = recorded(path)
    det.detect(np.zeros((640, 1280, 3), np.uint8))
    # 320x160 content: 160 rows of padding leave 160 mod 64 = 32 at stride 64 (320x192), none at stride 32.
    assert det.stride == 64 and session.fed == [(1, 3, 192, 320)]
    assert det.input_size_for(1280, 720) == (320, 192)  # 180 + (140 mod 64 = 12)
    bad = constant_output_model(tmp_path / "bad.onnx", {"output0": v8_head()}, input_shape=DYNAMIC,
                                metadata=ultralytics_metadata(NAMES, imgsz=(320, 320), stride="big"))
    with pytest.raises(ModelError, match=r"bad.onnx: metadata stride='big' cannot be read"):
        Detector(bad)


@pytest.mark.parametrize("layout", ["end2end", "rtdetr"])
def test_normalised_boxes_scale_by_the_rectangle_actually_used(tmp_path, layout):
    # Boxes normalised to 0..1 are fractions of the tensor the frame was run on, here 320x192, not the 320x320 square.
    if layout == "end2end":
        out = np.zeros((1, 300, 6), np.float32)
        out[0, 0] = (0.25, 0.25, 0.5, 0.75, 0.9, 1)
    else:
        out = np.zeros((1, 300, 4 + len(NAMES)), np.float32)
        out[0, 0, :4] = (0.375, 0.5, 0.25, 0.5)  # the same box as cx, cy, w, h
        out[0, 0, 4 + 1] = 0.9
    path = constant_output_model(tmp_path / f"{layout}.onnx", {"output0": out}, input_shape=DYNAMIC,
                                 metadata=ultralytics_metadata(NAMES, imgsz=(320, 320)))
    det = Detector(path)
    assert det.layout == ("end2end" if layout == "end2end" else "yolov8") and det.rectangular
    (d,) = det.detect(FRAME).detections
    # input (80, 48, 160, 144) in 320x192 -> minus 6 rows of padding, times 4
    np.testing.assert_allclose(d.box, (320, 168, 640, 552), atol=1e-3)


def test_warm_up_on_the_square_recognises_a_dynamic_model_without_names(tmp_path):
    # Without names the layout must be proven by the head's cell count for the warm-up input, the nominal square:
    # 64x64 has 8*8 + 4*4 + 2*2 = 84 cells. Rectangular frames afterwards give other counts and still decode.
    out = np.zeros((1, 4 + 3, 84), np.float32)
    out[0, :4, 0] = (32, 20, 8, 8)
    out[0, 4 + 2, 0] = 0.9
    path = constant_output_model(tmp_path / "bare.onnx", {"output0": out}, input_shape=DYNAMIC,
                                 metadata={"imgsz": "[64, 64]", "stride": "8"})
    det, session = recorded(path)
    assert det.layout == "yolov8" and det.rectangular and det.spec.class_names == ()
    (d,) = det.detect(np.zeros((360, 640, 3), np.uint8)).detections
    # 64x36 content + (28 mod 8 = 4) rows, 2 on top: a 64x40 input; scale 1/10.
    assert session.fed == [(1, 3, 40, 64)] and d.class_name == "class2"
    np.testing.assert_allclose(d.box, (280, 140, 360, 220), atol=1e-3)
