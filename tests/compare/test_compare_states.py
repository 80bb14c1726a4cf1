"""The Compare panel says what is really going on (issue 10 items 3, 7, 13; issue 9 item 7): no "Connecting…" when
the model is missing, the device unreachable or failing; continuous mode stops when frames stop; a lossless frame
whose image claims more pixels than its header is refused undecoded; IoU labels do not hide each other; the
"Hard frames (N)" tab is never clipped."""

from __future__ import annotations

import resource

import cv2
import numpy as np
import pytest
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter

from edge_console.client.net.addresses import DeviceAddress
from edge_console.console.compare.frame_view import ComparedFrameView, ViewMode
from edge_console.console.compare.overlay_painter import STYLES, Agreement, compared_boxes, paint_compared_boxes
from edge_console.core.detection.comparison import FrameComparison
from edge_console.core.detection.matching import match_detections
from edge_console.core.detection.model_library import ModelLibrary
from edge_console.core.detection.record import Detection, Timings
from edge_console.core.protocol import FRAME_CONTENT_TYPE
from tests.support.console_trust import console_agent, with_a_frame
from tests.support.fake_devices import FakeDeviceServer, parts_v2_info, scripted_app
from tests.support.pixels import count_color, message_with_jpeg

from .panel_helpers import LONG, wait_for_frames


def shows(panel, text: str) -> bool:
    return text in panel.overlay_view.placeholder or text in panel.message_label.text()


def test_a_missing_local_model_is_said_where_the_picture_goes(qtbot, open_panel, v2_device, tmp_path):
    empty = tmp_path / "no-models"
    empty.mkdir()
    panel = open_panel(v2_device.address, "Press line 1", library=ModelLibrary([empty]))
    qtbot.waitUntil(lambda: "no local copy of the device's model" in panel.overlay_view.placeholder, timeout=LONG)
    assert "Connecting" not in panel.overlay_view.placeholder
    assert panel.model_box.currentIndex() == -1  # the picker shows that no model is loaded, not one that is not
    assert "not comparing" in panel.setup_label.text()


def test_an_unreachable_device_is_said_where_the_picture_goes(qtbot, open_panel):
    panel = open_panel(DeviceAddress("127.0.0.1", 9), "Gone")
    qtbot.waitUntil(lambda: "cannot reach the device at 127.0.0.1:9" in panel.overlay_view.placeholder, timeout=LONG)
    assert panel.model_box.currentIndex() == -1


@pytest.fixture
def failing_device(tmp_path):
    agent = console_agent("Line 3 (no video)", tmp_path / "failing", advertise=False,
                          source=str(tmp_path / "missing-clip.mp4")).start()
    yield agent
    agent.stop()


def test_a_failing_device_gives_its_own_reason(qtbot, open_panel, failing_device):
    panel = open_panel(failing_device.address, "Line 3")
    qtbot.waitUntil(lambda: "video file not found" in panel.overlay_view.placeholder, timeout=LONG)
    assert "Connecting" not in panel.overlay_view.placeholder


def test_continuous_mode_stops_when_the_frames_stop(qtbot, open_panel, tmp_path):
    agent = with_a_frame(console_agent("Stops soon", tmp_path / "stops", advertise=False))  # parts-v2
    try:
        panel = open_panel(agent.address, "Stops soon")
        wait_for_frames(qtbot, panel, 1)
        panel.set_continuous(True)
        wait_for_frames(qtbot, panel, 3)
        agent.stop()  # the device goes away mid-run
        qtbot.waitUntil(lambda: not panel.continuous_button.isChecked(), timeout=LONG)
        assert "Continuous mode stopped" in panel.message_label.text()
        assert panel.overlay_caption.text().startswith("Stopped · last compared frame")
        seen = panel.run_count
        qtbot.wait(3000)
        assert panel.run_count == seen and not panel.worker.running
    finally:
        agent.stop()


def bmp_claiming(width: int, height: int) -> bytes:
    ok, data = cv2.imencode(".bmp", np.full((48, 64, 3), 110, np.uint8))
    assert ok
    data = bytearray(data.tobytes())
    data[18:26] = width.to_bytes(4, "little") + height.to_bytes(4, "little", signed=True)
    return bytes(data)


@pytest.fixture
def bmp_bomb_device():
    message = message_with_jpeg(bmp_claiming(16384, 16384), source_size=(640, 480))  # any image bytes will do
    app = scripted_app(parts_v2_info("bmpbomb", "BMP bomb"), frame_message=lambda: message,
                       frame_type=FRAME_CONTENT_TYPE)
    server = FakeDeviceServer(app).start()
    yield server
    server.stop()


def test_a_lossless_frame_larger_than_its_header_is_refused_undecoded(qtbot, open_panel, bmp_bomb_device):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    panel = open_panel(bmp_bomb_device.address, "BMP bomb")
    qtbot.waitUntil(lambda: "16384x16384" in panel.message_label.text(), timeout=LONG)
    assert "its header says 640x480" in panel.message_label.text() and "refused" in panel.message_label.text()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before < 150
    assert panel.run_count == 0


def test_iou_labels_of_overlapping_boxes_do_not_hide_each_other(qtbot):
    a1, b1 = Detection(100, 100, 200, 200, 0, "bolt", 0.9), Detection(102, 101, 201, 199, 0, "bolt", 0.9)
    a2, b2 = Detection(104, 103, 204, 203, 1, "nut", 0.8), Detection(105, 104, 203, 202, 1, "nut", 0.8)
    device, local = [a1, a2], [b1, b2]
    image = np.full((480, 640, 3), 110, np.uint8)
    comparison = FrameComparison(3, device, local, Timings(), Timings(), match_detections(device, local), image)
    view = ComparedFrameView(ViewMode.OVERLAY)
    qtbot.addWidget(view)
    view.resize(640, 480)
    view.show()
    boxes = compared_boxes(comparison.report)
    assert [b.kind for b in boxes] == [Agreement.MATCHED, Agreement.MATCHED]
    view.show_comparison(comparison, boxes, "")
    green = STYLES[Agreement.MATCHED].color
    with_labels = count_color(view.grab().toImage(), green, tolerance=10)
    outlines_only = QImage(view.size(), QImage.Format.Format_RGB32)
    outlines_only.fill(QColor(27, 29, 33))
    painter = QPainter(outlines_only)
    paint_compared_boxes(painter, boxes, view.image_to_widget(), labels=False)
    painter.end()
    plates = with_labels - count_color(outlines_only, green, tolerance=10)  # the labels' green, text excluded
    font = QFont(view.font())
    font.setPointSizeF(8.0)
    metrics = QFontMetricsF(font)
    one_plate = (metrics.horizontalAdvance("IoU 0.99") + 6) * (metrics.height() + 1)
    assert plates > 1.4 * 0.7 * one_plate, (plates, one_plate)  # two whole plates: not one over the other


def test_the_hard_frames_tab_title_is_never_clipped(qtbot, open_panel):
    panel = open_panel(DeviceAddress("127.0.0.1", 9), "Narrow", size=(900, 700))
    font = QFont(panel.font())
    font.setPointSizeF(font.pointSizeF() * 1.25)  # an engineer's larger desktop font
    panel.setFont(font)
    panel.update_hard_frames_title(121, 0)
    qtbot.wait(50)
    bar = panel.lists_tabs.tabBar()
    title = bar.tabText(1)
    assert title == "Hard frames (121)"
    rect = bar.tabRect(1)
    assert rect.right() <= bar.width() and rect.width() >= bar.fontMetrics().horizontalAdvance(title)
