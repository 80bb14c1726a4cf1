"""Every long-lived socket the agent serves (stream, telemetry, update events), in one registry: counted against
one cap, limited per console, closed together when a console's pairing is revoked or the agent stops.

A device serves a handful of consoles. MAX_SOCKETS bounds what they can hold in all, and MAX_PER_CONSOLE what one
console can: a console opens a stream, a telemetry socket and an events socket per device it watches, so one
console (or one stolen pairing) can never take every slot from the others. In insecure lab mode there are no
consoles to tell apart, and only the total applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from aiohttp import web

from edge_console.agent.api.access import CALLER_PAIRING
from edge_console.agent.api.json_answers import json_error

log = logging.getLogger(__name__)
MAX_SOCKETS = 32
MAX_PER_CONSOLE = 8
MAX_CLIENT_MESSAGE = 4096  # control messages are tiny; anything bigger closes the socket (1009)
HEARTBEAT_S = 20.0  # a client that stops reading entirely is dropped after ~1.5x this


@dataclass(frozen=True)
class _Holder:
    console: str | None  # the paired console's certificate fingerprint; None in lab mode
    kind: str  # "stream", "telemetry", "update events": for logs


class SocketRegistry:
    def __init__(self, max_sockets: int = MAX_SOCKETS, max_per_console: int = MAX_PER_CONSOLE) -> None:
        self.max_sockets = max_sockets
        self.max_per_console = max_per_console
        self._open: dict[web.WebSocketResponse, _Holder] = {}

    def __len__(self) -> int:
        return len(self._open)

    def refusal(self, console: str | None) -> str | None:
        """Why one more socket for `console` is refused, or None when it may open one."""
        if len(self._open) >= self.max_sockets:
            return (f"too many clients (limit {self.max_sockets}): this device serves a handful of consoles at "
                    "once; close a preview elsewhere or retry")
        if console is not None and sum(h.console == console for h in self._open.values()) >= self.max_per_console:
            return (f"this console already holds {self.max_per_console} sockets on this device (its limit); close "
                    "a preview or a follow-up of an update, or retry")
        return None

    def add(self, ws: web.WebSocketResponse, console: str | None, kind: str) -> None:
        self._open[ws] = _Holder(console, kind)

    def remove(self, ws: web.WebSocketResponse) -> None:
        self._open.pop(ws, None)

    async def close_revoked(self, paired: set[str]) -> int:
        """Close the sockets of consoles no longer in `paired` (fingerprints): the camera feed and the update
        events are what a revoked console must stop receiving at once, not at its next request."""
        revoked = [ws for ws, h in list(self._open.items()) if h.console is not None and h.console not in paired]
        if revoked:
            log.warning("closing %d socket(s) of a console whose pairing was revoked", len(revoked))
            await asyncio.gather(*(ws.close(code=4401, message=b"pairing revoked") for ws in revoked),
                                 return_exceptions=True)
        return len(revoked)

    async def close_all(self, timeout: float = 2.0) -> None:
        closing = [ws.close(code=1001, message=b"agent shutting down") for ws in list(self._open)]
        if closing:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), timeout=timeout)


async def open_socket(request: web.Request, registry: SocketRegistry, kind: str) -> web.WebSocketResponse | web.Response:
    """Accept a long-lived socket, counted in `registry`; the caller removes it when done. A JSON 503 that says
    why when the device, or this console, has no slot left."""
    pairing = request.get(CALLER_PAIRING)
    console = pairing.fingerprint if pairing is not None else None
    refusal = registry.refusal(console)
    if refusal is not None:
        return json_error(503, refusal.split(":")[0], refusal)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_CLIENT_MESSAGE)
    registry.add(ws, console, kind)  # before prepare: a console cannot slip past its limit by racing
    try:
        await ws.prepare(request)
    except BaseException:
        registry.remove(ws)
        raise
    return ws
