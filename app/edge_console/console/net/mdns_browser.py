"""Browsing `_edgeinfer._tcp.local.` with python-zeroconf on the console's network loop.

The AsyncZeroconf instance is created inside the running loop, so zeroconf uses that loop and starts no thread
of its own. Which interfaces to browse is the caller's choice: all of them on a real site, `127.0.0.1` in the demo
and the tests (never all interfaces on a shared machine).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from zeroconf import InterfaceChoice, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from edge_console.core.protocol import SERVICE_TYPE

from .addresses import DeviceAddress

log = logging.getLogger(__name__)
RESOLVE_TIMEOUT_MS = 3000


@dataclass(frozen=True, slots=True)
class DiscoveredService:
    service_name: str  # the mDNS instance name; what a later removal refers to
    device_id: str
    name: str
    addresses: list[DeviceAddress] = field(default_factory=list)
    txt: dict[str, str] = field(default_factory=dict)

    @property
    def best_address(self) -> DeviceAddress | None:
        """IPv4 before IPv6, routable before link-local: what a laptop on the site can most likely reach."""
        def rank(addr: DeviceAddress) -> tuple[int, int]:
            ip = ipaddress.ip_address(addr.host)
            return (0 if ip.version == 4 else 1, 1 if ip.is_link_local else 0)
        return min(self.addresses, key=rank) if self.addresses else None


def _decode_txt(properties: dict[bytes, bytes | None]) -> dict[str, str]:
    return {k.decode("utf-8", "replace"): (v or b"").decode("utf-8", "replace") for k, v in properties.items()}


class MdnsBrowser:
    """Reports found (added or updated) and removed services through two callbacks, on the loop thread."""

    def __init__(self, interfaces: list[str] | None, on_found: Callable[[DiscoveredService], None],
                 on_removed: Callable[[str], None], on_error: Callable[[str], None]) -> None:
        self._interfaces = interfaces
        self._on_found = on_found
        self._on_removed = on_removed
        self._on_error = on_error
        self._azc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._resolving: set[asyncio.Task] = set()

    async def start(self) -> None:
        try:
            self._azc = AsyncZeroconf(interfaces=self._interfaces or InterfaceChoice.All)
            self._browser = AsyncServiceBrowser(self._azc.zeroconf, SERVICE_TYPE, handlers=[self._on_change])
        except OSError as exc:  # no multicast route, interface gone, ...: say so, keep manual add working
            self._on_error(f"mDNS discovery could not start on {self._interfaces or 'all interfaces'}: {exc}")

    def _on_change(self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            self._on_removed(name)
            return
        task = asyncio.get_running_loop().create_task(self._resolve(name))
        self._resolving.add(task)
        task.add_done_callback(self._resolving.discard)

    async def _resolve(self, name: str) -> None:
        if self._azc is None:
            return
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(self._azc.zeroconf, RESOLVE_TIMEOUT_MS):
            log.info("mDNS service %s did not resolve", name)
            return
        txt = _decode_txt(info.properties or {})
        port = info.port or 0
        addresses = [DeviceAddress(a, port) for a in info.parsed_scoped_addresses()] if port else []
        device_id = txt.get("id") or name
        display = txt.get("name") or name.removesuffix("." + SERVICE_TYPE)
        self._on_found(DiscoveredService(name, device_id, display, addresses, txt))

    async def close(self) -> None:
        for task in list(self._resolving):
            task.cancel()
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._azc is not None:
            await self._azc.async_close()
        self._browser = self._azc = None
