import numpy as np
import pytest

from edge_console.core.detection.model_spec import ModelSpec
from edge_console.core.detection.preprocess import LETTERBOX_FILL, Preprocessor, plan_transform


def spec(**kw) -> ModelSpec:
    base = dict(path=None, name="m", version="1", sha256="0", class_names=("a",), input_name="images",
                input_height=320, input_width=320)
    base.update(kw)
    return ModelSpec(**base)


@pytest.mark.parametrize("src", [(1280, 720), (720, 1280), (640, 480), (333, 517), (320, 320), (100, 40)])
@pytest.mark.parametrize("letterbox", [True, False])
def test_boxes_round_trip_exactly(src, letterbox):
    t = plan_transform(*src, 320, 320, letterbox)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1, (50, 4)) * np.array([*src, *src])
    boxes = np.concatenate([np.minimum(xy[:, :2], xy[:, 2:]), np.maximum(xy[:, :2], xy[:, 2:])], axis=1)
    back = t.to_source(t.to_input(boxes))
    np.testing.assert_allclose(back, boxes, atol=1e-3)


def ultralytics_letterbox_auto(src_w, src_h, imgsz_w, imgsz_h, stride):
    """Ultralytics' LetterBox(auto=True, scaleup=True, center=True) size and padding, written out from its formulas:
    -> (resized w, h, top, bottom, left, right)."""
    r = min(imgsz_h / src_h, imgsz_w / src_w)
    new_w, new_h = int(round(src_w * r)), int(round(src_h * r))
    dw, dh = np.mod(imgsz_w - new_w, stride) / 2, np.mod(imgsz_h - new_h, stride) / 2
    return (new_w, new_h, int(round(dh - 0.1)), int(round(dh + 0.1)), int(round(dw - 0.1)), int(round(dw + 0.1)))


RECT_SOURCES = [(1280, 720), (720, 1280), (640, 480), (333, 517), (320, 320), (100, 40), (1920, 1080), (1000, 999)]


@pytest.mark.parametrize("src", RECT_SOURCES)
@pytest.mark.parametrize("imgsz,stride", [(320, 32), (640, 32), (640, 64), (320, 16)])
def test_rectangles_are_ultralytics_auto_letterbox(src, imgsz, stride):
    t = plan_transform(*src, imgsz, imgsz, True, stride)
    new_w, new_h, top, bottom, left, right = ultralytics_letterbox_auto(*src, imgsz, imgsz, stride)
    assert (t.input_width, t.input_height) == (new_w + left + right, new_h + top + bottom)
    assert (t.pad_x, t.pad_y) == (left, top)
    assert (round(src[0] * t.scale_x), round(src[1] * t.scale_y)) == (new_w, new_h)
    # Smallest stride-aligned rectangle holding the frame at the nominal size: never more than the square.
    assert t.input_width % stride == 0 and t.input_height % stride == 0
    assert max(t.input_width, t.input_height) == imgsz
    assert t.input_width - new_w < stride and t.input_height - new_h < stride


@pytest.mark.parametrize("src", RECT_SOURCES)
def test_boxes_round_trip_exactly_through_rectangles(src):
    t = plan_transform(*src, 320, 320, True, 32)
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 1, (50, 4)) * np.array([*src, *src])
    boxes = np.concatenate([np.minimum(xy[:, :2], xy[:, 2:]), np.maximum(xy[:, :2], xy[:, 2:])], axis=1)
    back = t.to_source(t.to_input(boxes))
    np.testing.assert_allclose(back, boxes, atol=1e-3)
    # The frame's corners land on the resized content's corners inside the rectangle, not the square's.
    corners = t.to_input(np.array([[0, 0, *src]], np.float32))[0]
    new_w, new_h, top, _, left, _ = ultralytics_letterbox_auto(*src, 320, 320, 32)
    np.testing.assert_allclose(corners, (left, top, left + new_w, top + new_h), atol=1e-3)


