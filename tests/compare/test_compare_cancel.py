"""Cancelling the Compare panel's work where it waits: stopping continuous mode, or closing the panel, ends a frame
request the device is holding, and nothing of the abandoned run reaches the panel afterwards.

The device here answers its first frame request and then holds every later one open; the request timeout is made
an hour long, so the only way such a request ends is the console cancelling it."""

from __future__ import annotations

import asyncio

import cv2
import numpy as np
import pytest
from aiohttp import web

from edge_console.client.compare.session import CompareSession
from edge_console.core.atomic_files import file_sha256
from edge_console.core.detection.record import Timings
from edge_console.core.paths import demo_model
from edge_console.core.protocol import FRAME_CONTENT_TYPE, StreamHeader, encode_frame_message, header_bytes
from tests.support.fake_devices import FakeDeviceServer, device_info

from .panel_helpers import LONG, wait_for_frames


class HoldingDevice:
    """Answers /v1/info like an agent running parts-v2, the first /v1/frame with a real frame, then holds."""

    def __init__(self) -> None:
        ok, bmp = cv2.imencode(".bmp", np.full((480, 640, 3), 90, np.uint8))
        assert ok
        self.frame = encode_frame_message(header_bytes(StreamHeader(1, 0.0, "2.0.0", 640, 480, Timings(1, 2, 1), [])),
                                          bmp.tobytes())
        self.requests = 0
        self.holding = 0  # requests being held right now
        self.dropped_by_client = 0  # held requests the console gave up (its connection closed)

    async def info(self, _request: web.Request) -> web.Response:
        info = device_info("holding")
        info["model"] = {"name": "parts", "version": "2.0.0", "sha256": file_sha256(demo_model("parts-v2")),
                         "classes": ["bolt", "nut", "washer", "bracket"]}
        return web.json_response(info)

    async def frame_request(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.requests == 1:
            return web.Response(body=self.frame, content_type=FRAME_CONTENT_TYPE)
        self.holding += 1
        try:
            while request.transport is not None and not request.transport.is_closing():
                await asyncio.sleep(0.02)
            self.dropped_by_client += 1
            return web.Response(status=499)
        finally:
            self.holding -= 1

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/info", self.info)
        app.router.add_get("/v1/frame", self.frame_request)
        return app


@pytest.fixture
def holding_device(monkeypatch):
    monkeypatch.setattr(CompareSession, "request_timeout_s", 3600.0)
    device = HoldingDevice()
    server = FakeDeviceServer(device.app()).start()
    yield device, server
    server.stop()


def test_stopping_continuous_mode_cancels_the_request_the_device_holds(qtbot, open_panel, holding_device):
    device, server = holding_device
    panel = open_panel(server.address)
    wait_for_frames(qtbot, panel, 1)  # the comparison made on opening: the device's one frame
    qtbot.waitUntil(lambda: panel.pending_jobs == 0, timeout=LONG)
    panel.set_continuous(True)
    qtbot.waitUntil(lambda: device.holding == 1, timeout=LONG)  # continuous mode waits for the next frame
    panel.set_continuous(False)
    qtbot.waitUntil(lambda: panel.pending_jobs == 0 and not panel.worker.running, timeout=LONG)
    qtbot.waitUntil(lambda: device.dropped_by_client == 1 and device.holding == 0, timeout=LONG)
    assert panel.run_count == 1 and not panel.message_label.isVisible()  # stopping is not an error

    # Continuous mode starts again as if nothing happened.
    panel.set_continuous(True)
    qtbot.waitUntil(lambda: device.holding == 1, timeout=LONG)
    assert panel.worker.running


def test_closing_the_panel_abandons_its_requests(qtbot, open_panel, holding_device):
    device, server = holding_device
    panel = open_panel(server.address)
    wait_for_frames(qtbot, panel, 1)
    panel.compare_now()  # held by the device
    qtbot.waitUntil(lambda: device.holding == 1, timeout=LONG)
    pending = panel.pending_jobs
    panel.shutdown()
    assert panel.worker.join(30)  # ended by cancellation: the request itself would wait an hour
    qtbot.waitUntil(lambda: device.dropped_by_client == 1, timeout=LONG)
    qtbot.wait(100)  # let anything still posted to the GUI thread arrive (nothing should)
    assert panel.pending_jobs == pending and panel.run_count == 1  # nothing reported after closing
