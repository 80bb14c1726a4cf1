"""The device registry's identity and merge rules, as plain unit tests: no Qt, no network, no threads."""

from __future__ import annotations

from edge_console.client.device_registry import DeviceRegistry
from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.mdns_browser import DiscoveredService
from edge_console.client.store import DeviceRecord
from tests.support.registry_log import Log

A = DeviceAddress("10.0.0.5", 8470)
A_NEW_PORT = DeviceAddress("10.0.0.5", 40123)
B = DeviceAddress("10.0.0.6", 8470)


def announced(device_id: str, address: DeviceAddress, name: str = "Press 1", service: str | None = None,
              txt: dict | None = None) -> DiscoveredService:
    return DiscoveredService(service or f"{name}._edgeinfer._tcp.local.", device_id, name, [address],
                             txt or {"id": device_id, "model": "parts-v2"})


def registry() -> tuple[DeviceRegistry, Log]:
    log = Log()
    return DeviceRegistry(log), log


def test_an_announcement_lists_a_device_and_an_update_changes_it_in_place():
    reg, log = registry()
    device = reg.announce(announced("d1", A))
    assert reg.devices == [device] and log.kinds() == ["listed", "changed"]
    assert (device.device_id, device.name, device.address, device.announced, device.manual) == ("d1", "Press 1", A,
                                                                                                  True, False)
    again = reg.announce(announced("d1", A, txt={"id": "d1", "model": "parts-v3"}))
    assert again is device and len(reg) == 1 and device.txt["model"] == "parts-v3"
    assert "moved" not in log.kinds()  # same address: nothing to reconnect


def test_reannounced_on_another_port_moves_the_same_device():
    reg, log = registry()
    device = reg.announce(announced("d1", A))
    moved = reg.announce(announced("d1", A_NEW_PORT))
    assert moved is device and device.address == A_NEW_PORT and len(reg) == 1
    assert log.of("moved") == [device]  # its session must talk to the new port now


def test_withdrawn_devices_stay_listed_but_not_announced():
    reg, log = registry()
    device = reg.announce(announced("d1", A, service="one._edgeinfer._tcp.local."))
    assert reg.withdraw("one._edgeinfer._tcp.local.") is device
    assert not device.announced and reg.devices == [device]
    assert reg.withdraw("unknown._edgeinfer._tcp.local.") is None


def test_an_announcement_without_a_usable_address_is_ignored():
    reg, log = registry()
    service = DiscoveredService("x._edgeinfer._tcp.local.", "d9", "x", [], {})
    assert reg.announce(service) is None and not reg.devices and not log.events


def test_manual_add_is_idempotent_and_remembered_at_once():
    reg, log = registry()
    device = reg.add_manual(A)
    assert device.manual and device.device_id is None and device.name == str(A)
    assert device.record_id == f"manual:{A}" and log.kinds() == ["listed", "remember"]
    assert reg.add_manual(A) is device and len(reg) == 1
    assert log.kinds()[-1] == "reconnect"  # adding it again means "try now"


def test_a_manual_device_learns_its_id_and_its_provisional_row_is_forgotten():
    reg, log = registry()
    device = reg.add_manual(A)
    assert reg.identify(device, "d1", "Press 1") is device
    assert (device.device_id, device.name, device.answered) == ("d1", "Press 1", True)
    assert log.of("forget") == [f"manual:{A}"] and log.kinds()[-1] == "remember"


def test_a_manual_add_of_a_device_found_by_mdns_merges_into_it():
    reg, log = registry()
    found = reg.announce(announced("d1", A))
    manual = reg.add_manual(B)  # the same device, reached through another address (second network card)
    survivor = reg.identify(manual, "d1", "Press 1")
    assert survivor is found and reg.devices == [found]  # one row per device
    assert found.manual and found.address == B
    assert log.of("unlisted") == [manual] and log.of("forget") == [f"manual:{B}"]
    assert found in log.of("reconnect") and found in log.of("moved")


def test_a_manual_device_announced_with_its_id_keeps_one_row_under_that_id():
    reg, log = registry()
    manual = reg.add_manual(A)
    assert reg.announce(announced("d1", A)) is manual and len(reg) == 1
    assert manual.device_id == "d1" and manual.manual and manual.announced
    assert log.of("forget") == [f"manual:{A}"] and log.of("remember")[-1] is manual


def test_the_devices_own_name_wins_over_its_announcement():
    reg, _log = registry()
    device = reg.announce(announced("d1", A, name="from mdns"))
    reg.identify(device, "d1", "Press line 1")
    reg.announce(announced("d1", A, name="from mdns"))
    assert device.name == "Press line 1"


def test_a_device_that_changes_its_id_is_reported_not_silently_renamed():
    reg, log = registry()
    device = reg.announce(announced("d1", A))
    reg.identify(device, "d2", "impostor")
    assert device.device_id == "d1" and "now says it is 'd2', not 'd1'" in log.of("conflict")[0]


def test_remembered_devices_are_listed_unless_already_seen():
    reg, log = registry()
    live = reg.announce(announced("d1", A))
    records = [
        DeviceRecord("d1", "Press 1", A.host, A.port, first_seen=10.0, last_seen=20.0),  # seen now: merged
        DeviceRecord("d2", "Press 2", B.host, B.port, model_name="parts-v1", first_seen=5.0, last_seen=6.0),
        DeviceRecord(f"manual:{A_NEW_PORT}", str(A_NEW_PORT), A_NEW_PORT.host, A_NEW_PORT.port, manual=True),
        DeviceRecord("broken", "no address", "", 0),
    ]
    added = reg.restore(records)
    assert [d.device_id for d in added] == ["d2", None] and len(reg) == 3
    assert live.first_seen == 10.0  # the database knew it earlier than this session
    d2 = added[0]
    assert (d2.name, d2.address, d2.txt["model"], d2.last_seen, d2.announced) == ("Press 2", B, "parts-v1", 6.0, False)
    assert added[1].manual and added[1].address == A_NEW_PORT
    # A manual row whose address is already listed (by this session's manual add) is not listed twice.
    reg2, _ = registry()
    manual = reg2.add_manual(A)
    assert reg2.restore([DeviceRecord(f"manual:{A}", str(A), A.host, A.port, manual=True)]) == []
    assert reg2.devices == [manual]
    # Nor is a remembered device whose address was added by hand before the list was read: the caller keeps the
    # object it was given, and it learns the id when the device answers.
    reg3, _ = registry()
    early = reg3.add_manual(B)
    assert reg3.restore([DeviceRecord("d2", "Press 2", B.host, B.port, first_seen=5.0)]) == []
    assert reg3.devices == [early] and early.first_seen == 5.0


def test_find_prefers_the_id_and_uses_an_address_only_for_devices_without_one():
    reg, _log = registry()
    known = reg.announce(announced("d1", A))
    unknown = reg.add_manual(B)
    assert reg.find(device_id="d1") is known
    assert reg.find(address=B) is unknown
    assert reg.find(device_id="d3", address=A) is None  # A belongs to d1: another id at A is another device
    assert reg.find(device_id="d3", address=B) is unknown


def test_forget_unlists_and_deletes_the_row():
    reg, log = registry()
    device = reg.announce(announced("d1", A, service="one._edgeinfer._tcp.local."))
    reg.forget(device)
    assert not reg.devices and log.of("forget") == ["d1"]
    assert reg.withdraw("one._edgeinfer._tcp.local.") is None  # its announcement is no longer tied to it
