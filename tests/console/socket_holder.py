"""Other consoles, as far as an agent can tell: WebSocket clients on 127.0.0.1 that connect and keep reading, so the
agent reaches its client limit. Runs its own event loop on one thread; `close()` joins it. They present the tests'
console certificate over TLS, as every console must (see trust_setup.py)."""

from __future__ import annotations

import asyncio
import threading

import aiohttp

from .trust_setup import TEST_TRUST


class SocketHolder:
    def __init__(self, agent, count: int, path: str = "/v1/telemetry") -> None:
        self._url = f"https://{agent.address}{path}"
        self._ssl = TEST_TRUST.ssl_for(agent)
        self._count = count
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="socket-holder", daemon=True)
        self._session: aiohttp.ClientSession | None = None
        self._readers: list[asyncio.Task] = []
        self.refused = 0

    def start(self) -> SocketHolder:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(60)
        return self

    async def _open(self) -> None:
        self._session = aiohttp.ClientSession()
        for _ in range(self._count):
            try:
                ws = await self._session.ws_connect(self._url, ssl=self._ssl)
            except aiohttp.WSServerHandshakeError:
                self.refused += 1
                continue
            self._readers.append(asyncio.get_running_loop().create_task(self._read(ws)))

    @staticmethod
    async def _read(ws: aiohttp.ClientWebSocketResponse) -> None:
        async with ws:
            async for _msg in ws:  # reading answers the agent's heartbeat pings
                pass

    @property
    def held(self) -> int:
        return sum(1 for task in self._readers if not task.done())

    async def _close(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
