"""TLS handshakes, counted and timed before they cost memory.

asyncio's `create_server(ssl=...)` builds its TLS layer (a read buffer, an OpenSSL connection: ~100 kB) for every
socket it accepts and gives it 60 s to finish the handshake, before aiohttp's server, and so the ConnectionGuard,
hears of it: 4,200 connections that never finished took the agent to 4,096 descriptors and ~960 MB. Instead the
agent listens in plain TCP (connections.GuardedServer hands each accepted socket to a `TlsHandshake`) and:
- a socket costs a few hundred bytes until its client sends its first bytes; only then is the TLS layer built
  (asyncio's own SSLProtocol, exactly as create_server builds it) and given those bytes;
- at most `max_pending` handshakes are in progress, `per_source` from one address (IPv6: one /64); a newcomer over
  either limit closes the oldest pending handshake of its own address, or of the address holding the most: a
  flood pushes out its own, and a console's handshake (milliseconds) is not where the room is taken from;
- each has `timeout_s` from accept to its end (asyncio's handshake timeout gets what is left once TLS starts).
Once the handshake completes, asyncio hands the TLS transport to aiohttp's RequestHandler as create_server would.
tests/agent/test_connection_floods.py proves this against a real process.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import ipaddress
import logging
import ssl
import weakref
from collections.abc import Callable

log = logging.getLogger(__name__)

MAX_HANDSHAKES = 64  # a site's consoles open a few connections at a time, each handshake done in milliseconds
HANDSHAKES_PER_SOURCE = 16
HANDSHAKE_TIMEOUT_S = 5.0  # from accept: several round trips of a slow site link, far below asyncio's 60 s
SHUTDOWN_TIMEOUT_S = 5.0  # a closing peer that never answers our close_notify holds its socket no longer
# asyncio's TLS layer reads into a buffer of max_size (256 KiB) allocated per connection: 200 idle connections would
# cost 54 MB of a small device's memory. Smaller reads cost CPU on a large upload, so an upload's connection reads
# 256 KiB at a time while it uploads (updates._uploads._large_tls_reads sets max_size on its connection's layer,
# found with tls_layer_of, then deletes it). max_size is asyncio's own attribute, not a public one: no Python release
# may change it unnoticed (tests/agent/test_tls_read_size.py).
TLS_READ_BUFFER = 64 * 1024


class AgentTLS(asyncio.sslproto.SSLProtocol):
    """asyncio's TLS layer with the agent's smaller read buffer, findable from the protocol it serves."""

    max_size = TLS_READ_BUFFER

    def __init__(self, loop: asyncio.AbstractEventLoop, app_protocol: asyncio.BaseProtocol, *args, **kwargs) -> None:
        super().__init__(loop, app_protocol, *args, **kwargs)
        self.served = app_protocol
        _TLS_LAYERS[app_protocol] = self

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.served is not None:
            _TLS_LAYERS.pop(self.served, None)
            self.served = None
        super().connection_lost(exc)


# Each connection's TLS layer by the protocol it serves (aiohttp's RequestHandler: a request's `protocol`), since
# asyncio offers no public way from a TLS transport to its layer. An entry goes when its connection is lost; weak
# values besides, so the table can never be what keeps a layer's buffers alive.
_TLS_LAYERS: weakref.WeakValueDictionary[asyncio.BaseProtocol, AgentTLS] = weakref.WeakValueDictionary()


def tls_layer_of(protocol: asyncio.BaseProtocol | None) -> AgentTLS | None:
    """The TLS layer under the connection `protocol` serves; None in plain TCP (the insecure lab mode)."""
    return _TLS_LAYERS.get(protocol) if protocol is not None else None


def source_of(peername) -> str:
    """Whom a connection is counted against: its IPv4 address, or the /64 of an IPv6 one (one host's share)."""
    host = str(peername[0]) if isinstance(peername, tuple) and peername else "?"
    if ":" in host:
        try:
            return str(ipaddress.IPv6Network((host.split("%")[0], 64), strict=False))
        except ValueError:
            pass
    return host


class HandshakeGate:
    """The handshakes in progress, oldest first, by source."""

    def __init__(self, max_pending: int = MAX_HANDSHAKES, per_source: int = HANDSHAKES_PER_SOURCE,
                 timeout_s: float = HANDSHAKE_TIMEOUT_S) -> None:
        self.max_pending = max_pending
        self.per_source = per_source
        self.timeout_s = timeout_s
        self._pending: dict[TlsHandshake, None] = {}  # insertion order: oldest first
        self._by_source: dict[str, dict[TlsHandshake, None]] = {}
        self.admitted = 0
        self.evicted = 0
        self.timed_out = 0

    def __len__(self) -> int:
        return len(self._pending)

    def admit(self, handshake: TlsHandshake) -> None:
        mine = self._by_source.get(handshake.source, {})
        if len(mine) >= self.per_source:
            self._evict(next(iter(mine)), "%d TLS handshakes in progress from %s (limit %d): closing its oldest",
                        len(mine), handshake.source, self.per_source)
        elif len(self._pending) >= self.max_pending:
            biggest = max(self._by_source.values(), key=len)
            self._evict(next(iter(biggest)), "%d TLS handshakes in progress (limit %d): closing the oldest of %s",
                        len(self._pending), self.max_pending, next(iter(biggest)).source)
        self._pending[handshake] = None
        self._by_source.setdefault(handshake.source, {})[handshake] = None  # (an eviction may have emptied it)
        self.admitted += 1

    def _evict(self, handshake: TlsHandshake, message: str, *args) -> None:
        self.evicted += 1
        log.warning(message, *args)  # one format string per case: log_limits keeps a flood to a few lines
        self.finished(handshake)
        handshake.abort()

    def finished(self, handshake: TlsHandshake) -> None:
        if handshake not in self._pending:
            return
        del self._pending[handshake]
        mine = self._by_source[handshake.source]
        del mine[handshake]
        if not mine:
            del self._by_source[handshake.source]

    def close_all(self) -> None:
        for handshake in list(self._pending):
            self.finished(handshake)
            handshake.abort()


class TlsHandshake(asyncio.Protocol):
    """One accepted socket until its TLS handshake ends: counted by the gate, timed, and cheap until its client
    speaks. `make_protocol` builds what serves the connection once it is TLS (aiohttp's RequestHandler)."""

    __slots__ = ("_gate", "_make_protocol", "_context", "_loop", "_transport", "_timer", "_started", "source")

    def __init__(self, gate: HandshakeGate, make_protocol: Callable[[], asyncio.Protocol],
                 context: ssl.SSLContext, loop: asyncio.AbstractEventLoop) -> None:
        self._gate = gate
        self._make_protocol = make_protocol
        self._context = context
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._started = 0.0
        self.source = "?"

    def connection_made(self, transport) -> None:
        self._transport = transport
        self.source = source_of(transport.get_extra_info("peername"))
        self._started = self._loop.time()
        self._timer = self._loop.call_later(self._gate.timeout_s, self._expire)
        self._gate.admit(self)

    def data_received(self, data: bytes) -> None:
        """The client's first bytes (the start of its hello): build the TLS layer now and give them to it."""
        self._cancel_timer()
        left = self._started + self._gate.timeout_s - self._loop.time()
        waiter = self._loop.create_future()
        tls = AgentTLS(self._loop, self._make_protocol(), self._context, waiter, server_side=True,
                       ssl_handshake_timeout=max(left, 0.1), ssl_shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        waiter.add_done_callback(self._ended)
        transport = self._transport
        transport.set_protocol(tls)  # from now on the socket's bytes go to the TLS layer
        tls.connection_made(transport)
        view = memoryview(data)
        while view and not transport.is_closing():
            buffer = tls.get_buffer(len(view))
            n = min(len(buffer), len(view))
            buffer[:n] = view[:n]
            tls.buffer_updated(n)
            view = view[n:]

    def _ended(self, waiter: asyncio.Future) -> None:
        """The handshake completed, failed, timed out or lost its connection: it no longer counts here."""
        if not waiter.cancelled():
            waiter.exception()  # retrieved: a failed handshake is the client's business, not a log line
        self._gate.finished(self)
        self._transport = None

    def eof_received(self) -> bool:
        return False  # closed before saying anything: close our side too

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_timer()
        self._gate.finished(self)
        self._transport = None

    def _expire(self) -> None:
        self._timer = None
        self._gate.timed_out += 1
        self._gate.finished(self)
        self.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def abort(self) -> None:
        self._cancel_timer()
        if self._transport is not None:
            self._transport.abort()
