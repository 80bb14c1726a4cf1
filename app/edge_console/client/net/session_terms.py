"""What a device session reports and how it words failures: the listener protocol, the trust states, the errors
a session raises, and `describe_error` (an exception in the words an engineer on site needs). No Qt here."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from typing import Protocol

import aiohttp

from edge_console.client.net.device_answers import UnreadableAnswer
from edge_console.core.protocol import ProtocolError, StreamHeader


class DeviceRefused(aiohttp.ClientError):
    """The device answered but refused a channel (HTTP 503, e.g. "too many clients (limit 32)"): it is there."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotAnAgent(ProtocolError):
    """Something answers at the address, but not an edge agent (a web server, a router's login page)."""


class StreamFrame(Protocol):
    """One stream message as the session's decoder made it (the GUI's decoder adds the paintable picture). The
    session hands it from the decoder to `SessionListener.on_frame` untouched; what the client keeps of a frame
    (`frame_ring.ReceivedFrame`) is these."""

    @property
    def header(self) -> StreamHeader: ...
    @property
    def message(self) -> bytes: ...  # the stream message as received: header + JPEG
    @property
    def received_at(self) -> float: ...  # console clock, s since the epoch


class SessionListener(Protocol):
    """What a session reports; every call happens on the network loop thread."""

    def on_info(self, info: dict) -> None: ...
    def on_connection(self, connected: bool, reason: str) -> None: ...
    def on_health(self, health: dict) -> None: ...
    def on_telemetry(self, samples: list[dict], from_history: bool) -> None: ...
    def on_clock(self, offset_s: float, round_trip_s: float) -> None: ...
    def on_stream_state(self, live: bool, reason: str) -> None: ...
    def on_frame(self, frame: StreamFrame) -> None: ...
    def on_error(self, message: str) -> None: ...
    def on_trust(self, trust: str, detail: str) -> None: ...  # see TRUST_STATES


Decoder = Callable[[bytes, float], StreamFrame]  # (message, received_at) -> frame
# What the console may do with a device, as the session found out on (re)connecting.
TRUST_STATES = ("viewer", "operator", "admin", "not paired", "certificate changed", "no longer paired",
                "insecure lab mode", "plain http")


class TrustProblem(Exception):
    """The device is there but may not (or must not) be talked to: not paired, certificate changed, revoked."""

    def __init__(self, trust: str, detail: str) -> None:
        super().__init__(detail)
        self.trust = trust


def describe_error(exc: BaseException) -> str:
    """An exception in the words an engineer on site needs."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, socket.gaierror):  # its errno is a resolver code: os.strerror has no text for it
            return (f"unreachable: the name {exc.host!r} does not resolve (DNS: {exc.os_error.strerror or 'unknown'}); "
                    "check the spelling, or use the device's IP address")
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "unreachable: connection refused (the host answers, but nothing listens on that port)"
        errno = getattr(exc.os_error, "errno", None)
        return f"unreachable: {os.strerror(errno) if errno and errno > 0 else exc.os_error}"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "no answer in time"
    if isinstance(exc, DeviceRefused):
        return f"the device refused: {exc.reason}"
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return f"refused the WebSocket (HTTP {exc.status})"
    if isinstance(exc, NotAnAgent | UnreadableAnswer):
        return str(exc)
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status} {exc.message}"
    if isinstance(exc, ProtocolError):
        return f"bad data: {exc}"
    if isinstance(exc, aiohttp.ClientError | OSError):
        return f"connection lost ({exc.__class__.__name__}: {exc})" if str(exc) else "connection lost"
    return f"{exc.__class__.__name__}: {exc}"
