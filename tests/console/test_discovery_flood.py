"""A console browsing loopback while 200 services are announced there, none of which answers (issue 9 item 8): at
most the stated number of devices is listed, the window is told how many were not, and announcements that never
answered are not written to the console's database."""

from __future__ import annotations

import uuid

from edge_console.client.store import DeviceStore
from tests.support.mdns_announcer import Announcer

LONG = 60_000
CAP = 128  # the stated cap (device_registry.MAX_DISCOVERED_DEVICES)


def test_a_flood_of_announcements_is_capped_said_and_not_remembered(qtbot, fleet_factory, tmp_path):
    tag = uuid.uuid4().hex[:8]
    database = tmp_path / "console.sqlite"
    announcer = Announcer(tag, 200).start()
    try:
        fleet = fleet_factory(discover=True, database=database)
        messages: list[str] = []
        fleet.message.connect(messages.append)
        discovered = lambda: [s for s in fleet.states if not s.manual]  # noqa: E731
        qtbot.waitUntil(lambda: len(discovered()) >= CAP and any("not listed" in m for m in messages), timeout=LONG)
        qtbot.wait(1000)  # the rest of the flood arrives meanwhile
        ours = [s for s in fleet.states if (s.device_id or "").startswith(tag)]
        assert len(discovered()) == CAP and 0 < len(ours) <= CAP
        assert any(f"at most {CAP} devices found by mDNS" in m for m in messages)
        qtbot.waitUntil(lambda: all("unreachable" in s.status_reason for s in ours), timeout=LONG)
        fleet.close()  # every pending write is done
    finally:
        announcer.close()
    store = DeviceStore(database)
    assert not [r for r in store.all_devices() if r.id.startswith(tag)]  # announced, never answered: not kept
    store.close()
