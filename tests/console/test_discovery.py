"""Devices appear through mDNS on loopback and by manual address; every device seen is remembered."""

from __future__ import annotations

from edge_console.client.net.addresses import DeviceAddress
from edge_console.console.device_state import DeviceState
from edge_console.console.fleet import Fleet
from edge_console.console.widgets.device_table import DeviceTable

LONG = 60_000  # ms; generous, the box is shared and slow, and waitUntil returns as soon as the condition holds


def by_id(fleet: Fleet, device_id: str | None) -> DeviceState | None:
    return next((s for s in fleet.states if s.device_id == device_id), None)


def test_advertised_devices_appear_through_mdns_on_loopback(qtbot, fleet_factory, shared_agents):
    fleet = fleet_factory(discover=True)
    table = DeviceTable(fleet)
    qtbot.addWidget(table)

    def all_online() -> bool:
        states = [by_id(fleet, agent.device_id) for agent in shared_agents]
        return all(s is not None and s.status == "online" and s.info for s in states)

    qtbot.waitUntil(all_online, timeout=LONG)
    for agent in shared_agents:
        state = by_id(fleet, agent.device_id)
        assert state.address == agent.address
        assert state.name == agent.name
        assert state.txt.get("id") == agent.device_id
        assert state.announced and not state.manual
    # The table lists them, with the status a glance reads.
    names = {table.model.index(r, 0).data() for r in range(table.model.rowCount())}
    assert {a.name for a in shared_agents} <= names
    table.filter_edit.setText(shared_agents[0].name)
    shown = {table.proxy.index(r, 0).data() for r in range(table.proxy.rowCount())}
    # Only names containing the filter (other programs may announce on this machine's loopback too).
    assert shared_agents[0].name in shown and shared_agents[1].name not in shown
    assert all(shared_agents[0].name in name for name in shown)


def test_a_device_added_by_address_is_identified_and_remembered(qtbot, fleet_factory, shared_agents, tmp_path):
    agent = shared_agents[0]
    database = tmp_path / "remember.sqlite"
    fleet = fleet_factory(discover=False, database=database)
    state = fleet.add_manual(agent.address)
    assert fleet.add_manual(agent.address) is state  # adding twice lists it once
    qtbot.waitUntil(lambda: state.status == "online" and state.device_id == agent.device_id, timeout=LONG)
    assert state.manual and state.name == agent.name
    assert state.info["model"]["classes"]
    fleet.close()

    # A later console lists it at once from its database, then reconnects by itself.
    later = fleet_factory(discover=False, database=database)
    qtbot.waitUntil(lambda: by_id(later, agent.device_id) is not None, timeout=10_000)
    remembered = by_id(later, agent.device_id)
    assert remembered.last_seen is not None and remembered.manual
    qtbot.waitUntil(lambda: remembered.status == "online", timeout=LONG)


def test_an_unreachable_address_shows_an_error_on_that_device(qtbot, fleet_factory):
    fleet = fleet_factory(discover=False)
    # Port 9 (discard) on loopback: nothing listens there, the connection is refused at once.
    state = fleet.add_manual(DeviceAddress("127.0.0.1", 9))
    qtbot.waitUntil(lambda: "unreachable" in state.status_reason, timeout=LONG)
    assert state.status in ("connecting", "offline")
    assert not state.connected


def test_a_manual_entry_merges_with_the_same_device_found_by_mdns(qtbot, fleet_factory, shared_agents):
    agent = shared_agents[1]
    fleet = fleet_factory(discover=True)
    qtbot.waitUntil(lambda: by_id(fleet, agent.device_id) is not None, timeout=LONG)
    found = by_id(fleet, agent.device_id)
    assert fleet.add_manual(agent.address) is found
    qtbot.waitUntil(lambda: found.status == "online", timeout=LONG)
    assert sum(1 for s in fleet.states if s.device_id == agent.device_id) == 1
