"""Services announced over mDNS on 127.0.0.1 only, for the console's discovery tests: ghosts that never answer
(their port is closed), or (with `infos` replaced) a stand-in for a device."""

from __future__ import annotations

import asyncio
import threading

from zeroconf import ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from edge_console.core.protocol import SERVICE_TYPE
from tests.support.agent_harness import LOOPBACK

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
