"""Connection-level defences of the agent's HTTP server: caps, deadlines, and JSON for malformed requests.

aiohttp's server waits forever for a request head or body that never completes (a slowloris client holds a
descriptor per connection until the agent runs out of them), keeps idle keep-alive connections for an hour, and
answers a request it cannot parse with text/plain that echoes the offending bytes. Here:
- TLS handshakes are counted and timed before they cost memory (tls_gate.py);
- at most `max_connections` connections, of which at most `max_unpaired` from consoles that are not paired (no
  paired client certificate: they can only ask /v1/info and pair). A newcomer that finds no room closes an unpaired
  connection first, even one inside a request (the nearest its deadline, of the address holding the most), then,
  for a paired console only, a paired connection waiting for its next request; if every connection is a paired
  console's request in progress, the newcomer is closed at once. Unpaired connections never push out paired ones;
- a connection has `header_timeout_s` to deliver each request head and may sit idle `idle_timeout_s` between
  requests. A request from an unpaired console, or on an open route (/v1/info, pairing), must be read and answered
  within `open_request_timeout_s`, its body included: a body that never arrives cannot hold a slot. A paired
  console's request in progress (a stream, telemetry, a long poll, an upload with its own read timeout) has none;
- the caps fit inside the process's descriptor limit (RLIMIT_NOFILE, read at start), with room for its own files;
- when a flood of connections has passed, the heap memory it took is handed back to the system (glibc);
- a malformed request gets a JSON 400 that names no bytes of it.
This uses aiohttp's `Server` and `RequestHandler` through subclasses (their constructor and `handle_error` hook);
tests/agent/test_hostile_clients.py and test_connection_floods.py prove each defence against a real process.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web import RequestHandler  # aiohttp's public name for it

from edge_console.agent.api.access import ACCESS, OPEN
from edge_console.agent.api.json_answers import json_error
from edge_console.agent.api.tls_gate import (
    HANDSHAKE_TIMEOUT_S,
    HANDSHAKES_PER_SOURCE,
    MAX_HANDSHAKES,
    HandshakeGate,
    TlsHandshake,
    source_of,
)

try:
    import resource
except ImportError:  # Windows (the console's demo fleet): no descriptor limit to fit
    resource = None

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 256  # a device serves a few consoles
MAX_UNPAIRED = 32  # consoles asking /v1/info or pairing: short requests
HEADER_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 30.0
OPEN_REQUEST_TIMEOUT_S = 10.0
OWN_DESCRIPTORS = 128  # kept for the agent's own files: models, SQLite, uploads, mDNS, threads
BACKLOG = 128  # the listening socket's, and how many asyncio accepts per wake-up
ACCEPT_BURSTS = 3  # wake-ups whose sockets may be open before the first of them is counted
TRIM_AFTER_ARRIVALS = 256  # connections since memory was last handed back that make a flood
QUIET_ARRIVALS = 16  # fewer new connections than this in a second, and as few pending or unpaired: it has passed


@dataclass(slots=True)
class _Connection:
    deadline: float | None  # None: a paired console's request is being served
    paired: bool
    source: str


class ConnectionGuard:
    """Which connections may stay open: a class (paired or not) and a deadline for each one."""

    def __init__(self, max_connections: int = MAX_CONNECTIONS, header_timeout_s: float = HEADER_TIMEOUT_S,
                 idle_timeout_s: float = IDLE_TIMEOUT_S, max_unpaired: int = MAX_UNPAIRED,
                 open_request_timeout_s: float = OPEN_REQUEST_TIMEOUT_S, max_handshakes: int = MAX_HANDSHAKES,
                 handshakes_per_source: int = HANDSHAKES_PER_SOURCE,
                 handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S) -> None:
        self.max_connections = max_connections
        self.max_unpaired = min(max_unpaired, max(max_connections // 4, 1))  # paired consoles keep the most
        self.header_timeout_s = header_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.open_request_timeout_s = open_request_timeout_s
        self.handshakes = HandshakeGate(max_handshakes, handshakes_per_source, handshake_timeout_s)
        # Is this (TLS) connection a paired console's? None: every connection counts as paired (insecure lab mode,
        # where nothing is authenticated and every route is open anyway).
        self.is_paired: Callable[[asyncio.BaseTransport], bool] | None = None
        self.backlog = BACKLOG  # for the listening sockets
        self._connections: dict[RequestHandler, _Connection] = {}
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0
        self._arrived = 0  # connections (and TLS handshakes) since the reaper's last pass
        self._handshakes_seen = 0
        self._since_trim = 0  # arrivals since memory was last handed back
        self._was_quiet = False

    @classmethod
    def within_descriptor_limit(cls, soft_limit: int | None = None, **kwargs) -> ConnectionGuard:
        """The default caps, made smaller where the process may not open that many descriptors (a unit with a low
        LimitNOFILE): sockets never take the descriptors the agent's own work needs."""
        if soft_limit is None:
            soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0] if resource is not None else -1
        budget = soft_limit - OWN_DESCRIPTORS if 0 < soft_limit < 1 << 40 else 1 << 20  # else: no limit
        connections = kwargs.pop("max_connections", MAX_CONNECTIONS)
        handshakes = kwargs.pop("max_handshakes", MAX_HANDSHAKES)
        backlog = BACKLOG
        # asyncio accepts up to a backlog of sockets per wake-up, and may do so a few times before the first of them
        # is counted (each becomes a task): those descriptors must fit too.
        need = connections + handshakes + ACCEPT_BURSTS * backlog
        if need > budget:
            scale = max(budget, 0) / need
            connections, handshakes = max(int(connections * scale), 16), max(int(handshakes * scale), 4)
            backlog = max(int(backlog * scale), 8)
            log.warning("only %d descriptors allowed (RLIMIT_NOFILE): at most %d connections and %d TLS handshakes "
                        "at once; raise LimitNOFILE to serve more", soft_limit, connections, handshakes)
        guard = cls(max_connections=connections, max_handshakes=handshakes, **kwargs)
        guard.backlog = backlog
        return guard

    def __len__(self) -> int:
        return len(self._connections)

    @property
    def unpaired(self) -> int:
        return sum(not c.paired for c in self._connections.values())

    def opened(self, handler: RequestHandler, paired: bool = True, source: str = "?") -> bool:
        self._arrived += 1
        if not paired and self.unpaired >= self.max_unpaired:
            self._make_room(self._victim(paired_newcomer=False), "unpaired")
        if len(self._connections) >= self.max_connections:
            victim = self._victim(paired_newcomer=paired)
            if victim is None:
                self.refused += 1
                log.warning("refusing a connection: %d requests in progress (limit %d)", len(self._connections),
                            self.max_connections)
                return False
            self._make_room(victim, "all")
        self._connections[handler] = _Connection(time.monotonic() + self.header_timeout_s, paired, source)
        return True

    def _victim(self, paired_newcomer: bool) -> RequestHandler | None:
        unpaired = [(h, c) for h, c in self._connections.items() if not c.paired]
        if unpaired:  # the nearest its deadline of the address holding the most: a flood pushes out its own
            per_source = Counter(c.source for _, c in unpaired)
            most = max(per_source.values())
            return min(((h, c) for h, c in unpaired if per_source[c.source] == most),
                       key=lambda pair: pair[1].deadline or 0.0)[0]
        if not paired_newcomer:
            return None
        waiting = [(c.deadline, h) for h, c in self._connections.items() if c.deadline is not None]
        return min(waiting, key=lambda pair: pair[0])[1] if waiting else None

    def _make_room(self, victim: RequestHandler | None, which: str) -> None:
        if victim is None:
            return
        self.evicted += 1
        if which == "unpaired":
            log.warning("at the limit of connections from unpaired consoles (%d): closing the one nearest its "
                        "deadline", self.max_unpaired)
        else:
            log.warning("at the connection limit (%d): closing an unpaired or waiting connection",
                        self.max_connections)
        self._close(victim)

    def _close(self, handler: RequestHandler) -> None:
        self.closed(handler)
        transport = handler.transport
        if transport is not None:
            transport.abort()

    def closed(self, handler: RequestHandler) -> None:
        self._connections.pop(handler, None)

    def request_started(self, handler: RequestHandler, open_route: bool = False) -> None:
        if (connection := self._connections.get(handler)) is not None:
            limited = open_route or not connection.paired
            connection.deadline = time.monotonic() + self.open_request_timeout_s if limited else None

    def request_finished(self, handler: RequestHandler) -> None:
        if (connection := self._connections.get(handler)) is not None:
            # The next request head must arrive and complete within the idle time: a slowloris on a kept-alive
            # connection gains nothing over one on a new connection.
            connection.deadline = time.monotonic() + self.idle_timeout_s

    def expired(self) -> list[RequestHandler]:
        now = time.monotonic()
        return [h for h, c in self._connections.items() if c.deadline is not None and c.deadline < now]

    async def reap(self) -> None:
        """One pass: close the connections past their deadline (run every second by the agent's loops), and once
        a flood has passed, give its memory back."""
        for handler in self.expired():
            self.timed_out += 1
            self._close(handler)
        arrived = self._arrived + self.handshakes.admitted - self._handshakes_seen
        self._arrived, self._handshakes_seen = 0, self.handshakes.admitted
        self._since_trim += arrived
        quiet = arrived < QUIET_ARRIVALS and len(self.handshakes) + self.unpaired <= QUIET_ARRIVALS
        if quiet and self._was_quiet and self._since_trim >= TRIM_AFTER_ARRIVALS:
            # quiet for a whole second: what the last pass closed has been freed too
            self._since_trim = 0
            await asyncio.to_thread(release_free_memory)  # glibc walks its heap: not on the event loop
        self._was_quiet = quiet


