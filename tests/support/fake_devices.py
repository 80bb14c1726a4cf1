"""Fake devices for the tests of the console's side: tiny aiohttp servers on 127.0.0.1 that speak the agent's API
shape, or break it on purpose. One way to serve them: `serving(app)` on the test's own event loop (the
`asyncio.run` scenarios), or a `FakeDeviceServer` on a loop of its own thread (Qt tests, command-line runs).

What they serve: `garbage_app` (a device breaking the protocol every way), `scripted_app` (one following it, with
what it says scripted), and `FakeAgent` (the real API's shape with a clock skewed by a known amount, a telemetry
history it pages out, and a stream whose frames say when they were sent; it can go away and come back on the same
port).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from edge_console.client.net.addresses import DeviceAddress
from edge_console.core.protocol import API_VERSION, StreamHeader, encode_frame_message, header_bytes

LOOPBACK = "127.0.0.1"
SHUTDOWN_TIMEOUT_S = 0.5  # a fake device does not wait long for its clients to finish when it goes away


async def start_site(app: web.Application, *, port: int = 0, tls: ssl.SSLContext | None = None,
                     ) -> tuple[web.AppRunner, DeviceAddress]:
    """`app` listening on 127.0.0.1 (`port` 0: a free one); its runner (to clean up) and its address."""
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    await web.TCPSite(runner, LOOPBACK, port, ssl_context=tls).start()
    return runner, DeviceAddress(LOOPBACK, runner.addresses[0][1])


@contextlib.asynccontextmanager
async def serving(app: web.Application, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[DeviceAddress]:
    """`app` served on the running loop for the `async with` block."""
    runner, address = await start_site(app, tls=tls)
    try:
        yield address
    finally:
        await runner.cleanup()


class FakeDeviceServer:
    """Serves one app on 127.0.0.1 (a free port) from a loop in a thread of its own; `stop()` joins the thread.
    Also a context manager."""

    def __init__(self, app: web.Application, tls: ssl.SSLContext | None = None) -> None:
        self._app, self._tls = app, tls
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-device", daemon=True)
        self._runner: web.AppRunner | None = None
        self.address: DeviceAddress | None = None

    def start(self) -> FakeDeviceServer:
        self._thread.start()
        self._runner, self.address = asyncio.run_coroutine_threadsafe(
            start_site(self._app, tls=self._tls), self._loop).result(10)
        return self

    @property
    def port(self) -> int:
        assert self.address is not None, "the fake device was not started"
        return self.address.port

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> FakeDeviceServer:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


GARBAGE_FRAMES: tuple[bytes, ...] = (
    b"this is not a frame message",  # length prefix reads as a huge header
    b"\x00\x00\x00\x05{bad}",  # header is not JSON, no JPEG
    b"\x00\x00\x00\x02{}\xff\xd8",  # JSON header without the required keys
    b'\x00\x00\x00\x30{"seq":1,"capture_ts":0,"width":64,"height":48}   \xff\xd8 not a real jpeg',
    b'\x00\x00\x00\x2f{"seq":1,"capture_ts":0,"width":-5,"height":48}   \xff\xd8\xff\xd9',
    bytes(range(256)) * 8,
)


def device_info(device_id: str, api_version: int = 1) -> dict:
    return {"id": device_id, "name": f"Broken {device_id}", "agent_version": "0.0.0", "api_version": api_version,
            "hardware": {"arch": "x86_64"}, "model": {"name": "none", "version": "0", "classes": ["bolt"]},
            "source": {"kind": "none"}, "uptime_s": 1.0, "started_at": time.time(),
            "insecure_lab_mode": True}  # plain HTTP: these stand in for agents in insecure lab mode


def garbage_app(device_id: str, *, info_is_html: bool = False, api_version: int = 1) -> web.Application:
    async def info(_request: web.Request) -> web.Response:
        if info_is_html:
            return web.Response(text="<html>router login</html>", content_type="text/html")
        return web.json_response(device_info(device_id, api_version))

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "reasons": []})

    async def clock(_request: web.Request) -> web.Response:
        return web.json_response({"time": time.time()})

    async def history(_request: web.Request) -> web.Response:
        return web.json_response({"samples": [{"no": "ts"}, {"ts": "soon"}], "more": False})

    async def telemetry(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        while not ws.closed:
            await ws.send_str("{not json")
            await ws.send_bytes(b"\x00binary telemetry?")
            await ws.send_str(json.dumps({"ts": time.time(), "fps_inferred": "fast", "health": "fine"}))
            await asyncio.sleep(0.3)
        return ws

    async def stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        i = 0
        while not ws.closed:
            await ws.send_bytes(GARBAGE_FRAMES[i % len(GARBAGE_FRAMES)])
            if i % 7 == 0:
                await ws.send_str("hello?")
            i += 1
            await asyncio.sleep(0.02)
        return ws

    app = web.Application()
    app.router.add_get("/v1/info", info)
    app.router.add_get("/v1/health", health)
    app.router.add_get("/v1/time", clock)
    app.router.add_get("/v1/telemetry/history", history)
    app.router.add_get("/v1/telemetry", telemetry)
    app.router.add_get("/v1/stream", stream)
    return app


def parts_v2_info(device_id: str, name: str) -> dict:
    """What an agent running the shipped parts-v2 says about itself (the console's library has that model)."""
    return {"id": device_id, "name": name, "agent_version": "0.0.0", "api_version": 1, "hardware": {"arch": "x86_64"},
            "model": {"name": "parts", "version": "2.0.0", "classes": ["bolt", "nut", "washer", "bracket"]},
            "source": {"kind": "synthetic"}, "uptime_s": 1.0, "started_at": time.time(),
            "insecure_lab_mode": True}  # plain HTTP, as an agent in insecure lab mode


def scripted_app(info: dict, stream_message=None, frame_message=None, frame_type: str = "") -> web.Application:
    """A device that follows the protocol, with what it says scripted: its /v1/info, what its stream sends
    (`stream_message(i)` -> bytes, 10 a second) and what /v1/frame answers (bytes of `frame_type`)."""
    async def info_handler(_request: web.Request) -> web.Response:
        return web.json_response(info)

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "reasons": []})

    async def clock(_request: web.Request) -> web.Response:
        return web.json_response({"time": time.time()})

    async def history(_request: web.Request) -> web.Response:
        return web.json_response({"samples": [], "more": False})

    async def telemetry(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sender = asyncio.get_running_loop().create_task(_samples(ws))
        try:
            async for msg in ws:
                data = json.loads(msg.data)
                if data.get("type") == "ping":
                    await ws.send_str(json.dumps({"type": "pong", "t0": data["t0"], "server_time": time.time()}))
        finally:
            sender.cancel()
        return ws

    async def _samples(ws: web.WebSocketResponse) -> None:
        try:
            while not ws.closed:
                await ws.send_str(json.dumps({"ts": time.time(), "fps_inferred": 10.0}))
                await asyncio.sleep(0.5)
        except ConnectionResetError:
            pass

    async def stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        i = 0
        try:
            while not ws.closed and stream_message is not None:
                await ws.send_bytes(stream_message(i))
                i += 1
                await asyncio.sleep(0.1)
        except ConnectionResetError:  # the console closed the preview
            pass
        return ws

    async def frame(_request: web.Request) -> web.Response:
        if frame_message is None:
            return web.json_response({"error": "no inferred frame yet", "detail": "scripted"}, status=503)
        return web.Response(body=frame_message(), content_type=frame_type)

    app = web.Application()
    for path, handler in (("/v1/info", info_handler), ("/v1/health", health), ("/v1/time", clock),
                          ("/v1/telemetry/history", history), ("/v1/telemetry", telemetry), ("/v1/stream", stream),
                          ("/v1/frame", frame)):
        app.router.add_get(path, handler)
    return app


# -- FakeAgent: the API's shape, with a skewed clock, a paged history and timed frames ----------------------------

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
        self._runner, self.address = await start_site(app, port=port)
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
