"""The preview paints boxes from the detections of the same message, in each class's colour, and hides what the
threshold and class toggles filter out. Known frame, known detections, pixels checked."""

from __future__ import annotations

import time

import pytest
from edge_console.console.colors import class_color
from edge_console.console.device_state import DeviceState
from edge_console.console.frames import LatestFrameSlot, decode_stream_message
from edge_console.console.net.addresses import DeviceAddress
from edge_console.console.widgets.overlay import OverlaySettings, fit_transform, paint_frame
from edge_console.console.widgets.preview_panel import PreviewPanel
from edge_console.core.detection import Detection
from edge_console.core.protocol import ProtocolError
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter

from .helpers import box_edge_points, decoded, frame_message, has_color_near

pytestmark = pytest.mark.usefixtures("qapp")  # fonts and painters need a QGuiApplication

BOLT = Detection(100, 100, 300, 260, 0, "bolt", 0.91)
NUT = Detection(400, 200, 560, 400, 1, "nut", 0.35)


def render(frame, settings: OverlaySettings, size=(640, 480)) -> tuple[QImage, int]:
    image = QImage(size[0], size[1], QImage.Format.Format_RGB32)
    image.fill(QColor("black"))
    painter = QPainter(image)
    transform = fit_transform(frame.image.width(), frame.image.height(), QRectF(0, 0, *size))
    hidden = paint_frame(painter, frame, transform, settings)
    painter.end()
    return image, hidden


def box_drawn(image: QImage, det: Detection, scale: float = 1.0) -> bool:
    color = class_color(det.class_name)
    points = box_edge_points(det.x1 * scale, det.y1 * scale, det.x2 * scale, det.y2 * scale)
    return all(has_color_near(image, x, y, color) for x, y in points)


def test_class_colours_are_stable_and_distinct():
    assert class_color("bolt") == class_color("bolt")
    assert class_color("bolt") != class_color("nut")
    assert class_color("washer").saturation() >= 200  # bright enough to stand out on grey metal


def test_boxes_are_drawn_in_class_colours_where_the_detections_are():
    image, hidden = render(decoded([BOLT, NUT]), OverlaySettings(threshold=0.25))
    assert hidden == 0
    assert box_drawn(image, BOLT) and box_drawn(image, NUT)
    # Inside the boxes the grey frame shows through: boxes are outlines, not fills.
    assert not has_color_near(image, 200, 180, class_color("bolt"), radius=0)


def test_a_class_toggled_off_and_a_detection_under_the_threshold_are_not_drawn():
    settings = OverlaySettings(threshold=0.25)
    settings.set_class_visible("bolt", False)
    image, hidden = render(decoded([BOLT, NUT]), settings)
    assert hidden == 1
    assert not any(has_color_near(image, x, y, class_color("bolt")) for x, y in box_edge_points(*BOLT.box))
    assert box_drawn(image, NUT)

    settings.set_class_visible("bolt", True)
    settings.set_threshold(0.5)  # NUT's 0.35 is now below the threshold
    image, hidden = render(decoded([BOLT, NUT]), settings)
    assert hidden == 1
    assert box_drawn(image, BOLT)
    assert not any(has_color_near(image, x, y, class_color("nut")) for x, y in box_edge_points(*NUT.box))


def test_boxes_follow_a_downscaled_jpeg():
    # The agent sends a 640-wide JPEG of a 1280x960 source; boxes are in source pixels.
    big_bolt = Detection(200, 200, 600, 520, 0, "bolt", 0.9)
    frame = decoded([big_bolt], source_size=(1280, 960), jpeg_size=(640, 480))
    assert frame.box_scale == (0.5, 0.5)
    image, _ = render(frame, OverlaySettings())
    assert box_drawn(image, big_bolt, scale=0.5)


def test_bad_stream_messages_are_protocol_errors():
    good = frame_message([BOLT])
    for bad in (b"", b"\x00\x00", b"garbage bytes that are not a frame", good[:10], good.replace(b"\xff\xd8", b"XX", 1)):
        with pytest.raises(ProtocolError):
            decode_stream_message(bad, 0.0)


def test_latest_frame_slot_keeps_only_the_newest_and_wakes_the_gui_once():
    slot = LatestFrameSlot()
    first, second = decoded([BOLT], seq=1), decoded([NUT], seq=2)
    assert slot.put(first) is True
    assert slot.put(second) is False  # a wake-up is already pending
    assert slot.take() is second
    assert slot.take() is None
    assert slot.replaced_unseen == 1


def test_preview_widget_draws_the_detections_of_its_frame_and_counts_hidden_ones(qtbot):
    state = DeviceState(DeviceAddress("127.0.0.1", 9), device_id="dev", name="painter test")
    state.apply_connection(True, "")
    state.apply_stream_state(True, "")
    panel = PreviewPanel(state)
    qtbot.addWidget(panel)
    panel.resize(640, 560)
    panel.show()
    state.apply_clock(0.0, 0.001)
    state.frame_slot.put(decode_stream_message(frame_message([BOLT, NUT], capture_ts=time.time()), time.time()))
    state.take_new_frame()
    canvas = panel.canvas
    qtbot.waitUntil(lambda: canvas.frame is not None, timeout=5000)

    def rendered() -> tuple[QImage, float]:
        image = canvas.grab().toImage()
        scale = min(canvas.width() / 640, canvas.height() / 480)
        return image, scale

    image, scale = rendered()
    dx, dy = (canvas.width() - 640 * scale) / 2, (canvas.height() - 480 * scale) / 2
    bolt_edges = [(x * scale + dx, y * scale + dy) for x, y in box_edge_points(*BOLT.box)]
    assert all(has_color_near(image, x, y, class_color("bolt")) for x, y in bolt_edges)

    panel.controls.class_actions["bolt"].setChecked(False)  # the per-class toggle in the bar
    image, _ = rendered()
    assert not any(has_color_near(image, x, y, class_color("bolt")) for x, y in bolt_edges)
    assert panel.controls.hidden_label.text() == "1 hidden"
    assert canvas.paint_latencies_ms, "the canvas records capture-to-paint latency once the clock offset is known"
    panel.detach()
