"""Building frames and reading pixels for the tests of what the console draws."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtGui import QColor, QImage

from edge_console.console.colors import class_color
from edge_console.console.frames import DecodedFrame, decode_stream_message
from edge_console.console.widgets.preview_canvas import BACKGROUND
from edge_console.core.detection.record import Detection, Timings
from edge_console.core.protocol import StreamHeader, encode_frame_message, header_bytes


def grey_jpeg(width: int, height: int, level: int = 110) -> bytes:
    """A flat grey image: nothing in it can be mistaken for a saturated class colour."""
    ok, data = cv2.imencode(".jpg", np.full((height, width, 3), level, np.uint8))
    assert ok
    return data.tobytes()


def frame_message(detections: list[Detection], *, source_size: tuple[int, int] = (640, 480),
                  jpeg_size: tuple[int, int] | None = None, seq: int = 1, capture_ts: float = 0.0) -> bytes:
    width, height = source_size
    header = StreamHeader(seq=seq, capture_ts=capture_ts, model_version="test", width=width, height=height,
                          timings=Timings(1.0, 5.0, 1.0), detections=detections)
    jw, jh = jpeg_size or source_size
    return encode_frame_message(header_bytes(header), grey_jpeg(jw, jh))


def decoded(detections: list[Detection], **kwargs) -> DecodedFrame:
    return decode_stream_message(frame_message(detections, **kwargs), received_at=0.0)


def color_distance(a: QColor, b: QColor) -> int:
    return abs(a.red() - b.red()) + abs(a.green() - b.green()) + abs(a.blue() - b.blue())


def has_color_near(image: QImage, x: float, y: float, color: QColor, radius: int = 2, tolerance: int = 24) -> bool:
    """Whether some pixel within `radius` of (x, y) has `color` (box lines are 2 px; rounding may shift them)."""
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            px, py = round(x) + dx, round(y) + dy
            inside = 0 <= px < image.width() and 0 <= py < image.height()
            if inside and color_distance(QColor(image.pixel(px, py)), color) <= tolerance:
                return True
    return False


def box_edge_points(rect_x1: float, rect_y1: float, rect_x2: float, rect_y2: float) -> list[tuple[float, float]]:
    """Midpoints of the left, right and bottom edges (the top edge may be under the label)."""
    mx, my = (rect_x1 + rect_x2) / 2, (rect_y1 + rect_y2) / 2
    return [(rect_x1, my), (rect_x2, my), (mx, rect_y2)]


def count_color(image: QImage, color: QColor, tolerance: int = 24) -> int:
    """How many pixels of `image` are within `tolerance` (sum of channel differences) of `color`."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB32)
    width, height = rgb.width(), rgb.height()
    data = np.frombuffer(rgb.constBits(), np.uint8, count=rgb.sizeInBytes()).reshape(height, rgb.bytesPerLine())
    bgra = data[:, : width * 4].reshape(height, width, 4).astype(np.int16)
    diff = (np.abs(bgra[..., 2] - color.red()) + np.abs(bgra[..., 1] - color.green())
            + np.abs(bgra[..., 0] - color.blue()))
    return int((diff <= tolerance).sum())


def outline_color_fraction(image: QImage, x1: float, y1: float, x2: float, y2: float, color: QColor) -> float:
    """Share of points along a box's outline that carry `color`: ~1 where the box is drawn, near 0 where only the
    scene shows (a yellow part may match a yellow class colour here and there, never along a whole outline)."""
    points = []
    for i in range(21):
        f = i / 20
        points += [(x1 + f * (x2 - x1), y1), (x1 + f * (x2 - x1), y2), (x1, y1 + f * (y2 - y1)), (x2, y1 + f * (y2 - y1))]
    inside = [(x, y) for x, y in points if 0 <= x < image.width() and 0 <= y < image.height()]
    return sum(has_color_near(image, x, y, color, radius=1) for x, y in inside) / max(1, len(inside))


def rgb_array(image: QImage) -> np.ndarray:
    """The image's pixels as an (height, width, 3) RGB array of int16 (room for differences)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB32)
    width, height = rgb.width(), rgb.height()
    data = np.frombuffer(rgb.constBits(), np.uint8, count=rgb.sizeInBytes()).reshape(height, rgb.bytesPerLine())
    return data[:, : width * 4].reshape(height, width, 4)[..., 2::-1].astype(np.int16)


@dataclass(frozen=True)
class TileContents:
    camera_share: float  # share of the tile's pixels that are not the empty tile's background
    distinct_colours: int
    box_pixels: int  # pixels in exactly one of the given classes' colours (boxes are drawn without antialiasing)


def tile_contents(image: QImage, rect: list[int], class_ids: list[int], tolerance: int = 12) -> TileContents:
    x, y, w, h = rect
    pixels = rgb_array(image)[y:y + h, x:x + w]
    background = np.array([BACKGROUND.red(), BACKGROUND.green(), BACKGROUND.blue()])
    camera = np.abs(pixels - background).sum(axis=2) > 30
    flat = pixels.reshape(-1, 3).astype(np.int32)
    distinct = len(np.unique(flat[:, 0] * 65536 + flat[:, 1] * 256 + flat[:, 2]))
    box = 0
    for class_id in class_ids:
        c = class_color(class_id)
        box += int((np.abs(pixels - np.array([c.red(), c.green(), c.blue()])).sum(axis=2) <= tolerance).sum())
    return TileContents(float(camera.mean()), distinct, box)


def jpeg_claiming(width: int, height: int) -> bytes:
    """A decompression bomb: a small real JPEG whose frame header (SOF0) is rewritten to claim width x height.
    A decoder allocates the whole claimed canvas before it notices that the data ends early."""
    data = bytearray(grey_jpeg(64, 48))
    at = data.index(b"\xff\xc0")  # SOF0: marker, length(2), precision(1), height(2), width(2)
    data[at + 5:at + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def message_with_jpeg(jpeg: bytes, source_size: tuple[int, int] = (640, 480), seq: int = 1) -> bytes:
    """A stream message whose header claims `source_size`, with whatever JPEG bytes are given."""
    header = StreamHeader(seq=seq, capture_ts=0.0, model_version="test", width=source_size[0],
                          height=source_size[1], timings=Timings(1.0, 5.0, 1.0), detections=[])
    return encode_frame_message(header_bytes(header), jpeg)
