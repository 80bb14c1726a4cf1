"""Bad input in the Compare panel: a device whose /v1/frame fails or sends something that is not an image, a
local model with an unknown layout or other classes, an unreachable device, a bad folder of saved frames. Each is a clear message in the panel;
the panel recovers when given something good, and the rest of the console is unaffected."""

from __future__ import annotations

import numpy as np
import pytest
from aiohttp import web
from PySide6.QtCore import QSettings, Qt

from edge_console.client.net.addresses import DeviceAddress
from edge_console.console.compare.panel import ComparePanel
from edge_console.console.main_window import MainWindow
from edge_console.core.atomic_files import file_sha256
from edge_console.core.detection.record import Detection, Timings
from edge_console.core.paths import demo_model
from edge_console.core.protocol import FRAME_CONTENT_TYPE, StreamHeader, encode_frame_message, header_bytes
from tests.support.console_trust import console_agent
from tests.support.fake_devices import FakeDeviceServer, device_info
from tests.support.onnx_factory import constant_output_model, ultralytics_metadata

from .panel_helpers import LONG, wait_for_frames

PARTS = ["bolt", "nut", "washer", "bracket"]


def shows_error(panel: ComparePanel, *fragments: str) -> bool:
    text = panel.message_label.text()
    return panel.message_is_error and panel.message_label.isVisible() and all(f in text for f in fragments)


def frame_app(frame_body: bytes, content_type: str = FRAME_CONTENT_TYPE) -> web.Application:
    """A device that answers /v1/info like an agent running parts-v2 and /v1/frame with the given bytes."""
    info = device_info("broken-frames")
    info["model"] = {"name": "parts", "version": "2.0.0", "sha256": file_sha256(demo_model("parts-v2")),
                     "classes": PARTS}

    async def get_info(_request: web.Request) -> web.Response:
        return web.json_response(info)

    async def get_frame(_request: web.Request) -> web.Response:
        return web.Response(body=frame_body, content_type=content_type)

    app = web.Application()
    app.router.add_get("/v1/info", get_info)
    app.router.add_get("/v1/frame", get_frame)
    return app


def header(width: int = 640, height: int = 480) -> bytes:
    return header_bytes(StreamHeader(5, 0.0, "2.0.0", width, height, Timings(1, 2, 1),
                                     [Detection(10, 10, 50, 50, 0, "bolt", 0.9)]))


@pytest.mark.parametrize(("body", "content_type", "expected"), [
    (encode_frame_message(header(), b"BM" + bytes(200)), FRAME_CONTENT_TYPE, "the BMP declares a 0x0 image"),
    (b"<html>router login</html>", "text/html", "sent text/html for /v1/frame"),
    (b"\x00\x00\x00\x05{bad}", FRAME_CONTENT_TYPE, "a frame that cannot be used"),
], ids=["not-an-image", "html", "garbled-header"])
def test_device_sending_unusable_frames_is_a_message(qtbot, open_panel, body, content_type, expected):
    server = FakeDeviceServer(frame_app(body, content_type)).start()
    try:
        panel = open_panel(server.address)
        qtbot.waitUntil(lambda: shows_error(panel, expected), timeout=LONG)
        assert panel.run_count == 0 and panel.overlay_view.comparison is None
    finally:
        server.stop()


def test_device_whose_frame_endpoint_fails_and_unreachable_device(qtbot, open_panel, tmp_path):
    agent = console_agent("no camera", tmp_path / "agent", advertise=False, source="7").start()
    try:
        panel = open_panel(agent.address)
        qtbot.waitUntil(lambda: shows_error(panel, "no frame to compare (HTTP 503)", "camera 7"), timeout=LONG)
    finally:
        agent.stop()
    gone = open_panel(DeviceAddress("127.0.0.1", 9))
    qtbot.waitUntil(lambda: shows_error(gone, "cannot reach the device at 127.0.0.1:9"), timeout=LONG)
    gone.compare_now()  # a retry says the same, and nothing else breaks
    qtbot.waitUntil(lambda: gone.pending_jobs == 0, timeout=LONG)
    assert shows_error(gone, "cannot reach the device")
    gone.set_continuous(True)  # with no device to compare, continuous mode switches itself off again
    qtbot.waitUntil(lambda: not gone.continuous_button.isChecked(), timeout=LONG)