def release_free_memory() -> None:
    """Hand freed heap memory back to the system. glibc keeps what thousands of short-lived connections freed in its
    arenas for ever; elsewhere (musl, macOS) this does nothing."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def _find_malloc_trim():
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_malloc_trim = _find_malloc_trim()


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
        resp = json_error(status, kind, detail)
        resp.force_close()
        return resp


class GuardedServer(web.Server):
    """aiohttp's Server whose connections are counted and timed by a ConnectionGuard. With a TLS context it is
    served in plain TCP and does the TLS itself, each socket through the guard's HandshakeGate (tls_gate.py)."""

    def __init__(self, *args, guard: ConnectionGuard, tls: ssl.SSLContext | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard
        self.tls = tls

    def __call__(self) -> asyncio.Protocol:
        if self.tls is not None:
            return TlsHandshake(self.guard.handshakes, self._request_handler, self.tls, self._loop)
        return self._request_handler()

    def _request_handler(self) -> RequestHandler:
        return _AgentRequestHandler(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        guard = self.guard
        paired = guard.is_paired is None or guard.is_paired(transport)
        if not guard.opened(handler, paired, source_of(transport.get_extra_info("peername"))):
            transport.abort()

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        self.guard.closed(handler)
        super().connection_lost(handler, exc)

    def pre_shutdown(self) -> None:
        self.guard.handshakes.close_all()
        super().pre_shutdown()


class GuardedAppRunner(web.AppRunner):
    """An AppRunner whose server is a GuardedServer (same application start-up as aiohttp's own). With `tls`, sites
    are made without an ssl_context: the server does TLS itself."""

    def __init__(self, app: web.Application, guard: ConnectionGuard, tls: ssl.SSLContext | None = None,
                 **kwargs) -> None:
        super().__init__(app, **kwargs)
        self.guard = guard
        self.tls = tls

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # runs the application's start-up and cleanup_ctx
        return GuardedServer(plain.request_handler, request_factory=plain.request_factory,
                             handler_cancellation=plain.handler_cancellation, loop=plain._loop,
                             guard=self.guard, tls=self.tls, **plain._kwargs)


@web.middleware
async def track_requests(request: web.Request, handler):
    """Tell the guard a request is in progress (a deadline when it is open to anyone) and when it is done."""
    guard: ConnectionGuard | None = request.app.get(GUARD)
    if guard is None or request.protocol is None:
        return await handler(request)
    access = request.app.get(ACCESS)
    open_route = access is not None and access.role_needed(request.match_info.route) == OPEN
    guard.request_started(request.protocol, open_route)
    try:
        return await handler(request)
    finally:
        guard.request_finished(request.protocol)


GUARD = web.AppKey("connection_guard", ConnectionGuard)
