"""A fake agent for the console's network layer: the real HTTP and WebSocket API shape on 127.0.0.1, with a clock
skewed by a known amount, a telemetry history it pages out, and a stream whose frames say when they were sent.

It runs on the test's own event loop (the tests are `asyncio.run` scenarios), next to the `DeviceSession` under
test, and can go away and come back on the same port.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from edge_console.client.net.addresses import DeviceAddress
from edge_console.core.protocol import API_VERSION, StreamHeader, encode_frame_message, header_bytes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HISTORY_PAGE_CAP = 600  # like the agent: at most this many samples per page, whatever the client asks
CAPTURE_AGE_S = 0.25  # each streamed frame says it was captured this long (device clock) before it was sent


@dataclass
class HistoryRequest:
    since: float
    limit: int
    returned: int
    more: bool


@dataclass
class FakeAgent:
    device_id: str = "fake0001"
    name: str = "Fake camera"
    skew_s: float = 0.0  # device clock minus the real (console) clock
    history_ts: list[float] = field(default_factory=list)  # device-clock timestamps of stored samples
    telemetry_period_s: float = 0.2
    history_requests: list[HistoryRequest] = field(default_factory=list)
    sent_at: dict[int, float] = field(default_factory=dict)  # stream seq -> console-clock time it was sent
    address: DeviceAddress | None = None
    # path -> handler answering instead of the fake's own (a hostile device); read at each request, so a test can
    # make the device misbehave, or behave again, while a session talks to it
    scripted: dict[str, Handler] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _sockets: set[web.WebSocketResponse] = field(default_factory=set)

    def device_now(self) -> float:
        return time.time() + self.skew_s

    # -- HTTP and WebSocket handlers -----------------------------------------------------------------------------

    async def info(self, _request: web.Request) -> web.Response:
        return web.json_response({"id": self.device_id, "name": self.name, "api_version": API_VERSION,
                                  "agent_version": "0.0.0", "hardware": {"arch": "x86_64"},
                                  "model": {"name": "fake", "version": "1", "classes": ["bolt"]},
                                  "source": {"kind": "fake"}})

    async def clock(self, _request: web.Request) -> web.Response:
        return web.json_response({"time": self.device_now()})

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "reasons": []})

    async def history(self, request: web.Request) -> web.Response:
        since = float(request.query.get("since", "0"))
        limit = min(int(request.query.get("limit", str(HISTORY_PAGE_CAP))), HISTORY_PAGE_CAP)
        newer = [ts for ts in self.history_ts if ts > since]
        page = newer[:limit]
        more = len(newer) > limit
        self.history_requests.append(HistoryRequest(since, limit, len(page), more))
        return web.json_response({"samples": [{"ts": ts, "fps_inferred": 10.0} for ts in page], "more": more})

    async def telemetry(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        sender = asyncio.get_running_loop().create_task(self._send_samples(ws))
        try:
            async for msg in ws:
                data = json.loads(msg.data)
                if data.get("type") == "ping":
                    await ws.send_str(json.dumps({"type": "pong", "t0": data["t0"], "server_time": self.device_now()}))
        finally:
            sender.cancel()
            self._sockets.discard(ws)
        return ws

    async def _send_samples(self, ws: web.WebSocketResponse) -> None:
        while not ws.closed:
            await ws.send_str(json.dumps({"ts": self.device_now(), "fps_inferred": 10.0}))
            await asyncio.sleep(self.telemetry_period_s)

    async def stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        seq = 0
        try:
            while not ws.closed:
                seq += 1
                now = time.time()
                header = StreamHeader(seq, now + self.skew_s - CAPTURE_AGE_S, "1", 64, 48)
                self.sent_at[seq] = now
                await ws.send_bytes(encode_frame_message(header_bytes(header), b"\xff\xd8not decoded here\xff\xd9"))
                await asyncio.sleep(0.05)
        finally:
            self._sockets.discard(ws)
        return ws

    # -- life cycle -------------------------------------------------------------------------------------------------

    async def start(self, port: int = 0) -> FakeAgent:
        app = web.Application()
        for path, handler in (("/v1/info", self.info), ("/v1/time", self.clock), ("/v1/health", self.health),
                              ("/v1/telemetry/history", self.history), ("/v1/telemetry", self.telemetry),
                              ("/v1/stream", self.stream)):
            app.router.add_get(path, self._unless_scripted(path, handler))
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # aiohttp keeps the bound port only there
        self.address = DeviceAddress("127.0.0.1", bound)
        return self

    def _unless_scripted(self, path: str, own: Handler) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.scripted.get(path, own)(request)
        return handle

    async def stop(self) -> None:
        """Go away like a device that lost power: close every socket, stop listening."""
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
