"""A device that sends garbage, answers HTML or speaks another API version shows errors tied to that device;
the window stays up and keeps working."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings

from edge_console.console.main_window import MainWindow
from tests.support.fake_devices import FakeDeviceServer, garbage_app

LONG = 30_000


@pytest.fixture
def bad_servers():
    servers = [FakeDeviceServer(garbage_app("garbage")).start(),
               FakeDeviceServer(garbage_app("html", info_is_html=True)).start(),
               FakeDeviceServer(garbage_app("future", api_version=99)).start()]
    yield servers
    for server in servers:
        server.stop()


def test_garbage_from_devices_becomes_messages_on_those_devices(qtbot, fleet_factory, bad_servers, shared_agents,
                                                                tmp_path):
    fleet = fleet_factory(discover=False)
    window = MainWindow(fleet, QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    garbage, html, future = (fleet.add_manual(server.address) for server in bad_servers)
    good = fleet.add_manual(shared_agents[0].address)
    window.open_preview(garbage)  # the stream of non-protocol bytes is opened and painted from

    def messages(state) -> str:
        return " | ".join(e.message for e in state.errors) + " | " + state.status_reason + " | " + state.stream_reason

    qtbot.waitUntil(lambda: "stream:" in messages(garbage), timeout=LONG)
    qtbot.waitUntil(lambda: "history:" in messages(garbage) or "telemetry:" in messages(garbage), timeout=LONG)
    qtbot.waitUntil(lambda: "did not answer JSON" in messages(html), timeout=LONG)
    qtbot.waitUntil(lambda: "protocol mismatch" in messages(future), timeout=LONG)
    assert "API version 99" in future.status_reason
    assert garbage.latest_frame is None  # nothing garbled was ever painted as a frame

    # The rest of the console keeps working: the good device streams into the grid next to the broken ones.
    window.tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: good.status == "online" and window.grid.tiles[good].frame is not None, timeout=60_000)
    window.table.select(garbage)
    window.details.refresh()
    assert "stream:" in window.details.browser.toPlainText()
    assert not window.grab().isNull()
    window.close()
