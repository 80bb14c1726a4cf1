"""The console's side of trust (issue 11), with real agents over TLS on 127.0.0.1 and real mDNS on loopback:
pairing by code in the window, remembered across a restart; a device whose certificate changed is refused and
said; a revoked console is cut off, its open stream included; an impostor announcing a paired device's id from
another address is not followed."""

from __future__ import annotations

import shutil

from PySide6.QtCore import QSettings, Qt

from edge_console.console.main_window import MainWindow
from edge_console.console.widgets.formatting import trust_text
from edge_console.console.widgets.pair_dialog import PairDialog
from tests.support.agent_harness import LOOPBACK, agent_cli, pairing_code
from tests.support.console_trust import TEST_TRUST
from tests.support.mdns_announcer import Announcer

LONG = 60_000


def open_window(qtbot, fleet, tmp_path) -> MainWindow:
    window = MainWindow(fleet, QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    return window


def table_trust(window: MainWindow, state) -> str:
    model = window.table.model
    column = next(c for c in range(model.columnCount()) if model.headerData(c, Qt.Orientation.Horizontal) == "Trust")
    return model.index(model.row_of(state), column).data()


def test_pairing_by_code_in_the_window_is_shown_and_kept_across_a_restart(qtbot, fleet_factory, agent_factory,
                                                                           tmp_path):
    agent = agent_factory("Line 9", advertise=False, enrol=False).start()
    database, data_dir = tmp_path / "console.sqlite", tmp_path / "console-data"
    fleet = fleet_factory(discover=False, database=database, trusted=False, data_dir=data_dir)
    window = open_window(qtbot, fleet, tmp_path)
    state = fleet.add_manual(agent.address)
    qtbot.waitUntil(lambda: state.status == "not paired", timeout=LONG)
    assert table_trust(window, state) == "not paired" and state.frames_received == 0
    window.set_current(state)
    qtbot.waitUntil(lambda: "edge-agent pair" in window.details.browser.toPlainText(), timeout=LONG)

    dialog = window.pair_with(state)
    assert isinstance(dialog, PairDialog)
    dialog.code.setText("0000-0000")  # a wrong code: said, nothing pinned
    dialog.start()
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Not paired"), timeout=LONG)
    assert fleet.runtime.trust.pin_for(agent.device_id or "") is None
    qtbot.wait(1500)  # the device limits attempts to about one a second after a wrong code, and says so
    dialog.code.setText(pairing_code(agent.state_dir, "viewer"))
    dialog.start()
    qtbot.waitUntil(lambda: state.trust == "viewer" and state.connected, timeout=LONG)
    assert table_trust(window, state) == "paired: viewer" and state.may("viewer") and not state.may("operator")
    window.open_preview(state)
    qtbot.waitUntil(lambda: state.frames_received > 0, timeout=LONG)
    window.close()
    fleet.close()

    again = fleet_factory(discover=False, database=database, trusted=False, data_dir=data_dir)
    qtbot.waitUntil(lambda: (s := again.find(device_id=agent.device_id)) is not None and s.trust == "viewer"
                    and s.connected, timeout=LONG)  # remembered, reached as a viewer with no new code


def test_a_changed_certificate_is_refused_and_said_as_ssh_does(qtbot, fleet_factory, agent_factory, tmp_path):
    """The same address and device id, another certificate: a reinstalled device, or a man in the middle."""
    agent = agent_factory("Press 4", advertise=False, enrol=False)
    TEST_TRUST.enrol_on(agent.state_dir)  # the device trusts this console, so only the console can refuse
    agent.start()
    fleet = fleet_factory(discover=False)
    fleet.pin_device(agent.device_id, agent.certificate(), "operator", str(agent.address))
    window = open_window(qtbot, fleet, tmp_path)
    state = fleet.add_manual(agent.address)
    window.open_preview(state)
    qtbot.waitUntil(lambda: state.frames_received > 0 and state.trust == "admin", timeout=LONG)  # as enrolled
    pinned = agent.certificate()

    agent.stop()
    shutil.rmtree(agent.state_dir / "tls")  # a new key pair on the next start
    agent.start(port=agent.address.port)
    assert agent.certificate() != pinned
    qtbot.waitUntil(lambda: state.status == "certificate changed", timeout=LONG)
    frames = state.frames_received
    assert "pair again" in state.trust_detail.lower() or "re-pair" in state.trust_detail.lower(), state.trust_detail
    assert table_trust(window, state) == "certificate changed"
    window.set_current(state)
    qtbot.waitUntil(lambda: "certificate changed" in window.details.browser.toPlainText(), timeout=LONG)
    qtbot.wait(2000)
    assert state.frames_received == frames  # nothing more is taken from it
    assert fleet.runtime.trust.pin_for(agent.device_id).certificate == pinned  # never silently re-pinned


def test_a_revoked_console_is_cut_off_open_stream_included(qtbot, fleet_factory, agent_factory, tmp_path):
    agent = agent_factory("Line 5", advertise=False).start()  # enrolled as "test console", pinned by the fleet
    fleet = fleet_factory(discover=False)
    window = open_window(qtbot, fleet, tmp_path)
    state = fleet.add_manual(agent.address)
    window.open_preview(state)
    qtbot.waitUntil(lambda: state.frames_received > 3 and state.trust == "admin", timeout=LONG)

    listing = agent_cli("pairings", "--state-dir", str(agent.state_dir)).stdout
    pairing_id = next(line.split()[0] for line in listing.splitlines() if "test console" in line)
    assert agent_cli("unpair", pairing_id, "--state-dir", str(agent.state_dir)).returncode == 0
    qtbot.waitUntil(lambda: state.status == "no longer paired", timeout=LONG)
    assert "pair again" in state.trust_detail
    frames = state.frames_received
    qtbot.wait(2000)
    assert state.frames_received == frames  # the stream that was open when it was revoked is closed too


def test_an_impostor_announcing_a_paired_device_id_is_not_followed(qtbot, fleet_factory, agent_factory, tmp_path):
    genuine = agent_factory("Genuine line").start()  # announced on loopback, enrolled and pinned
    impostor = agent_factory("Impostor", advertise=False, enrol=False).start()  # a real agent, its own key
    fleet = fleet_factory(discover=True)
    state = None

    def found():
        nonlocal state
        state = fleet.find(device_id=genuine.device_id)
        return state is not None and state.connected and state.trust == "admin"

    qtbot.waitUntil(found, timeout=LONG)
    announcer = Announcer("imp", 0)
    announcer.infos = [fake_announcement(genuine.device_id, impostor.address.port)]
    announcer.start()
    try:
        qtbot.waitUntil(lambda: any("impostor" in e.message for e in state.errors), timeout=LONG)
        assert state.address == genuine.address and state.connected and trust_text(state) == "paired: admin"
        assert fleet.find(device_id=genuine.device_id) is state
    finally:
        announcer.close()


def fake_announcement(device_id: str, port: int):
    from zeroconf import ServiceInfo

    from edge_console.core.protocol import SERVICE_TYPE

    return ServiceInfo(SERVICE_TYPE, f"impostor-{device_id[:8]}.{SERVICE_TYPE}", parsed_addresses=[LOOPBACK],
                       port=port, properties={"id": device_id, "name": "Genuine line"},
                       server=f"impostor-{device_id[:8]}.local.")