def test_rectangle_tensor_is_the_frame_where_the_transform_says():
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[200:400, 300:700] = 255
    pre = Preprocessor(spec(), stride=32)
    tensor, t = pre(frame)
    assert tensor.shape == (1, 3, 192, 320) and t.input_size == (320, 192)
    x1, y1, x2, y2 = t.to_input(np.array([[300, 200, 700, 400]], np.float32))[0]
    white = np.argwhere(tensor[0, 0] > 0.99)
    assert abs(white[:, 1].min() - x1) <= 1 and abs(white[:, 1].max() + 1 - x2) <= 1
    assert abs(white[:, 0].min() - y1) <= 1 and abs(white[:, 0].max() + 1 - y2) <= 1
    # 320x180 content and 12 rows of grey, 6 at the top and 6 at the bottom (Ultralytics' split).
    grey = np.all(np.isclose(tensor[0, :, :, :], LETTERBOX_FILL[0] / 255.0), axis=(0, 2))
    assert grey.tolist() == [True] * 6 + [False] * 180 + [True] * 6
    # The plan is made once per source size: the next frame of that size reuses it.
    assert pre(frame)[1] is t and pre(np.zeros((480, 640, 3), np.uint8))[1] is not t


def test_letterbox_places_the_image_where_the_transform_says():
    # A white rectangle in a black frame must land in the input exactly where to_input maps its corners.
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[200:400, 300:700] = 255
    tensor, t = Preprocessor(spec())(frame)
    assert tensor.shape == (1, 3, 320, 320) and tensor.dtype == np.float32
    x1, y1, x2, y2 = t.to_input(np.array([[300, 200, 700, 400]], np.float32))[0]
    white = np.argwhere(tensor[0, 0] > 0.99)
    assert abs(white[:, 1].min() - x1) <= 1 and abs(white[:, 1].max() + 1 - x2) <= 1
    assert abs(white[:, 0].min() - y1) <= 1 and abs(white[:, 0].max() + 1 - y2) <= 1
    # Padding is the Ultralytics grey, top and bottom for a landscape frame.
    assert t.pad_y > 0 and t.pad_x == 0
    assert np.allclose(tensor[0, :, 0, :], LETTERBOX_FILL[0] / 255.0)


def test_colour_order_and_normalisation_follow_the_spec():
    frame = np.zeros((10, 10, 3), np.uint8)
    frame[..., 0] = 10  # blue
    frame[..., 2] = 200  # red
    rgb, _ = Preprocessor(spec(input_height=10, input_width=10))(frame)
    assert np.allclose(rgb[0, 0], 200 / 255) and np.allclose(rgb[0, 2], 10 / 255)
    bgr, _ = Preprocessor(spec(input_height=10, input_width=10, rgb=False))(frame)
    assert np.allclose(bgr[0, 0], 10 / 255)
    norm, _ = Preprocessor(spec(input_height=10, input_width=10, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0)))(frame)
    assert np.allclose(norm[0, 0], (200 / 255 - 0.5) / 0.25, atol=1e-5)
    assert np.allclose(norm[0, 2], (10 / 255 - 0.5) / 1.0, atol=1e-5)


def test_channels_last_uint8_and_float16_inputs():
    frame = np.full((20, 40, 3), 7, np.uint8)
    nhwc, _ = Preprocessor(spec(input_height=16, input_width=16, channels_last=True, input_dtype="uint8", scale=1.0))(frame)
    assert nhwc.shape == (1, 16, 16, 3) and nhwc.dtype == np.uint8
    half, _ = Preprocessor(spec(input_height=16, input_width=16, input_dtype="float16"))(frame)
    assert half.dtype == np.float16


@pytest.mark.parametrize("bad", [None, np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8),
                                 np.zeros((10, 10, 3), np.float32)])
def test_bad_frames_get_a_clear_error(bad):
    with pytest.raises(ValueError, match="BGR uint8"):
        Preprocessor(spec())(bad)
