"""The preview paints boxes from the detections of the same message, in each class's colour, and hides what the
threshold and class toggles filter out. Known frame, known detections, pixels checked."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter

from edge_console.client.net.addresses import DeviceAddress
from edge_console.console.colors import CLASS_PALETTE, class_color
from edge_console.console.device_state import DeviceState
from edge_console.console.frames import LatestFrameSlot, decode_stream_message
from edge_console.console.widgets.overlay import OverlaySettings, fit_transform, paint_frame
from edge_console.console.widgets.preview_panel import PreviewPanel
from edge_console.core.detection.record import Detection
from edge_console.core.protocol import ProtocolError
from tests.support.pixels import box_edge_points, color_distance, decoded, frame_message, has_color_near

pytestmark = pytest.mark.usefixtures("qapp")  # fonts and painters need a QGuiApplication

BOLT = Detection(100, 100, 300, 260, 0, "bolt", 0.91)
NUT = Detection(400, 200, 560, 400, 1, "nut", 0.35)


def render(frame, settings: OverlaySettings, size=(640, 480)) -> tuple[QImage, int]:
    image = QImage(size[0], size[1], QImage.Format.Format_RGB32)
    image.fill(QColor("black"))
    painter = QPainter(image)
    transform = fit_transform(frame.image.width(), frame.image.height(), QRectF(0, 0, *size))
    hidden, _labels = paint_frame(painter, frame, transform, settings)
    painter.end()
    return image, hidden


def box_drawn(image: QImage, det: Detection, scale: float = 1.0) -> bool:
    color = class_color(det.class_id, det.class_name)
    points = box_edge_points(det.x1 * scale, det.y1 * scale, det.x2 * scale, det.y2 * scale)
    return all(has_color_near(image, x, y, color) for x, y in points)


def hue_distance(a: QColor, b: QColor) -> int:
    d = abs(a.hsvHue() - b.hsvHue())
    return min(d, 360 - d)


def test_class_colours_are_pinned_by_class_id_and_distinct():
    # Pinned: the same class id has the same colour in every session, device and view; a change of palette is a
    # change every user sees, so it must be a deliberate edit of this test.
    assert [class_color(i).name() for i in range(8)] == [
        "#ff3838", "#00c2ff", "#ffb21d", "#8438ff", "#48f90a", "#ff37c7", "#00d4bb", "#ff701f"]
    assert class_color(len(CLASS_PALETTE)) == class_color(0)  # more classes than colours: the palette repeats
    assert class_color(2, "washer") == class_color(2, "car")  # the id decides, not the name
    # Only a class known by name alone is placed by a CRC of its name, which no interpreter start changes.
    assert class_color(None, "bolt").name() == "#1a9334" and class_color(-1, "car").name() == "#3ddb86"
    # The parts model's bolt (id 0) and a COCO model's car (id 2) were 6 degrees of hue apart when colours came
    # from a hash of the name; now they are far apart.
    assert hue_distance(class_color(0, "bolt"), class_color(2, "car")) >= 30
    # Neighbouring ids (the few classes of one model) differ widely in hue; no two palette entries look alike.
    assert all(hue_distance(class_color(i), class_color(i + 1)) >= 90 for i in range(7))
    palette = [QColor(c) for c in CLASS_PALETTE]
    assert min(color_distance(a, b) for i, a in enumerate(palette) for b in palette[i + 1:]) >= 50
    # Bright enough to stand out on grey metal: far from any grey, so a box never vanishes into the belt.
    assert all(color_distance(c, QColor(c.value(), c.value(), c.value())) >= 120 for c in palette[:8])


def test_boxes_are_drawn_in_class_colours_where_the_detections_are():
    image, hidden = render(decoded([BOLT, NUT]), OverlaySettings(threshold=0.25))
    assert hidden == 0
    assert box_drawn(image, BOLT) and box_drawn(image, NUT)
    # Inside the boxes the grey frame shows through: boxes are outlines, not fills.
    assert not has_color_near(image, 200, 180, class_color(BOLT.class_id), radius=0)


def test_a_class_toggled_off_and_a_detection_under_the_threshold_are_not_drawn():
    settings = OverlaySettings(threshold=0.25)
    settings.set_class_visible("bolt", False)
    image, hidden = render(decoded([BOLT, NUT]), settings)
    assert hidden == 1
    assert not any(has_color_near(image, x, y, class_color(BOLT.class_id)) for x, y in box_edge_points(*BOLT.box))
    assert box_drawn(image, NUT)

    settings.set_class_visible("bolt", True)
    settings.set_threshold(0.5)  # NUT's 0.35 is now below the threshold
    image, hidden = render(decoded([BOLT, NUT]), settings)
    assert hidden == 1
    assert box_drawn(image, BOLT)
    assert not any(has_color_near(image, x, y, class_color(NUT.class_id)) for x, y in box_edge_points(*NUT.box))


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
    assert all(has_color_near(image, x, y, class_color(BOLT.class_id)) for x, y in bolt_edges)

    panel.controls.class_actions["bolt"].setChecked(False)  # the per-class toggle in the bar
    image, _ = rendered()
    assert not any(has_color_near(image, x, y, class_color(BOLT.class_id)) for x, y in bolt_edges)
    assert panel.controls.hidden_label.text() == "1 hidden"
    assert canvas.paint_latencies_ms, "the canvas records capture-to-paint latency once the clock offset is known"
    panel.detach()
