"""mDNS floods and odd addresses (issue 9 item 8): real zeroconf registrations on 127.0.0.1 only, browsed on
127.0.0.1 only, fed into the device registry as the console does. 300 announcements list at most
MAX_DISCOVERED_DEVICES devices; an announcement whose addresses are not one machine's (0.0.0.0, broadcast,
multicast, reserved, unspecified) lists nothing, so nothing is ever connected to; and discovered devices that
were not seen for FORGET_DISCOVERED_AFTER_DAYS are forgotten, devices added by address or paired never."""

from __future__ import annotations

import asyncio
import time
import uuid

from zeroconf import ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from edge_console.client import device_registry, store
from edge_console.client.device_registry import DeviceRegistry
from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.mdns_browser import DiscoveredService, MdnsBrowser
from edge_console.client.store import DeviceRecord, DeviceStore
from edge_console.core.protocol import SERVICE_TYPE
from tests.support.registry_log import Log

LOOPBACK = "127.0.0.1"
WAIT_S = 120.0  # a guard against hanging, not a timing assertion
DAY = 86400.0
CAP = 128  # the stated cap on devices found by mDNS (device_registry.MAX_DISCOVERED_DEVICES)
FORGET_AFTER_DAYS = 30  # the stated time after which an unseen discovered device is forgotten


def browse(infos: list[ServiceInfo], tag: str, until) -> dict[str, DiscoveredService]:
    """Register `infos` on loopback, browse loopback until `until(found)` holds for the services carrying `tag`;
    unregister everything again."""
    found: dict[str, DiscoveredService] = {}

    async def scenario() -> None:
        publisher = AsyncZeroconf(interfaces=[LOOPBACK])
        browser = MdnsBrowser([LOOPBACK], on_found=lambda s: found.__setitem__(s.service_name, s),
                              on_removed=lambda _name: None, on_error=lambda message: None)
        try:
            # Registered all at once: one after the other, each waits out its own probing (about a second).
            registered = await asyncio.gather(*(publisher.async_register_service(info) for info in infos))
            await asyncio.gather(*registered)
            await browser.start()

            async def wait() -> None:
                while not until({n: s for n, s in found.items() if tag in n}):
                    await asyncio.sleep(0.1)

            await asyncio.wait_for(wait(), WAIT_S)
        finally:
            await browser.close()
            await publisher.async_unregister_all_services()
            await publisher.async_close()

    asyncio.run(scenario())
    return {n: s for n, s in found.items() if tag in n}


def service(tag: str, i: int, addresses: list[str], port: int = 9) -> ServiceInfo:
    return ServiceInfo(SERVICE_TYPE, f"flood-{tag}-{i:03d}.{SERVICE_TYPE}", parsed_addresses=addresses, port=port,
                       properties={"id": f"{tag}{i:03d}", "name": f"Flood {i}"}, server=f"flood-{tag}-{i}.local.")


def test_a_flood_of_announcements_lists_at_most_the_cap():
    tag = uuid.uuid4().hex[:8]
    count = 300
    found = browse([service(tag, i, [LOOPBACK]) for i in range(count)], tag, lambda f: len(f) >= count)
    log = Log()
    registry = DeviceRegistry(log)
    for announced in found.values():
        registry.announce(announced)
    assert len(registry) == CAP == getattr(device_registry, "MAX_DISCOVERED_DEVICES", None)
    assert len(log.of("listed")) == CAP  # the console starts that many sessions, no more
    assert len(registry.ignored_announcements) == count - CAP
    listed = registry.devices[0]
    again = next(s for s in found.values() if s.device_id == listed.device_id)
    assert registry.announce(again) is listed  # a listed device is still updated
    manual = registry.add_manual(DeviceAddress("10.0.0.9", 8470))  # the user's own additions are never capped
    assert manual in registry.devices and len(registry) == CAP + 1


def test_announced_addresses_that_are_not_one_machine_are_ignored():
    tag = uuid.uuid4().hex[:8]
    odd = [["0.0.0.0"], ["255.255.255.255"], ["224.0.0.251"], ["240.0.0.1"], ["::"], ["ff02::1"]]
    mixed = ["0.0.0.0", "224.0.0.251", LOOPBACK]
    infos = [service(tag, i, addresses) for i, addresses in enumerate([*odd, mixed])]
    found = browse(infos, tag, lambda f: len(f) >= len(infos))
    registry = DeviceRegistry(Log())
    listed = {name: registry.announce(s) for name, s in found.items()}
    for i in range(len(odd)):
        name = f"flood-{tag}-{i:03d}.{SERVICE_TYPE}"
        assert found[name].addresses == [], odd[i]
        assert listed[name] is None, odd[i]  # not listed: no session, no connection
    mixed_device = listed[f"flood-{tag}-{len(odd):03d}.{SERVICE_TYPE}"]
    assert mixed_device is not None and mixed_device.address == DeviceAddress(LOOPBACK, 9)
    assert [d.address for d in registry.devices] == [DeviceAddress(LOOPBACK, 9)]


def test_discovered_devices_not_seen_for_a_month_are_forgotten_added_ones_are_kept(tmp_path):
    now = time.time()
    assert getattr(store, "FORGET_DISCOVERED_AFTER_DAYS", None) == FORGET_AFTER_DAYS
    old = now - (FORGET_AFTER_DAYS + 10) * DAY
    database = DeviceStore(tmp_path / "console.sqlite")
    for record in (DeviceRecord("gone", "Discovered, gone for 40 days", "10.0.0.1", 8470, first_seen=old,
                                last_seen=old),
                   DeviceRecord("recent", "Discovered, seen 2 days ago", "10.0.0.2", 8470, first_seen=old,
                                last_seen=now - 2 * DAY),
                   DeviceRecord("never", "Announced once, never answered", "10.0.0.3", 8470),
                   DeviceRecord("mine", "Added by address a year ago", "10.0.0.4", 8470, manual=True,
                                first_seen=now - 365 * DAY, last_seen=now - 365 * DAY),
                   DeviceRecord("paired", "Paired, then away for 40 days", "10.0.0.5", 8470, first_seen=old,
                                last_seen=old)):
        database.record_seen(record)
    # The trust store's pins table in the same database (trust_store.PinStore): "paired" was paired with.
    database.db.table("pins").insert({"device_id": "paired", "certificate": "", "fingerprint": "00",
                                      "role": "operator", "paired_at": old, "address": "10.0.0.5:8470"})
    restored = database.restore(now=now)
    assert sorted(r.id for r in restored.records) == ["mine", "paired", "recent"]
    assert restored.forgotten == 2 and restored.problems == []
    assert sorted(r.id for r in database.all_devices()) == ["mine", "paired", "recent"]  # the others deleted
    database.close()
