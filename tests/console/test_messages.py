"""Messages in the user's words (issue 10 items 10 and 13): a name that does not resolve, an address that cannot be
one, a port where something other than an agent answers, `edge-console compare` checking its output folder first
and naming the device as typed, and a console started without any display."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from aiohttp import web
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from edge_console.client.net.addresses import DeviceAddress
from edge_console.console.widgets.add_device_dialog import AddDeviceDialog
from tests.support.agent_harness import ROOT
from tests.support.fake_devices import FakeDeviceServer

LONG = 30_000
NOWHERE = "camera-7.invalid"  # the reserved .invalid TLD; and the resolver is replaced below, so nothing is asked


@pytest.fixture
def names_do_not_resolve(monkeypatch):
    """The resolver answers "no such name" for NOWHERE without sending a query; every other name as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str | bytes) and (host.decode() if isinstance(host, bytes) else host) == NOWHERE:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_name_that_does_not_resolve_says_so(qtbot, fleet_factory, names_do_not_resolve):
    fleet = fleet_factory(discover=False)
    state = fleet.add_manual(DeviceAddress(NOWHERE, 8470))
    qtbot.waitUntil(lambda: "resolve" in state.status_reason, timeout=LONG)
    assert f"the name '{NOWHERE}' does not resolve" in state.status_reason
    assert "Unknown error" not in state.status_reason and "-2" not in state.status_reason


def test_an_address_that_cannot_exist_is_refused_in_the_add_dialog(qtbot):
    dialog = AddDeviceDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    for text, says in (("999.1.1.1:8470", "is not an IPv4 address"), ("0.0.0.0:8470", "not a device"),
                       ("224.0.0.251:8470", "multicast"), ("cam:eighty", "is not a port number")):
        dialog.edit.setText(text)
        ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
        assert dialog.isVisible() and dialog.address is None, text
        assert says in dialog.error.text(), (text, dialog.error.text())
    assert "8470" in dialog.edit.placeholderText()


@pytest.fixture
def web_page_server():
    """A port where a web server answers, as a router or a camera's own page would: HTML, 404 for /v1/..."""
    async def page(_request: web.Request) -> web.Response:
        return web.Response(status=404, text="<html><body><h1>Not Found</h1><p>nginx</p></body></html>",
                            content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    server = FakeDeviceServer(app).start()
    yield server
    server.stop()


def compare_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_console.console", "compare", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_a_port_that_is_not_an_agent_says_so_in_the_window_and_the_cli(qtbot, fleet_factory, web_page_server):
    fleet = fleet_factory(discover=False)
    state = fleet.add_manual(web_page_server.address)
    qtbot.waitUntil(lambda: "not an edge agent" in state.status_reason, timeout=LONG)
    assert "HTTP 404" in state.status_reason and "<" not in state.status_reason

    run = compare_cli("--device", str(web_page_server.address), "--frames", "1")
    assert run.returncode == 3 and "this is not an edge agent" in run.stderr
    assert "<html" not in run.stderr and "Traceback" not in run.stderr
    assert "8470" in run.stderr  # the agent's default port, as a hint


def test_compare_checks_its_output_folder_before_comparing_and_names_the_device_as_typed(tmp_path):
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder")
    run = compare_cli("--device", "127.0.0.1:9", "--frames", "1", "--save-frames", str(in_the_way / "frames"))
    assert run.returncode == 2 and "--save-frames" in run.stderr and "cannot write there" in run.stderr
    assert "cannot reach" not in run.stderr  # checked before anything was asked of the device

    run = compare_cli("--device", "127.0.0.1:9", "--frames", "1")
    assert run.returncode == 3 and "127.0.0.1:9" in run.stderr and "http://" not in run.stderr


def test_without_a_display_the_console_says_what_to_do_instead_of_aborting():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    run = subprocess.run([sys.executable, "-m", "edge_console.console", "--demo"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "needs a display" in run.stderr and "--screenshot" in run.stderr and "compare" in run.stderr
    assert "Reinstalling" not in run.stderr and "Traceback" not in run.stderr
