"""A console browsing loopback while 200 services are announced there, none of which answers (issue 9 item 8): at
most the stated number of devices is listed, the window is told how many were not, and announcements that never
answered are not written to the console's database."""

from __future__ import annotations

import asyncio
import threading
import uuid

from zeroconf import ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from edge_console.client.store import DeviceStore
from edge_console.core.protocol import SERVICE_TYPE

from .agents import LOOPBACK

LONG = 60_000
CAP = 128  # the stated cap (device_registry.MAX_DISCOVERED_DEVICES)
CLOSED = 9  # nothing listens there: the announced devices never answer


class Announcer:
    """`count` services registered on 127.0.0.1 only, from a thread of their own, until `close()`."""

    def __init__(self, tag: str, count: int) -> None:
        self.infos = [ServiceInfo(SERVICE_TYPE, f"ghost-{tag}-{i:03d}.{SERVICE_TYPE}", parsed_addresses=[LOOPBACK],
                                  port=CLOSED, properties={"id": f"{tag}{i:03d}", "name": f"Ghost {i}"},
                                  server=f"ghost-{tag}-{i}.local.") for i in range(count)]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="announcer", daemon=True)
        self._zeroconf: AsyncZeroconf | None = None

    def start(self) -> Announcer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._register(), self._loop).result(120)
        return self

    async def _register(self) -> None:
        self._zeroconf = AsyncZeroconf(interfaces=[LOOPBACK])
        registered = await asyncio.gather(*(self._zeroconf.async_register_service(i) for i in self.infos))
        await asyncio.gather(*registered)

    async def _close(self) -> None:
        await self._zeroconf.async_unregister_all_services()
        await self._zeroconf.async_close()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


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
