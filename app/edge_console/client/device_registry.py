"""Which devices the console knows, and when two sightings are one device: the identity and merge rules, Qt-free.

A device is seen four ways: announced over mDNS, added by the user as host:port, remembered in the console's
database from an earlier session, and answering `GET /v1/info` with its own id. The rules:

- the device's id is its identity; an address identifies a device only while its id is unknown;
- an announcement of a known id updates its address (an agent restarted on another port moves, it is not new);
  for a paired device the announcement is only a hint: the owner checks that the pinned certificate answers at the
  new address (`verify_move`) before it `follow`s it there, so a fake agent announcing its id cannot capture it;
- a device added by address that turns out to be one already listed (found by mDNS or remembered) merges into
  that one: one row per device, and the provisional database row ("manual:host:port") is forgotten;
- a device's own name (from /v1/info) wins over the name in its announcement;
- a remembered device is listed offline until it answers; a sighting in this session wins over the database;
- at most MAX_DISCOVERED_DEVICES devices found by mDNS are listed: an announcement is a hint from anyone on the
  network, and 300 of them must not become 300 sessions. Devices added by address are never capped, and a device
  already listed keeps being updated; the announcements ignored are counted, so the window can say so.

The registry decides; whoever owns it (the Qt adapter `fleet.Fleet`) is told through a `RegistryListener`
what to do: list or unlist a device, redraw it, point its session at a new address, write the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.mdns_browser import DiscoveredService
from edge_console.client.store import DeviceRecord

MAX_DISCOVERED_DEVICES = 128  # devices found by mDNS (not added by address) listed at once; more are ignored


@dataclass(eq=False)
class DeviceIdentity:
    """Who a device is and how to reach it; compared by identity (two entries are never equal)."""

    address: DeviceAddress | None
    device_id: str | None = None
    name: str = ""
    manual: bool = False  # added by host:port; re-tried even when mDNS never sees it
    announced: bool = False  # currently advertised over mDNS
    answered: bool = False  # has answered /v1/info in this session: its own name and id are known
    pinned: bool = False  # paired: a new address is followed only once the pinned certificate is found there
    txt: dict[str, str] = field(default_factory=dict)
    first_seen: float | None = None
    last_seen: float | None = None

    def __post_init__(self) -> None:
        if not self.name:
            self.name = str(self.address) if self.address else self.device_id or "?"

    @property
    def record_id(self) -> str:
        """Its row in the console's database: its id, or its address while the id is unknown."""
        return self.device_id or f"manual:{self.address}"


class RegistryListener(Protocol):
    def device_listed(self, device: DeviceIdentity) -> None: ...
    def device_unlisted(self, device: DeviceIdentity) -> None: ...
    def identity_changed(self, device: DeviceIdentity) -> None: ...  # identity, address or TXT: redraw
    def address_changed(self, device: DeviceIdentity) -> None: ...  # talk to device.address from now on
    def reconnect_device(self, device: DeviceIdentity) -> None: ...  # connect to device.address now, no backoff wait
    def remember_device(self, device: DeviceIdentity) -> None: ...  # write it to the database now
    def forget_record(self, record_id: str) -> None: ...  # delete that database row
    def identity_conflict(self, device: DeviceIdentity, message: str) -> None: ...  # the device contradicts what we know
    def verify_move(self, device: DeviceIdentity, address: DeviceAddress) -> None: ...  # check, then `follow`


