"""The agent's HTTP/WebSocket API under /v1 (aiohttp). See app/edge_console/core/protocol.py for the wire formats."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time

import cv2
from aiohttp import WSMsgType, web

from edge_console.core.protocol import FRAME_CONTENT_TYPE, StreamHeader, encode_frame_message, header_bytes

from .history import MAX_PAGE
from .runtime import Agent

log = logging.getLogger(__name__)
AGENT = web.AppKey("agent", Agent)
MAX_CLIENT_MESSAGE = 4096  # control messages are tiny; anything bigger closes the socket (1009)
MAX_WEBSOCKETS = 32  # per agent: a device serves a handful of consoles, never an unbounded crowd
HEARTBEAT_S = 20.0
FRAME_WAIT_S = 5.0  # /v1/frame?after=N waits this long for a newer frame (a long poll, not a download loop)  # a client that stops reading entirely is dropped after ~1.5x this


def json_error(status: int, error: str, detail: str = "") -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler):
    """Every failure leaves as JSON with a 4xx/5xx, never as an HTML page or a dropped connection."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        return json_error(exc.status, exc.reason, exc.text or "")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("unhandled error in %s", request.path)
        return json_error(500, "internal error", repr(exc)[:300])


class StreamSettings:
    """What a stream client asked for; checked on connect (query string) and on each configure message."""

    def __init__(self) -> None:
        self.max_fps = 15.0
        self.quality = 80
        self.max_width = 0  # 0: full resolution

    def update(self, values) -> None:
        """Apply max_fps / quality / max_width from a mapping; ValueError names the bad one and the range."""
        new = {}
        for key, cast, lo, hi in (("max_fps", float, 0.1, 120), ("quality", int, 10, 100), ("max_width", int, 0, 8192)):
            if key in values:
                try:
                    value = cast(values[key])
                except (TypeError, ValueError):
                    raise ValueError(f"{key} must be a number, got {values[key]!r:.40}") from None
                if not (lo <= value <= hi) or (isinstance(value, float) and not math.isfinite(value)):
                    raise ValueError(f"{key}={value} is out of range {lo}..{hi}")
                if key == "max_width" and 0 < value < 32:
                    raise ValueError("max_width must be 0 (full size) or at least 32")
                new[key] = value
        for key, value in new.items():  # all or nothing
            setattr(self, key, value)


async def info(request: web.Request) -> web.Response:
    return web.json_response(request.app[AGENT].info())


async def health(request: web.Request) -> web.Response:
    h = request.app[AGENT].health()
    return web.json_response(h.to_dict(), status=503 if h.status == "failing" else 200)


async def clock(request: web.Request) -> web.Response:
    return web.json_response({"time": time.time()})


async def telemetry_history(request: web.Request) -> web.Response:
    agent = request.app[AGENT]
    try:
        since = float(request.query.get("since", "0"))
        limit = int(request.query.get("limit", str(MAX_PAGE)))
        if not math.isfinite(since) or limit < 1:
            raise ValueError
    except ValueError:
        return json_error(400, "bad query", f"since must be epoch seconds and limit an integer 1..{MAX_PAGE}")
    samples, more = await asyncio.get_running_loop().run_in_executor(agent.executor, agent.history.since, since, limit)
    return web.json_response({"samples": samples, "more": more})


# Lossless encodings of /v1/frame. BMP is the default: it costs a memory copy on the device and on the laptop,
# where PNG costs ~20 ms to encode a noisy 640x480 frame; PNG is there for slow links and for people.
_FRAME_FORMATS = {"framed": ".bmp", "framed-png": ".png", "png": ".png"}


def _encode_lossless(frame, ext: str) -> bytes:
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1] if ext == ".png" else []
    ok, data = cv2.imencode(ext, frame.image, params)
    if not ok:
        raise RuntimeError(f"{ext} encoding failed")
    return data.tobytes()


async def latest_frame(request: web.Request) -> web.Response:
    """The exact pixels of the newest inferred frame (lossless) with the detections made on them.

    `?after=N` waits (up to FRAME_WAIT_S) for a frame newer than #N, so a client wanting the next frame makes one
    request instead of downloading the same frame again and again."""
    agent = request.app[AGENT]
    frame = agent.inference.latest
    if "after" in request.query:
        try:
            after = int(request.query["after"])
            if after < 0:
                raise ValueError
        except ValueError:
            return json_error(400, "bad query", "after must be a frame sequence number (an integer >= 0)")
        # Wait only while the newest frame is #N itself. No frame yet, or a number beyond ours (counted by an
        # earlier run of this agent): any frame of this run is new to the client.
        if frame is None or frame.seq == after:
            try:
                frame = await asyncio.wait_for(agent.hub.wait_newer(0 if frame is None else after), FRAME_WAIT_S)
            except TimeoutError:
                reasons = "; ".join(agent.health().reasons)
                return json_error(503, "no new frame", f"no frame after #{after} within {FRAME_WAIT_S:g} s"
                                  + (f": {reasons}" if reasons else ""))
    if frame is None:
        return json_error(503, "no inferred frame yet", "; ".join(agent.health().reasons) or "the agent is starting")
    fmt = request.query.get("format", "framed")
    if fmt not in _FRAME_FORMATS:
        return json_error(400, "bad query", "format must be 'framed' (header + BMP), 'framed-png' or 'png'")
    ext = _FRAME_FORMATS[fmt]
    if ext == ".bmp":
        image = _encode_lossless(frame, ext)  # a memory copy: cheaper than the hop to a worker thread
    else:
        image = await asyncio.get_running_loop().run_in_executor(agent.executor, _encode_lossless, frame, ext)
    if fmt == "png":
        return web.Response(body=image, content_type="image/png", headers={"X-Edge-Seq": str(frame.seq)})
    h, w = frame.image.shape[:2]
    header = StreamHeader(frame.seq, frame.capture_ts, frame.model_version, w, h, frame.timings, frame.detections)
    return web.Response(body=encode_frame_message(header_bytes(header), image), content_type=FRAME_CONTENT_TYPE)


