"""What the previews tell an engineer (issue 10): a failing device says why on its tile and preview; labels of
overlapping boxes do not hide each other and the information block can be hidden and fits a small tile; → and ←
step through the frames received; a device at its client limit stays online and says so; class toggles stay
readable."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QRectF, QSettings, Qt
from PySide6.QtTest import QTest

from edge_console.client.net.addresses import DeviceAddress
from edge_console.console.colors import class_color
from edge_console.console.device_state import DeviceState
from edge_console.console.frames import decode_stream_message
from edge_console.console.main_window import MainWindow
from edge_console.console.widgets.grid_view import DeviceGrid
from edge_console.console.widgets.overlay import OverlaySettings
from edge_console.console.widgets.preview_panel import PreviewPanel
from edge_console.core.detection.record import Detection
from tests.support.pixels import count_color, frame_message, rgb_array

from .socket_holder import SocketHolder
from .window_checks import desktop, place_on

LONG = 60_000
NUT = Detection(200, 150, 280, 230, 1, "nut", 0.35)
WASHER = Detection(203, 152, 283, 232, 2, "washer", 0.45)  # the same part, also called a washer: class confusion


def live_state(detections: list[Detection], name: str = "Press line 1 with a long name for a small tile") -> DeviceState:
    state = DeviceState(DeviceAddress("127.0.0.1", 9), device_id="dev", name=name)
    state.apply_connection(True, "")
    state.apply_stream_state(True, "")
    state.apply_clock(0.0, 0.001)
    state.frame_slot.put(decode_stream_message(frame_message(detections, capture_ts=time.time()), time.time()))
    state.take_new_frame()
    return state


def label_pixels(image, detection: Detection) -> int:
    """Pixels in the class colour: the box outline plus its label's plate."""
    return count_color(image, class_color(detection.class_id), tolerance=10)


def test_labels_of_overlapping_boxes_do_not_hide_each_other(qtbot):
    panel = PreviewPanel(live_state([NUT, WASHER]))
    qtbot.addWidget(panel)
    panel.resize(640, 520)
    panel.show()
    canvas = panel.canvas
    qtbot.waitUntil(lambda: canvas.frame is not None, timeout=5000)
    image = canvas.grab().toImage()
    scale = min(canvas.width() / 640, canvas.height() / 480)
    outline = 2 * 2 * (80 + 80) * scale  # a 2 px outline around an 80x80 box
    plate = 50 * 14  # the least a "nut 0.35" plate covers, whatever the font
    for det in (NUT, WASHER):  # each label shows whole: neither plate lies under the other
        assert label_pixels(image, det) > outline + 0.6 * plate, det.class_name
    rects = canvas.label_rects
    assert len(rects) == 2 and not rects[0].intersects(rects[1])
    assert not any(r.intersects(canvas.info_rect) for r in rects)  # nor under the information block


def test_the_information_block_fits_a_small_tile_and_the_i_key_hides_it(qtbot):
    state = live_state([Detection(500, 380, 600, 460, 0, "bolt", 0.9)])
    grid = DeviceGrid()
    qtbot.addWidget(grid)
    grid.add_device(state)
    grid.resize(2 * 240, 2 * 180 + grid.controls.sizeHint().height())  # 2x2 tiles of about 240x180
    grid.show()
    tile = grid.tiles[state]
    qtbot.waitUntil(lambda: tile.frame is not None and tile.width() <= 250, timeout=5000)
    picture = tile._transform().mapRect(QRectF(0, 0, 640, 480)).toRect()  # where the grey frame is drawn

    def dark_plate_columns(image) -> np.ndarray:
        """Per column of the picture's top rows: whether the translucent black plate darkens the grey frame."""
        top = picture.top() + 8
        pixels = rgb_array(image)[top:top + 24, picture.left():picture.right() + 1].mean(axis=2)
        return (pixels < 70).mean(axis=0) > 0.3

    image = tile.grab().toImage()
    dark = dark_plate_columns(image)
    assert dark.any(), "the information block is shown"
    assert not dark[-4:].any(), "the information block is cut off at the picture's right edge"

    tile.setFocus()
    QTest.keyClick(tile, Qt.Key.Key_I)
    image = tile.grab().toImage()
    assert not dark_plate_columns(image).any(), "I hides the information block"
    QTest.keyClick(tile, Qt.Key.Key_I)
    assert dark_plate_columns(tile.grab().toImage()).any(), "and I shows it again"
    grid.detach()


