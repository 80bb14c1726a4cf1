"""Browsing `_edgeinfer._tcp.local.` with python-zeroconf on the console's network loop.

The AsyncZeroconf instance is created inside the running loop, so zeroconf uses that loop and starts no thread
of its own. Which interfaces to browse is the caller's choice: all of them on a real site, `127.0.0.1` in the demo
and the tests (never all interfaces on a shared machine).

A device that reappears right after its goodbye is checked, not believed (issue 21, item 10): a device's zeroconf
answers a query from a queue, 20 ms to 1.2 s after it arrived, and removes the service only when it stops, so an
answer queued just before a clean stop goes out *after* the goodbye, with full TTLs. The goodbye's two repeats do
not undo it: zeroconf drops a packet identical to one received in the last second. The stale answer put the device
back in the cache, the console listed a device that was gone, and when it really came back with the same records
nothing in the cache changed, so zeroconf raised no event and the running browser never reported it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from zeroconf import DNSService, DNSText, InterfaceChoice, ServiceStateChange, Zeroconf
from zeroconf import Error as ZeroconfError
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from edge_console.client.net.addresses import DeviceAddress, unusable_address_reason
from edge_console.core.protocol import SERVICE_TYPE

log = logging.getLogger(__name__)
RESOLVE_TIMEOUT_MS = 3000
RESOLVE_RETRY_PAUSES_S = (1.0, 5.0, 20.0)  # after a resolve that got no answer
# How long after a goodbye an answer the device queued before it can still arrive: zeroconf sends a queued answer
# 20-120 ms after the query, up to 1.2 s for a record it multicast in the last second; the rest is a busy network.
GOODBYE_GRACE_S = 2.0
MAX_RECENT_GOODBYES = 1024  # goodbyes remembered for the grace above; more are dropped, oldest first
# An announcement is a hint from anyone on the network, never proof of identity: bound what is kept of it.
MAX_TXT_VALUE_CHARS = 255  # one DNS-SD string; an agent never sends more
MAX_TXT_KEY_CHARS = 64
MAX_NAME_CHARS = 100  # a device name shown in a table row and a tab title
DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")  # agents send hex; anything else is not an id


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
            try:
                ip = ipaddress.ip_address(addr.host)
            except ValueError:
                return (2, 0)
            return (0 if ip.version == 4 else 1, 1 if ip.is_link_local else 0)
        return min(self.addresses, key=rank) if self.addresses else None


def printable_text(raw: bytes | str | None, limit: int) -> str:
    """Bytes from the network as one line of text: invalid UTF-8 replaced, control characters (a newline in a
    table row, an escape sequence in a log) blanked, at most `limit` characters."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (raw or "")
    return "".join(c if c.isprintable() else " " for c in text[: limit * 2]).strip()[:limit]


def decode_txt(properties: dict[bytes, bytes | None]) -> dict[str, str]:
    """TXT properties as text. Keys are case-insensitive (RFC 6763 section 6.4): lower-cased, the first of
    duplicates wins, an empty key is dropped."""
    txt: dict[str, str] = {}
    for raw_key, raw_value in properties.items():
        key = printable_text(raw_key, MAX_TXT_KEY_CHARS).lower()
        if key and key not in txt:
            txt[key] = printable_text(raw_value, MAX_TXT_VALUE_CHARS)
    return txt


