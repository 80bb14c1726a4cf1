"""The agent's HTTP/WebSocket API under /v1 (aiohttp). See edge_console.core.protocol for the wire formats.

Every client is untrusted: sizes and depths are bounded, a misbehaving client costs one log line and its
connection, never a traceback flood or the service of other clients (see also connections.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import socket
import time

import cv2
from aiohttp import WSMsgType, web
from aiohttp.http import HttpVersion10

from edge_console.agent.api.access import ACCESS, CALLER_ROLE, OPEN, Access, add_routes, authorize, checked_route_ids
from edge_console.agent.api.connections import GUARD, ConnectionGuard, track_requests
from edge_console.agent.api.control_messages import ControlMessageError, parse_control_message
from edge_console.agent.api.json_answers import json_error
from edge_console.agent.api.pairing_routes import add_pairing_routes
from edge_console.agent.api.socket_registry import open_socket
from edge_console.agent.api.update_routes import install_update_routes
from edge_console.agent.history import MAX_PAGE
from edge_console.agent.runtime import Agent
from edge_console.agent.updates import add_upload_routes
from edge_console.core.protocol import FRAME_CONTENT_TYPE, StreamHeader, encode_frame_message, header_bytes

log = logging.getLogger(__name__)
AGENT = web.AppKey("agent", Agent)
FRAME_SLOTS = web.AppKey("frame_slots", asyncio.Semaphore)
SEND_TIMEOUT_S = 10.0  # one stream message not taken by the client in this long: it is gone, close it
FRAME_WAIT_S = 5.0  # /v1/frame?after=N waits this long for a newer frame (a long poll, not a download loop)
MAX_FRAME_RESPONSES = 4  # lossless frames (~1 MB each) being sent at once; more clients are told to retry
FRAME_WRITE_TIMEOUT_S = 10.0  # a client that does not take its frame in this long loses the connection
FRAME_WRITE_PIECE = 64 * 1024


@web.middleware
async def json_errors(request: web.Request, handler):
    """Every failure leaves as JSON with a 4xx/5xx, never as an HTML page or a dropped connection."""
    if request.version < HttpVersion10:
        return json_error(400, "bad request", "HTTP/0.9 is not supported; use HTTP/1.1")
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        return json_error(exc.status, exc.reason, exc.text or "")
    except asyncio.CancelledError:
        raise
    except ConnectionError as exc:  # the client went away mid-answer: nothing to report but the fact
        log.info("%s: client %s went away (%s)", request.path, request.remote, type(exc).__name__)
        return json_error(500, "connection lost")
    except Exception as exc:
        log.exception("unhandled error in %s", request.path)
        return json_error(500, "internal error", type(exc).__name__)


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
                except (TypeError, ValueError, OverflowError):
                    raise ValueError(f"{key} must be a number, got {values[key]!r:.40}") from None
                if not (lo <= value <= hi) or (isinstance(value, float) and not math.isfinite(value)):
                    raise ValueError(f"{key}={value} is out of range {lo}..{hi}")
                if key == "max_width" and 0 < value < 32:
                    raise ValueError("max_width must be 0 (full size) or at least 32")
                new[key] = value
        for key, value in new.items():  # all or nothing
            setattr(self, key, value)


async def info(request: web.Request) -> web.Response:
    """Everything for a paired console; who the device is and how to pair, for anyone else."""
    agent = request.app[AGENT]
    role = request.get(CALLER_ROLE)
    body = agent.info() if role else agent.public_info()
    return web.json_response({**body, "caller_role": role})


async def restart_pipeline(request: web.Request) -> web.Response:
    """Operator: open the camera again (a stream that froze, a camera re-plugged), keeping the model."""
    request.app[AGENT].capture.reopen()
    log.warning("pipeline restart requested by %s", request.remote)
    return web.json_response({"restarting": "source"})


async def health(request: web.Request) -> web.Response:
    h = request.app[AGENT].health()
    return web.json_response(h.to_dict(), status=503 if h.status == "failing" else 200)


async def clock(request: web.Request) -> web.Response:
    return web.json_response({"time": time.time()})


async def telemetry_history(request: web.Request) -> web.Response:
    """`?since=T` pages forward from T (oldest first); without it, `?limit=N` gives the newest N samples."""
    agent = request.app[AGENT]
    try:
        since = float(request.query["since"]) if "since" in request.query else None
        limit = int(request.query.get("limit", str(MAX_PAGE)))
        if (since is not None and not math.isfinite(since)) or not 1 <= limit <= 10 * MAX_PAGE:
            raise ValueError
    except ValueError:
        return json_error(400, "bad query", f"since must be epoch seconds and limit an integer 1..{MAX_PAGE}")
    samples, more = await agent.history.since(since, limit)
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


async def _frame_to_send(request: web.Request, agent: Agent):
    """The frame to answer with, waiting (long poll) when `?after=N` asks for a newer one; or an error response."""
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
    return frame


async def _write_in_pieces(response: web.StreamResponse, body: bytes) -> None:
    """Over TLS, one write of the whole megabyte is encrypted at once into the connection's memory buffer, which
    keeps that capacity for as long as the connection lives; pieces waited for one by one keep it small, and a
    client that stops reading holds one piece, not a frame."""
    view = memoryview(body)
    for start in range(0, len(view), FRAME_WRITE_PIECE):
        await response.write(view[start:start + FRAME_WRITE_PIECE])


async def latest_frame(request: web.Request) -> web.StreamResponse:
    """The exact pixels of the newest inferred frame (lossless) with the detections made on them.

    `?after=N` waits (up to FRAME_WAIT_S) for a frame newer than #N, so a client wanting the next frame makes one
    request instead of downloading the same frame again and again. At most MAX_FRAME_RESPONSES are sent at once,
    each with a write deadline: clients that never read cannot pin a megabyte each."""
    agent = request.app[AGENT]
    fmt = request.query.get("format", "framed")
    if fmt not in _FRAME_FORMATS:
        return json_error(400, "bad query", "format must be 'framed' (header + BMP), 'framed-png' or 'png'")
    frame = await _frame_to_send(request, agent)
    if isinstance(frame, web.Response):
        return frame
    slots = request.app[FRAME_SLOTS]
    if slots.locked():
        return json_error(503, "busy", f"{MAX_FRAME_RESPONSES} lossless frames are being sent already; ask again "
                                       "in a moment")
    async with slots:
        ext = _FRAME_FORMATS[fmt]
        if ext == ".bmp":
            image = _encode_lossless(frame, ext)  # a memory copy: cheaper than the hop to a worker thread
        else:
            image = await asyncio.get_running_loop().run_in_executor(agent.encode_pool, _encode_lossless, frame, ext)
        if fmt == "png":
            body, content_type, headers = image, "image/png", {"X-Edge-Seq": str(frame.seq)}
        else:
            h, w = frame.image.shape[:2]
            header = StreamHeader(frame.seq, frame.capture_ts, frame.model_version, w, h, frame.timings,
                                  frame.detections)
            body, content_type, headers = encode_frame_message(header_bytes(header), image), FRAME_CONTENT_TYPE, {}
        response = web.StreamResponse(headers=headers)
        response.content_type = content_type
        response.content_length = len(body)
        await response.prepare(request)
        try:
            await asyncio.wait_for(_write_in_pieces(response, body), FRAME_WRITE_TIMEOUT_S)
            await response.write_eof()
        except TimeoutError:
            log.info("/v1/frame: client %s did not take its frame in %g s; closed", request.remote,
                     FRAME_WRITE_TIMEOUT_S)
            if request.transport is not None:
                request.transport.abort()
        return response


async def _serve_control(ws: web.WebSocketResponse, settings: StreamSettings | None) -> None:
    """Read client messages until it leaves: configure, ping; anything else gets an error reply, never a crash."""
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            await ws.send_json({"type": "error", "error": "only JSON text messages are accepted"})
            continue
        try:
            data = parse_control_message(msg.data)
            kind = data.get("type")
            if kind == "ping":
                await ws.send_json({"type": "pong", "t0": data.get("t0"), "server_time": time.time()})
            elif kind == "configure" and settings is not None:
                settings.update(data)
                await ws.send_json({"type": "configured", "max_fps": settings.max_fps, "quality": settings.quality,
                                    "max_width": settings.max_width})
            else:
                raise ValueError(f"unknown message type {kind!r:.40}; expected 'ping'"
                                 + (" or 'configure'" if settings else ""))
        except (ValueError, ControlMessageError) as exc:
            await ws.send_json({"type": "error", "error": str(exc)[:300]})


async def _serve_socket(request: web.Request, sending_factory, settings: StreamSettings | None, kind: str):
    """Open the socket, send from one task while reading control messages here; both end when the client leaves.
    A client that misbehaves or vanishes costs one log line, never a traceback."""
    agent = request.app[AGENT]
    ws = await open_socket(request, agent.sockets, kind)
    if not isinstance(ws, web.WebSocketResponse):
        return ws
    sender = asyncio.create_task(sending_factory(ws))
    try:
        await _serve_control(ws, settings)
    except (ConnectionError, TimeoutError, RuntimeError) as exc:
        log.info("%s: client %s dropped: %s", request.path, request.remote, type(exc).__name__)
    finally:
        agent.sockets.remove(ws)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        if not ws.closed:
            await ws.close()
    return ws


async def stream(request: web.Request) -> web.StreamResponse:
    agent = request.app[AGENT]
    settings = StreamSettings()
    try:
        settings.update(request.query)
    except ValueError as exc:
        return json_error(400, "bad stream settings", str(exc))
    return await _serve_socket(request, lambda ws: _send_frames(ws, request, agent, settings), settings, "stream")


async def _send_frames(ws: web.WebSocketResponse, request: web.Request, agent: Agent,
                       settings: StreamSettings) -> None:
    try:
        await _frame_loop(ws, agent, settings)
    except asyncio.CancelledError:
        raise
    except (ConnectionError, TimeoutError) as exc:
        log.info("stream to %s ended: %s", request.remote, type(exc).__name__ or "timeout")
        await ws.close(code=1001, message=b"client not reading")
    except Exception as exc:  # e.g. an encode failure: tell the client instead of going silent
        log.warning("stream to %s failed: %r", request.remote, exc)
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
        # Waits while the client's socket is full: only this client slows; one that stops reading is closed.
        await asyncio.wait_for(ws.send_bytes(message), SEND_TIMEOUT_S)
        agent.stats.record_streamed()
        seq = frame.seq
        next_at = loop.time() + 1.0 / settings.max_fps


async def telemetry(request: web.Request) -> web.StreamResponse:
    agent = request.app[AGENT]

    async def send_samples(ws: web.WebSocketResponse) -> None:
        ts = 0.0
        while not ws.closed:
            sample = await agent.telemetry.wait_newer(ts)
            await asyncio.wait_for(ws.send_str(json.dumps(sample, separators=(",", ":"))), SEND_TIMEOUT_S)
            ts = sample["ts"]

    return await _serve_socket(request, send_samples, None, "telemetry")


def build_app(agent: Agent, guard: ConnectionGuard | None = None, access: Access | None = None) -> web.Application:
    """The API application; its cleanup_ctx starts and stops the agent's services in order."""
    app = web.Application(middlewares=[track_requests, json_errors, authorize, checked_route_ids], client_max_size=64 * 1024,
                          handler_args={"max_line_size": 8190, "max_field_size": 8190, "max_headers": 64})
    app[AGENT] = agent
    app[FRAME_SLOTS] = asyncio.Semaphore(MAX_FRAME_RESPONSES)
    access = access or agent_access(agent)
    app[ACCESS] = access
    if guard is not None:
        app[GUARD] = guard
    app.on_startup.append(lambda _: _start_loops(agent, guard, access))
    for service in (agent.state_service, agent.pipeline_service, agent.history_service, agent.telemetry_service):
        app.cleanup_ctx.append(service)
    app.on_shutdown.append(agent.on_shutdown)
    add_routes(app, access.roles, ROUTES)
    add_pairing_routes(app, access.roles)
    add_upload_routes(app, agent.uploads, access.roles, agent.audit)
    install_update_routes(app, agent, agent.uploads, access.roles)
    return app


