"""A device registry's listener for tests: it writes down what it was told, in order."""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_console.client.device_registry import DeviceIdentity


@dataclass
class Log:
    """A RegistryListener that writes down what it was told, in order."""

    events: list[tuple[str, object]] = field(default_factory=list)

    def _add(self, kind: str, what: object) -> None:
        self.events.append((kind, what))

    def device_listed(self, device): self._add("listed", device)
    def device_unlisted(self, device): self._add("unlisted", device)
    def identity_changed(self, device): self._add("changed", device)
    def address_changed(self, device): self._add("moved", device)
    def reconnect_device(self, device): self._add("reconnect", device)
    def remember_device(self, device): self._add("remember", device)
    def forget_record(self, record_id): self._add("forget", record_id)
    def identity_conflict(self, device, message): self._add("conflict", message)

    def kinds(self, device: DeviceIdentity | None = None) -> list[str]:
        return [k for k, what in self.events if device is None or what is device]

    def of(self, kind: str) -> list[object]:
        return [what for k, what in self.events if k == kind]
