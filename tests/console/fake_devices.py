"""Devices that break the protocol, for the tests: a tiny aiohttp server on 127.0.0.1 in its own thread."""

from __future__ import annotations

import asyncio
import json
import threading
import time

from aiohttp import web

from edge_console.client.net.addresses import DeviceAddress

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


class FakeDeviceServer:
    """Serves one app on 127.0.0.1 (a free port) from a background loop; `stop()` joins the thread."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-device", daemon=True)
        self._runner: web.AppRunner | None = None
        self.address: DeviceAddress | None = None

    def start(self) -> FakeDeviceServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self._app, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # aiohttp keeps the bound port only there
        self.address = DeviceAddress("127.0.0.1", port)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


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