class DeviceRegistry:
    def __init__(self, listener: RegistryListener, max_discovered: int = MAX_DISCOVERED_DEVICES) -> None:
        self._listener = listener
        self.max_discovered = max_discovered
        self.devices: list[DeviceIdentity] = []
        self._service_owner: dict[str, DeviceIdentity] = {}  # mDNS service name -> device
        self.ignored_announcements: set[str] = set()  # service names beyond the cap, not listed

    @property
    def discovered_count(self) -> int:
        return sum(1 for device in self.devices if not device.manual)

    def __iter__(self) -> Iterator[DeviceIdentity]:
        return iter(list(self.devices))

    def __len__(self) -> int:
        return len(self.devices)

    def find(self, device_id: str | None = None, address: DeviceAddress | None = None) -> DeviceIdentity | None:
        """By id first; by address only among devices whose id is unknown (or when no id is asked for)."""
        if device_id is not None:
            for device in self.devices:
                if device.device_id == device_id:
                    return device
        if address is not None:
            for device in self.devices:
                if device.address == address and (device_id is None or device.device_id is None):
                    return device
        return None

    def _add(self, device: DeviceIdentity) -> DeviceIdentity:
        self.devices.append(device)
        self._listener.device_listed(device)
        return device

    # -- sightings ----------------------------------------------------------------------------------------------

    def add_manual(self, address: DeviceAddress) -> DeviceIdentity:
        """The user added `address`: a new device, or the one already there (marked manual, reconnected now)."""
        device = self.find(address=address)
        if device is None:
            device = self._add(DeviceIdentity(address, manual=True))
            self._listener.remember_device(device)
        else:
            device.manual = True
            self._listener.identity_changed(device)
            self._listener.reconnect_device(device)
        return device

    def restore(self, records: list[DeviceRecord]) -> list[DeviceIdentity]:
        """List the devices of earlier sessions (offline until they answer), unless already seen meanwhile; returns
        the devices added."""
        added = []
        for rec in records:
            if not rec.host or not rec.port:
                continue
            address = DeviceAddress(rec.host, rec.port)
            provisional = rec.id.startswith("manual:")  # added by address, never answered
            existing = self.find(address=address) if provisional else self.find(device_id=rec.id)
            if existing is None and not provisional:
                # Added by address before the remembered list was read: that device is this row's (or, if it
                # answers with another id, a new one); one device per address, so the caller keeps its object.
                waiting = self.find(address=address)
                existing = waiting if waiting is not None and waiting.device_id is None else None
            if existing is not None:
                if rec.first_seen and (existing.first_seen is None or rec.first_seen < existing.first_seen):
                    existing.first_seen = rec.first_seen
                    existing.last_seen = existing.last_seen or rec.last_seen
                    self._listener.identity_changed(existing)
                continue
            device = DeviceIdentity(address, None if provisional else rec.id, rec.name, rec.manual,
                                    txt={"model": rec.model_name, "model_version": rec.model_version, "arch": rec.arch},
                                    first_seen=rec.first_seen, last_seen=rec.last_seen)
            added.append(self._add(device))
        return added

    def announce(self, service: DiscoveredService) -> DeviceIdentity | None:
        """A device announced itself (new, updated, or on another address); None when it gave no usable address."""
        address = service.best_address
        if address is None:
            return None
        device = self.find(device_id=service.device_id, address=address)
        if device is None:
            if self.discovered_count >= self.max_discovered:
                if len(self.ignored_announcements) < 100 * self.max_discovered:  # a flood costs bounded memory
                    self.ignored_announcements.add(service.service_name)
                return None
            device = self._add(DeviceIdentity(address, service.device_id, service.name))
        else:
            if device.device_id is None:  # added by address, now announced with its id: one row, under the id
                provisional = device.record_id
                device.device_id = service.device_id
                self._listener.forget_record(provisional)
                self._listener.remember_device(device)
            if not device.answered and service.name:
                device.name = service.name
            if device.address != address:
                if device.pinned:  # an announcement is a hint: a paired device moves only if it is there
                    self._listener.verify_move(device, address)
                else:
                    device.address = address
                    self._listener.address_changed(device)
        self._service_owner[service.service_name] = device
        device.txt = dict(service.txt)
        device.announced = True
        self._listener.identity_changed(device)
        return device

    def withdraw(self, service_name: str) -> DeviceIdentity | None:
        """An announcement was withdrawn (the agent stopped): still listed, no longer announced."""
        self.ignored_announcements.discard(service_name)
        device = self._service_owner.pop(service_name, None)
        if device is not None and device.announced and device not in self._service_owner.values():
            device.announced = False
            self._listener.identity_changed(device)
        return device

    def identify(self, device: DeviceIdentity, device_id: str, name: str) -> DeviceIdentity | None:
        """The device at `device.address` answered /v1/info as `device_id`. Returns the device that now stands
        for it: `device` itself, or the one it merged into (which is then reconnected), or None if `device` is
        no longer listed."""
        if device not in self.devices:
            return None
        if device.device_id is None:
            other = self.find(device_id=device_id)
            if other is not None and other is not device:
                # Added by address, but already listed (found by mDNS or remembered): one row per device.
                other.manual = other.manual or device.manual
                if device.address is not None and other.address != device.address:
                    other.address = device.address
                    self._listener.address_changed(other)
                self._listener.identity_changed(other)
                self._listener.reconnect_device(other)
                old_record = device.record_id
                self.remove(device)
                self._listener.forget_record(old_record)
                return other
            old_record = device.record_id
            device.device_id = device_id
            self._listener.forget_record(old_record)
        elif device.device_id != device_id:
            self._listener.identity_conflict(device, f"the device at {device.address} now says it is {device_id!r}, "
                                            f"not {device.device_id!r}")
        device.answered = True
        if name:
            device.name = name
        self._listener.identity_changed(device)
        self._listener.remember_device(device)
        return device

    # -- the user's corrections -------------------------------------------------------------------------------------

    def follow(self, device: DeviceIdentity, address: DeviceAddress) -> None:
        """The paired device was found, with its pinned certificate, at `address`: talk to it there."""
        if device in self.devices and device.address != address:
            device.address = address
            self._listener.address_changed(device)
            self._listener.identity_changed(device)
            self._listener.remember_device(device)

    def move(self, device: DeviceIdentity, address: DeviceAddress) -> None:
        """The user corrected a device's address (it moved, or a typo in a manual add)."""
        device.address = address
        self._listener.identity_changed(device)
        self._listener.reconnect_device(device)
        self._listener.remember_device(device)

    def remove(self, device: DeviceIdentity) -> None:
        """Unlist the device (its database row stays: `forget` deletes that too)."""
        if device in self.devices:
            self.devices.remove(device)
            for name, owner in list(self._service_owner.items()):
                if owner is device:
                    del self._service_owner[name]
            self._listener.device_unlisted(device)

    def forget(self, device: DeviceIdentity) -> None:
        record = device.record_id
        self.remove(device)
        self._listener.forget_record(record)