def service_from_announcement(service_name: str, port: int, hosts: list[str],
                              properties: dict[bytes, bytes | None]) -> DiscoveredService:
    """What the console keeps of one resolved announcement, whatever the TXT records hold."""
    txt = decode_txt(properties)
    instance = printable_text(service_name.removesuffix("." + SERVICE_TYPE), MAX_NAME_CHARS) or "unnamed device"
    claimed_id = txt.get("id", "")
    device_id = claimed_id if DEVICE_ID.fullmatch(claimed_id) else service_name  # no usable id: the name is one
    display = printable_text(txt.get("name"), MAX_NAME_CHARS) or instance
    # Only addresses of one machine: 0.0.0.0, 255.255.255.255, multicast and reserved ones are dropped, so the
    # console never connects to what an announcement merely claims.
    usable = [host for host in hosts if unusable_address_reason(host) is None]
    addresses = [DeviceAddress(host, port) for host in usable] if 0 < port < 65536 else []
    return DiscoveredService(service_name, device_id, display, addresses, txt)


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
        self._goodbye_at: dict[str, float] = {}  # service name -> loop time of its last goodbye, while recent
        self._checking: set[str] = set()  # services that reappeared within the grace of their goodbye

    async def start(self) -> None:
        try:
            self._azc = AsyncZeroconf(interfaces=self._interfaces or InterfaceChoice.All)
            self._browser = AsyncServiceBrowser(self._azc.zeroconf, SERVICE_TYPE, handlers=[self._on_change])
        except OSError as exc:  # no multicast route, interface gone, ...: say so, keep manual add working
            self._on_error(f"mDNS discovery could not start on {self._interfaces or 'all interfaces'}: {exc}")

    def _on_change(self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        loop = asyncio.get_running_loop()
        if state_change is ServiceStateChange.Removed:
            self._remember_goodbye(name, loop.time())
            self._on_removed(name)
            return
        said_goodbye = self._goodbye_at.get(name)
        if said_goodbye is not None and loop.time() - said_goodbye < GOODBYE_GRACE_S:
            # Back within the grace of its goodbye: most likely an answer the device queued before it stopped.
            if name not in self._checking:
                log.info("mDNS service %r reappeared %.2f s after its goodbye: checked once the grace is over",
                         name, loop.time() - said_goodbye)
                self._checking.add(name)
                self._track(loop.create_task(self._check_after_goodbye(name, said_goodbye + GOODBYE_GRACE_S)))
            return
        self._goodbye_at.pop(name, None)
        self._track(loop.create_task(self._resolve(name)))

    def _track(self, task: asyncio.Task) -> None:
        self._resolving.add(task)
        task.add_done_callback(self._resolving.discard)

    def _remember_goodbye(self, name: str, now: float) -> None:
        self._goodbye_at.pop(name, None)  # re-inserted last: the dict stays in goodbye order
        self._goodbye_at[name] = now
        while len(self._goodbye_at) > MAX_RECENT_GOODBYES:  # names come from the network: bounded
            del self._goodbye_at[next(iter(self._goodbye_at))]

    async def _check_after_goodbye(self, name: str, not_before: float) -> None:
        """Once nothing the departed device queued can still arrive: forget its SRV and TXT records, and ask.

        A device that is really there answers, and is reported. One that is gone does not, and stays removed; when
        it comes back its announcement is news to the cache again, so zeroconf reports it and so does the browser.
        The PTR record stays: zeroconf's browser needs it to see the next goodbye, and an announcement with a
        cached PTR and a new SRV is reported as an update all the same.
        """
        try:
            await asyncio.sleep(max(0.0, not_before - asyncio.get_running_loop().time()))
            if self._azc is None:
                return
            cache = self._azc.zeroconf.cache
            cache.async_remove_records([record for record in cache.async_entries_with_name(name)
                                        if isinstance(record, DNSService | DNSText)])
        finally:
            self._checking.discard(name)
        await self._resolve(name)

    async def _resolve(self, name: str) -> None:
        """Resolve `name`; an answer lost on a busy LAN is asked for again a few times, since a device that keeps
        announcing the same records raises no new event to try again on."""
        for attempt, pause_s in enumerate((0.0, *RESOLVE_RETRY_PAUSES_S)):
            await asyncio.sleep(pause_s)
            if self._azc is None:
                return
            try:
                info = AsyncServiceInfo(SERVICE_TYPE, name)
                if await info.async_request(self._azc.zeroconf, RESOLVE_TIMEOUT_MS):
                    self._on_found(service_from_announcement(name, info.port or 0, info.parsed_scoped_addresses(),
                                                             info.properties or {}))
                    return
            except (ZeroconfError, ValueError, OSError) as exc:  # a malformed name: one bad announcement, no crash
                log.info("mDNS service %r cannot be resolved: %s", name, exc)
                return
            log.info("mDNS service %r did not resolve (attempt %d)", name, attempt + 1)

    async def close(self) -> None:
        for task in list(self._resolving):
            task.cancel()
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._azc is not None:
            await self._azc.async_close()
        self._browser = self._azc = None
