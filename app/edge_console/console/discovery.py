"""mDNS discovery as Qt signals: the browser runs on the network loop, its findings arrive on the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from edge_console.client.net.loop_thread import NetworkLoop
from edge_console.client.net.mdns_browser import DiscoveredService, MdnsBrowser
from edge_console.console.gui_dispatch import GuiDispatcher


class DeviceDiscovery(QObject):
    found = Signal(object)  # DiscoveredService, for a new or updated announcement
    removed = Signal(str)  # service name
    failed = Signal(str)

    def __init__(self, network: NetworkLoop, dispatcher: GuiDispatcher, interfaces: list[str] | None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.interfaces = interfaces
        self._network = network
        self._browser = MdnsBrowser(
            interfaces,
            on_found=lambda svc: dispatcher.post(self._emit_found, svc),
            on_removed=lambda name: dispatcher.post(self.removed.emit, name),
            on_error=lambda msg: dispatcher.post(self.failed.emit, msg),
        )

    def _emit_found(self, service: DiscoveredService) -> None:
        self.found.emit(service)

    @property
    def description(self) -> str:
        return "mDNS on " + (", ".join(self.interfaces) if self.interfaces else "all interfaces")

    def start(self) -> None:
        self._network.submit(self._browser.start())

    async def aclose(self) -> None:
        """Awaited on the network loop during shutdown."""
        await self._browser.close()
