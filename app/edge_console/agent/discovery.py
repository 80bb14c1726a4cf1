"""Advertise the agent over mDNS/DNS-SD as `_edgeinfer._tcp.local.` with its id, name, model and arch in TXT."""

from __future__ import annotations

import socket

import ifaddr
from zeroconf import InterfaceChoice
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from edge_console.core.protocol import SERVICE_TYPE


def host_ipv4_addresses() -> list[str]:
    """Every non-loopback IPv4 address of this host: what to advertise when listening on all interfaces."""
    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ip.ip.startswith("127."):
                found.append(ip.ip)
    return found or ["127.0.0.1"]


class Advertiser:
    def __init__(self, interfaces: list[str] | None, addresses: list[str], port: int, name: str, device_id: str,
                 txt: dict[str, str]):
        # `interfaces` None means all interfaces: the real-site default. Tests and the simulator pass 127.0.0.1.
        self.interfaces = interfaces
        self.addresses = addresses
        self.port = port
        # Instance names must be unique on the link; the short id keeps two cameras both called "Line 3" apart.
        self.instance = f"{name[:40]} [{device_id[:6]}]"
        self.host = f"edge-{device_id[:12]}.local."
        self.txt = txt
        self.zc: AsyncZeroconf | None = None
        self.info: AsyncServiceInfo | None = None

    def _info(self, name: str) -> AsyncServiceInfo:
        return AsyncServiceInfo(
            SERVICE_TYPE,
            name,
            addresses=[socket.inet_aton(a) for a in self.addresses],
            port=self.port,
            properties=self.txt,
            server=self.host,
        )

    async def start(self) -> None:
        self.zc = AsyncZeroconf(interfaces=self.interfaces or InterfaceChoice.All)
        self.info = self._info(f"{self.instance}.{SERVICE_TYPE}")
        # The zeroconf async API returns the announcing task: await it too, so start() returns once announced.
        await (await self.zc.async_register_service(self.info, allow_name_change=True))

    async def update(self, txt: dict[str, str]) -> None:
        self.txt = txt
        if self.zc and self.info:
            # Keep the registered name: a name conflict at start may have renamed it.
            self.info = self._info(self.info.name)
            await (await self.zc.async_update_service(self.info))

    async def stop(self) -> None:
        if self.zc:
            if self.info:
                # Await the goodbye broadcast itself, or async_close() cuts it off and consoles wait for a TTL.
                await (await self.zc.async_unregister_service(self.info))
            await self.zc.async_close()
            self.zc = None
