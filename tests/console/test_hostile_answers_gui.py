"""Issue 21 item 8, in the window: a device that answers deeply nested JSON on /v1/info or /v1/health (a real HTTP
server on 127.0.0.1, in lab mode) is shown offline with the reason, in the table, its tooltip and the preview
tile, never a bare "retrying by itself"; the console keeps asking, and takes the device back as soon as it answers
properly. Its name, full of terminal escapes, a carriage return and a right-to-left override, is shown made
visible once it is readable."""

from __future__ import annotations

import pytest
from aiohttp import web
from PySide6.QtCore import Qt

from edge_console.console.widgets.device_table import HEALTH_COLUMN, DeviceTable
from edge_console.console.widgets.preview_panel import PreviewPanel
from tests.support.fake_devices import FakeDeviceServer, device_info, scripted_app

LONG = 30_000
NESTED = "[" * 100_000 + "]" * 100_000
CANNOT_READ = "the device sent an answer the console cannot read"
HOSTILE_NAME = "Line\x1b[2J\x1b]0;owned\x07 5\rEvil \u202egnp.exe"


def switchable_app(hostile: dict[str, bool]) -> web.Application:
    """A lab-mode device (the shared scripted one) whose answers on a path are nested JSON while `hostile[path]`."""
    app = scripted_app({**device_info("hostile-answers"), "name": HOSTILE_NAME})

    @web.middleware
    async def nested_while_hostile(request: web.Request, handler) -> web.StreamResponse:
        if hostile.get(request.path):
            return web.Response(text=NESTED, content_type="application/json")
        return await handler(request)

    app.middlewares.append(nested_while_hostile)
    return app


@pytest.fixture
def hostile():
    behaviour: dict[str, bool] = {}
    server = FakeDeviceServer(switchable_app(behaviour)).start()
    yield server, behaviour
    server.stop()


def test_nested_json_is_shown_with_its_reason_and_the_device_comes_back(qtbot, fleet_factory, hostile):
    server, behaviour = hostile
    fleet = fleet_factory(discover=False)
    behaviour["/v1/info"] = True  # hostile from the start: the console never learns who it is
    state = fleet.add_manual(server.address)
    table = DeviceTable(fleet)
    qtbot.addWidget(table)
    table.resize(900, 300)
    table.show()
    panel = PreviewPanel(state)
    qtbot.addWidget(panel)
    panel.resize(640, 480)
    panel.show()

    def shown_everywhere(reason: str) -> bool:
        health = table.model.index(0, HEALTH_COLUMN).data()
        tooltip = table.model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
        return reason in state.status_reason and reason in health and reason in tooltip \
            and reason in panel.canvas._banner()

    info_reason = f"{CANNOT_READ} (/v1/info: nested too deeply"
    qtbot.waitUntil(lambda: shown_everywhere(info_reason), timeout=LONG)
    assert state.status == "offline"
    banner = panel.canvas._banner()
    assert banner.startswith("offline") and "retrying in" in banner  # the reason, and that it keeps trying
    assert "retrying by itself" not in banner  # (the stream's words: no stream is waited for here)
    assert any(info_reason in e.message for e in state.errors)

    behaviour["/v1/info"] = False  # who it is, readable now; its health report still is not
    behaviour["/v1/health"] = True
    qtbot.waitUntil(lambda: shown_everywhere(f"{CANNOT_READ} (/v1/health: nested too deeply"), timeout=LONG)
    assert state.device_id == "hostile-answers" and state.status == "offline"
    # Its name reached the window made visible: no escape, bell, carriage return or override acts.
    name = table.model.index(0, 0).data()
    assert not any(ch in name for ch in "\x1b\x07\r\u202e")
    assert "\u241b[2J" in name and "\u240d" in name and "\u27e8U+202E\u27e9" in name

    behaviour["/v1/health"] = False  # the device behaves: the same session takes it back
    qtbot.waitUntil(lambda: state.status == "online", timeout=LONG)
    assert state.status_reason == ""
    assert CANNOT_READ not in table.model.index(0, HEALTH_COLUMN).data()
    qtbot.waitUntil(lambda: not panel.canvas._banner().startswith("offline"), timeout=LONG)
    panel.detach()