def test_unusable_local_models_are_messages_and_the_panel_recovers(qtbot, open_panel, v2_device, tmp_path):
    panel = open_panel(v2_device.address)
    wait_for_frames(qtbot, panel, 1)
    working = panel.opened.model_path
    said: list[str] = []
    show_error = panel.show_error
    panel.show_error = lambda text: (said.append(text), show_error(text))

    # Issue 22 (8): a model that does not load is refused once, in words, and the one in use stays.
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x80\x02}q\x00(X\x05\x00\x00\x00torch")  # a PyTorch checkpoint renamed .onnx
    panel.add_model_file(junk)
    qtbot.waitUntil(lambda: shows_error(panel, "junk.onnx is not an ONNX model", f"Still comparing against "
                                        f"{working.name}"), timeout=LONG)
    qtbot.wait(500)  # nothing more is said about it afterwards
    assert len([t for t in said if "junk.onnx" in t]) == 1 and "ONNXRuntimeError" not in "".join(said)
    assert panel.opened.model_path == working and panel.model_box.findData(str(junk)) < 0
    before = panel.run_count
    panel.compare_now()
    qtbot.waitUntil(lambda: panel.run_count > before, timeout=LONG)  # still comparing with the working model

    classifier = constant_output_model(tmp_path / "classifier.onnx", {"logits": np.zeros((1, 1000), np.float32)})
    panel.add_model_file(classifier)
    qtbot.waitUntil(lambda: shows_error(panel, "classifier.onnx", "layout not recognised", "logits [1, 1000]"),
                    timeout=LONG)
    assert panel.opened.model_path == working

    people = constant_output_model(tmp_path / "people.onnx", {"output0": np.zeros((1, 6, 84), np.float32)},
                                   metadata=ultralytics_metadata(["person", "bolt"]))
    panel.add_model_file(people)
    qtbot.waitUntil(lambda: shows_error(panel, "only on the device: nut, washer, bracket",
                                        "only in the local model: person"), timeout=LONG)
    assert panel.opened.model_path == working

    # The ONNX files were added to the library (they can be picked again), and comparing goes on.
    qtbot.waitUntil(lambda: panel.model_box.findData(str(people)) >= 0, timeout=LONG)
    before = panel.run_count
    panel.compare_now()
    qtbot.waitUntil(lambda: panel.run_count > before, timeout=LONG)
    assert not panel.message_label.isVisible()

    # A folder that holds no saved frames, or a file in it that is not one, is a message too.
    (tmp_path / "saved").mkdir()
    panel.replay(tmp_path / "saved")
    qtbot.waitUntil(lambda: shows_error(panel, "holds no saved frames"), timeout=LONG)
    (tmp_path / "saved" / "seq00000001.edgeframe").write_bytes(b"not a frame")
    panel.replay(tmp_path / "saved")
    qtbot.waitUntil(lambda: shows_error(panel, "seq00000001.edgeframe", "is not a saved device frame"), timeout=LONG)


def test_compare_opens_from_the_preview_and_a_broken_device_affects_nothing_else(qtbot, fleet_factory, v1_device,
                                                                                   tmp_path):
    fleet = fleet_factory(discover=False)
    window = MainWindow(fleet, QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    server = FakeDeviceServer(frame_app(b"<html>no</html>", "text/html")).start()
    try:
        good = fleet.add_manual(v1_device.address)
        broken = fleet.add_manual(server.address)
        window.open_preview(good)
        preview = window.previews[good]
        qtbot.mouseClick(preview.compare_button, Qt.MouseButton.LeftButton)
        compare = window.compares[good]
        assert window.tabs.currentWidget() is compare and window.tabs.tabText(window.tabs.currentIndex()).startswith("Compare: ")
        wait_for_frames(qtbot, compare, 1)

        window.table.select(broken)
        window.tabs.setCurrentIndex(0)  # the grid: Ctrl+K then compares the device selected in the table
        qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
        bad = window.compares[broken]
        qtbot.waitUntil(lambda: shows_error(bad, "sent text/html"), timeout=LONG)

        # The good device's comparison and preview carry on.
        seen = good.frames_received
        compare.compare_now()
        wait_for_frames(qtbot, compare, 2)
        window.tabs.setCurrentWidget(preview)
        qtbot.waitUntil(lambda: good.frames_received > seen, timeout=LONG)
        assert not shows_error(compare)

        workers = [compare.worker, bad.worker]
        for panel in (compare, bad):
            window._close_tab(window.tabs.indexOf(panel))
        assert not window.compares
        assert all(worker.join(30) for worker in workers)
        window.close()
    finally:
        server.stop()