def agent_access(agent: Agent) -> Access:
    host = socket.gethostname().lower()
    names = {"localhost", host, f"{host}.local", f"edge-{agent.id[:12]}.local",
             *(name.lower().strip("[]").rstrip(".") for name in agent.config.allowed_hosts)}
    return Access(agent.id, agent.identity, agent.trust, insecure=agent.config.insecure_lab_mode, host_names=names,
                  audit=agent.audit)


async def _start_loops(agent: Agent, guard: ConnectionGuard | None, access: Access) -> None:
    if guard is not None:
        agent.loops.start("connection reaper", guard.reap, 1.0)

    async def trust_step() -> None:
        if access.sync_trust():
            await _close_revoked_sockets(agent)

    agent.loops.start("trust sync", trust_step, 1.0)


async def _close_revoked_sockets(agent: Agent) -> None:
    """A revoked console is refused from its next request on; its open sockets are closed here at once."""
    await agent.sockets.close_revoked({p.fingerprint for p in agent.trust.pairings()})


# Every route and the role it needs (access.py); a route or method missing here is refused to everyone.
ROUTES = (
    ("GET", "/v1/info", info, OPEN),
    ("GET", "/v1/health", health, "viewer"),
    ("GET", "/v1/time", clock, "viewer"),
    ("GET", "/v1/frame", latest_frame, "viewer"),
    ("GET", "/v1/telemetry/history", telemetry_history, "viewer"),
    ("GET", "/v1/stream", stream, "viewer"),
    ("GET", "/v1/telemetry", telemetry, "viewer"),
    ("POST", "/v1/pipeline/restart", restart_pipeline, "operator"),
)