async def _open_socket(request: web.Request) -> web.WebSocketResponse:
    agent = request.app[AGENT]
    if len(agent.websockets) >= MAX_WEBSOCKETS:
        raise web.HTTPServiceUnavailable(reason=f"too many clients (limit {MAX_WEBSOCKETS})")
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_CLIENT_MESSAGE)
    await ws.prepare(request)
    agent.websockets.add(ws)
    return ws


async def _serve_control(ws: web.WebSocketResponse, settings: StreamSettings | None) -> None:
    """Read client messages until it leaves: configure, ping; anything else gets an error reply, never a crash."""
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            await ws.send_json({"type": "error", "error": "only JSON text messages are accepted"})
            continue
        try:
            data = json.loads(msg.data)
            kind = data.get("type") if isinstance(data, dict) else None
            if kind == "ping":
                await ws.send_json({"type": "pong", "t0": data.get("t0"), "server_time": time.time()})
            elif kind == "configure" and settings is not None:
                settings.update(data)
                await ws.send_json({"type": "configured", "max_fps": settings.max_fps, "quality": settings.quality,
                                    "max_width": settings.max_width})
            else:
                raise ValueError(f"unknown message type {kind!r}; expected 'ping'" + (" or 'configure'" if settings else ""))
        except ValueError as exc:  # includes JSON errors
            await ws.send_json({"type": "error", "error": str(exc)[:300]})


async def _serve_socket(ws: web.WebSocketResponse, sending, settings: StreamSettings | None) -> None:
    """Send from one task while reading the client's control messages here; both end when the client leaves."""
    sender = asyncio.create_task(sending)
    try:
        await _serve_control(ws, settings)
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)


async def stream(request: web.Request) -> web.StreamResponse:
    agent = request.app[AGENT]
    settings = StreamSettings()
    try:
        settings.update(request.query)
    except ValueError as exc:
        return json_error(400, "bad stream settings", str(exc))
    ws = await _open_socket(request)
    await _serve_socket(ws, _send_frames(ws, agent, settings), settings)
    return ws


async def _send_frames(ws: web.WebSocketResponse, agent: Agent, settings: StreamSettings) -> None:
    try:
        await _frame_loop(ws, agent, settings)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:  # e.g. an encode failure: tell the client instead of going silent
        log.exception("stream to a client failed")
        await ws.close(code=1011, message=f"stream failed: {exc}"[:120].encode())


async def _frame_loop(ws: web.WebSocketResponse, agent: Agent, settings: StreamSettings) -> None:
    """Newest frame, at most max_fps, one message in flight: a slow client gets fewer frames, never a backlog."""
    loop = asyncio.get_running_loop()
    seq, next_at = 0, 0.0
    while not ws.closed:
        frame = await agent.hub.wait_newer(seq)
        if (delay := next_at - loop.time()) > 0:
            await asyncio.sleep(delay)
            frame = agent.hub.latest  # whatever is newest once this client may have another frame
        message = await agent.hub.message(frame, settings.quality, settings.max_width)
        await ws.send_bytes(message)  # waits while the client's socket is full: only this client slows
        agent.stats.record_streamed()
        seq = frame.seq
        next_at = loop.time() + 1.0 / settings.max_fps


async def telemetry(request: web.Request) -> web.StreamResponse:
    agent = request.app[AGENT]
    ws = await _open_socket(request)

    async def send_samples() -> None:
        ts = 0.0
        while not ws.closed:
            sample = await agent.telemetry.wait_newer(ts)
            await ws.send_str(json.dumps(sample, separators=(",", ":")))
            ts = sample["ts"]

    await _serve_socket(ws, send_samples(), None)
    return ws


def build_app(agent: Agent) -> web.Application:
    app = web.Application(middlewares=[json_errors], client_max_size=64 * 1024, handler_args={"max_line_size": 65536})
    app[AGENT] = agent
    app.router.add_get("/v1/info", info)
    app.router.add_get("/v1/health", health)
    app.router.add_get("/v1/time", clock)
    app.router.add_get("/v1/frame", latest_frame)
    app.router.add_get("/v1/telemetry/history", telemetry_history)
    app.router.add_get("/v1/stream", stream)
    app.router.add_get("/v1/telemetry", telemetry)
    return app
