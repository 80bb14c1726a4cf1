"""Connection-level defences of the agent's HTTP server: a cap, deadlines, and JSON for malformed requests.

aiohttp's server waits forever for a request head that never completes (a slowloris client holds a descriptor
per connection until the agent runs out of them), keeps idle keep-alive connections for an hour, and answers a
request it cannot parse with text/plain that echoes the offending bytes. Here:
- at most MAX_CONNECTIONS connections: at the cap a new connection pushes out the waiting one nearest its deadline
  (one not inside a request: a real client sends its head at once, so a flood of idle connections
  cannot lock consoles out); if every connection is inside a request, the new one is closed at once;
- a connection has HEADER_TIMEOUT_S to deliver each request head, and may sit idle IDLE_TIMEOUT_S between
  requests; a request in progress (a WebSocket, a long poll) has no such deadline;
- a malformed request gets a JSON 400 that names no bytes of it.
This uses aiohttp's `Server` and `RequestHandler` through subclasses (their constructor and `handle_error` hook);
tests/agent/test_hostile_clients.py proves each defence against a real process.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 256  # a device serves a few consoles; the systemd unit allows 4096 descriptors
HEADER_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 30.0


class ConnectionGuard:
    """Which connections may stay open: a deadline for each one that is not inside a request."""

    def __init__(self, max_connections: int = MAX_CONNECTIONS, header_timeout_s: float = HEADER_TIMEOUT_S,
                 idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self._deadline: dict[RequestHandler, float | None] = {}  # None: a request is being served
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0

    def __len__(self) -> int:
        return len(self._deadline)

    def opened(self, handler: RequestHandler) -> bool:
        if len(self._deadline) >= self.max_connections:
            waiting = [(at, h) for h, at in self._deadline.items() if at is not None]
            if not waiting:
                self.refused += 1
                log.warning("refusing a connection: %d requests in progress (limit %d)", len(self._deadline),
                            self.max_connections)
                return False
            _, oldest = min(waiting, key=lambda pair: pair[0])
            self.evicted += 1
            log.warning("at the connection limit (%d): closing the waiting connection nearest its deadline", self.max_connections)
            self._close(oldest)
        self._deadline[handler] = time.monotonic() + self.header_timeout_s
        return True

    def _close(self, handler: RequestHandler) -> None:
        self._deadline.pop(handler, None)
        transport = handler.transport
        if transport is not None:
            transport.abort()

    def closed(self, handler: RequestHandler) -> None:
        self._deadline.pop(handler, None)

    def request_started(self, handler: RequestHandler) -> None:
        if handler in self._deadline:
            self._deadline[handler] = None

    def request_finished(self, handler: RequestHandler) -> None:
        if handler in self._deadline:
            # The next request head must arrive and complete within the idle time: a slowloris on a kept-alive
            # connection gains nothing over one on a new connection.
            self._deadline[handler] = time.monotonic() + self.idle_timeout_s

    def expired(self) -> list[RequestHandler]:
        now = time.monotonic()
        return [h for h, at in self._deadline.items() if at is not None and at < now]

    async def reap(self) -> None:
        """One pass: close the connections past their deadline (run every second by the agent's loops)."""
        for handler in self.expired():
            self.timed_out += 1
            self._close(handler)


class _AgentRequestHandler(RequestHandler):
    __slots__ = ()

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """A request aiohttp could not parse (or a failure outside every handler): JSON, and none of its bytes."""
        peer = request.remote or "?"
        kind = "malformed request" if status == 400 else "internal error"
        log.warning("%s from %s: %s", kind, peer, type(exc).__name__ if exc else status)
        detail = ("the request could not be parsed as HTTP/1.1 (see the API in the README)" if status == 400
                  else "the agent could not answer this request")
        resp = web.json_response({"error": kind, "detail": detail}, status=status)
        resp.force_close()
        return resp


class GuardedServer(web.Server):
    """aiohttp's Server whose connections are counted and timed by a ConnectionGuard."""

    def __init__(self, *args, guard: ConnectionGuard, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard

    def __call__(self) -> RequestHandler:
        return _AgentRequestHandler(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        if not self.guard.opened(handler):
            transport.abort()

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        self.guard.closed(handler)
        super().connection_lost(handler, exc)


class GuardedAppRunner(web.AppRunner):
    """An AppRunner whose server is a GuardedServer (same application start-up as aiohttp's own)."""

    def __init__(self, app: web.Application, guard: ConnectionGuard, **kwargs) -> None:
        super().__init__(app, **kwargs)
        self.guard = guard

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # runs the application's start-up and cleanup_ctx
        return GuardedServer(plain.request_handler, request_factory=plain.request_factory,
                             handler_cancellation=plain.handler_cancellation, loop=plain._loop,
                             guard=self.guard, **plain._kwargs)


@web.middleware
async def track_requests(request: web.Request, handler):
    """Tell the guard a request is in progress (no deadline) and when it is done (idle deadline)."""
    guard: ConnectionGuard | None = request.app.get(GUARD)
    if guard is None or request.protocol is None:
        return await handler(request)
    guard.request_started(request.protocol)
    try:
        return await handler(request)
    finally:
        guard.request_finished(request.protocol)


GUARD = web.AppKey("connection_guard", ConnectionGuard)