def test_a_failing_device_says_why_on_its_tile_and_its_preview(qtbot, fleet_factory, agent_factory, tmp_path):
    agent = agent_factory("Line 3 (no video)", source=str(tmp_path / "missing-clip.mp4"), advertise=False).start()
    fleet = fleet_factory(discover=False)
    window = MainWindow(fleet, QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    place_on(window, desktop())
    qtbot.addWidget(window)
    window.show()
    state = fleet.add_manual(agent.address)
    qtbot.waitUntil(lambda: state.status == "failing", timeout=LONG)
    tile = window.grid.tiles[state]
    qtbot.waitUntil(lambda: "video file not found" in tile._banner(), timeout=LONG)
    assert "failing" in tile._banner() and not tile.showing_live_picture
    window.open_preview(state)
    preview = window.previews[state].canvas
    qtbot.waitUntil(lambda: "video file not found" in preview._banner(), timeout=LONG)
    assert "missing-clip.mp4" in preview._banner()
    window.close()


def test_arrows_step_back_and_forth_through_the_frames_received(qtbot, fleet_factory, shared_agents):
    fleet = fleet_factory(discover=False)
    state = fleet.add_manual(shared_agents[0].address)
    panel = PreviewPanel(state)
    qtbot.addWidget(panel)
    panel.resize(800, 640)
    panel.show()
    canvas = panel.canvas
    qtbot.waitUntil(lambda: state.frames_received >= 5 and canvas.frame is not None, timeout=LONG)
    canvas.setFocus()
    QTest.keyClick(canvas, Qt.Key.Key_I)  # no information block: its age and latency change by the millisecond
    QTest.keyClick(canvas, Qt.Key.Key_Space)
    assert canvas.paused
    qtbot.wait(1500)  # frames keep arriving while paused
    received = [f.seq for f in state.frame_ring.frames()]
    at = received.index(canvas.frame.header.seq)
    assert at >= 2 and len(received) > at + 3, received

    def step(key: Qt.Key, expected_seq: int):
        QTest.keyClick(canvas, key)
        qtbot.waitUntil(lambda: canvas.frame.header.seq == expected_seq, timeout=10_000)
        return canvas.grab().toImage()

    paused_at = canvas.grab().toImage()
    back_one = step(Qt.Key.Key_Left, received[at - 1])
    step(Qt.Key.Key_Left, received[at - 2])
    assert step(Qt.Key.Key_Right, received[at - 1]) == back_one  # the very frame again, pixel for pixel
    assert step(Qt.Key.Key_Right, received[at]) == paused_at
    step(Qt.Key.Key_Right, received[at + 1])  # on past where it paused: still one frame at a time
    assert canvas.paused and back_one != paused_at
    panel.detach()


def test_a_device_at_its_client_limit_stays_online_and_says_why(qtbot, fleet_factory, agent_factory, tmp_path):
    agent = agent_factory("Busy line", advertise=False).start()
    holder = SocketHolder(agent, 40).start()  # more than the agent's 32 slots
    try:
        assert holder.held == 32 and holder.refused == 8
        fleet = fleet_factory(discover=False)
        state = fleet.add_manual(agent.address)
        panel = PreviewPanel(state)
        qtbot.addWidget(panel)
        panel.resize(640, 520)
        panel.show()
        qtbot.waitUntil(lambda: "too many clients (limit 32)" in panel.canvas._banner(), timeout=LONG)
        assert state.status == "online" and state.connected
        assert "offline" not in panel.canvas._banner()
        # The telemetry channel says so too: its own refusal may come a moment after the stream's.
        qtbot.waitUntil(lambda: any("too many clients (limit 32)" in e.message for e in state.errors), timeout=LONG)
        assert state.status == "online" and "offline" not in panel.canvas._banner()
        panel.detach()
    finally:
        holder.close()


def test_class_toggles_stay_readable_when_detections_are_hidden(qtbot, fleet_factory, shared_agents, tmp_path):
    """A device's preview tab in the default 1440x900 window."""
    fleet = fleet_factory(discover=False)
    window = MainWindow(fleet, QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    place_on(window, desktop())
    qtbot.addWidget(window)
    window.show()
    state = fleet.add_manual(shared_agents[0].address)
    qtbot.waitUntil(lambda: bool(state.class_names), timeout=LONG)
    window.open_preview(state)
    panel = window.previews[state]
    controls = panel.controls
    qtbot.waitUntil(lambda: len(controls.class_actions) == 4 and panel.canvas.frame is not None, timeout=LONG)
    panel.settings.set_threshold(0.99)  # most boxes hidden: "N hidden" appears in the bar
    qtbot.waitUntil(lambda: bool(controls.hidden_label.text()), timeout=10_000)
    qtbot.wait(100)
    shown = [b for b in controls.class_buttons.values() if b.isVisible()]
    for button in shown:  # never "w…r": a toggle is shown at its full width or moved into the menu
        assert button.width() >= button.sizeHint().width(), button.text()
        assert button.geometry().right() <= controls.width()
    if len(shown) < 4:
        assert controls.classes_menu_button.isVisible()
        assert [a.text() for a in controls.classes_menu.actions()] == list(controls.class_actions)
    assert controls.hidden_label.geometry().right() <= controls.width()
    window.close()


def test_a_degraded_device_with_a_live_picture_says_why_on_its_tile(qtbot):
    state = live_state([Detection(500, 380, 600, 460, 0, "bolt", 0.9)], name="Packing line 2")
    reason = "dropping 55% of camera frames: the model infers 6.8 fps of 15.0 captured (degraded above 50%)"
    state.apply_health({"status": "degraded", "reasons": [reason]})
    grid = DeviceGrid()
    qtbot.addWidget(grid)
    grid.add_device(state)
    grid.resize(2 * 400, 2 * 300 + grid.controls.sizeHint().height())
    grid.show()
    tile = grid.tiles[state]
    qtbot.waitUntil(lambda: tile.frame is not None, timeout=5000)
    assert tile.showing_live_picture  # the picture stays live: the reason is added, nothing is dimmed
    image = tile.grab().toImage()
    plate = rgb_array(image)[tile.height() - 40:tile.height() - 6, 6:200]  # bottom left: the health line
    orange = np.array([0xEF, 0x8F, 0x00])  # STATUS_COLORS["degraded"]
    assert (np.abs(plate - orange).sum(axis=2) < 60).mean() > 0.3, "no degraded plate on the tile"
    grid.detach()


def test_a_paused_preview_stands_still_says_so_and_its_button_says_resume(qtbot, fleet_factory, shared_agents):
    """Issue 22 (5): while paused, capture-to-paint and the overlay's age kept counting up, and the Pause button's
    label did not change."""
    fleet = fleet_factory(discover=False)
    state = fleet.add_manual(shared_agents[0].address)
    panel = PreviewPanel(state)
    qtbot.addWidget(panel)
    panel.resize(800, 640)
    panel.show()
    canvas, button = panel.canvas, panel.controls.pause_button
    qtbot.waitUntil(lambda: state.frames_received >= 3 and canvas.frame is not None
                    and state.clock_offset is not None, timeout=LONG)
    assert canvas.settings.show_info and button.text() == "Pause"
    button.click()
    assert canvas.paused and button.text() == "Resume" and "Resume" in button.toolTip()
    first = canvas.grab().toImage()
    qtbot.wait(1500)  # frames and telemetry keep arriving; the paused picture and its figures do not move
    assert canvas.grab().toImage() == first
    button.click()
    assert not canvas.paused and button.text() == "Pause"
    qtbot.wait(1200)
    assert canvas.grab().toImage() != first  # live again
    panel.detach()


def test_unpaired_and_paused_before_any_frame_say_so_instead_of_waiting(qtbot, fleet_factory, agent_factory,
                                                                       tmp_path):
    agent = agent_factory("Line 8", advertise=False, enrol=False).start()
    fleet = fleet_factory(discover=False, trusted=False, data_dir=tmp_path / "console")
    grid = DeviceGrid(OverlaySettings())
    qtbot.addWidget(grid)
    grid.show()
    state = fleet.add_manual(agent.address)
    grid.add_device(state)
    qtbot.waitUntil(lambda: state.status == "not paired", timeout=LONG)
    tile = grid.tiles[state]
    assert tile._banner().startswith("not paired") and "Pair… (Ctrl+Alt+P)" in tile._banner()
    assert "retrying" not in tile._banner()

    never = DeviceState(DeviceAddress("127.0.0.1", 9))  # nothing listens there: no frame will ever come
    panel = PreviewPanel(never)
    qtbot.addWidget(panel)
    panel.show()
    panel.controls.pause_button.click()
    assert panel.canvas._banner().startswith("paused before the first frame")
    grid.detach()
    panel.detach()
