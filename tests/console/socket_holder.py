"""Other consoles, as far as an agent can tell: WebSocket clients on 127.0.0.1 that connect and keep reading, so the
agent reaches its client limit. Runs its own event loop on one thread; `close()` joins it. Each is a console of its
own, paired with the agent as a viewer (an agent limits what one console may hold: agent/api/socket_registry.py), and
presents its certificate over TLS, as every console must."""

from __future__ import annotations

import asyncio
import threading

import aiohttp

from edge_console.agent.api.socket_registry import MAX_PER_CONSOLE
from edge_console.agent.trust.device_trust import TrustStore
from edge_console.core.trust.tls_identity import client_context, load_or_create_identity


def _other_console(agent, n: int):
    """A console of its own (made once per agent), paired as a viewer: its TLS context for the agent."""
    identity = load_or_create_identity(agent.state_dir.parent / f"other-console-{n}", f"other console {n}")
    store = TrustStore(agent.state_dir)
    if store.by_fingerprint(identity.fingerprint) is None:
        store.enrol(f"other console {n}", identity.cert_pem, "viewer")
    return client_context(identity, agent.certificate())


class SocketHolder:
    def __init__(self, agent, count: int, path: str = "/v1/telemetry") -> None:
        self._url = f"https://{agent.address}{path}"
        self._ssl = [_other_console(agent, n) for n in range(-(-count // MAX_PER_CONSOLE))]
        self._count = count
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="socket-holder", daemon=True)
        self._session: aiohttp.ClientSession | None = None
        self._readers: list[asyncio.Task] = []
        self.refused = 0

    def start(self) -> SocketHolder:
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(60)
        except BaseException:
            self.close()
            raise
        return self

    async def _open(self) -> None:
        self._session = aiohttp.ClientSession()
        deadline = asyncio.get_running_loop().time() + 15
        n = 0
        while n < self._count:
            try:
                ws = await self._session.ws_connect(self._url, ssl=self._ssl[n // MAX_PER_CONSOLE])
            except aiohttp.WSServerHandshakeError:
                self.refused += 1
                n += 1
                continue
            except aiohttp.ClientConnectionError:  # a console paired a moment ago: the agent trusts it within 1 s
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)
                continue
            n += 1
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
