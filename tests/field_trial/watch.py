"""What the console sees of one device, through its own network layer (`DeviceSession` with the console's own
trust: its identity and pins, pinned TLS as the Qt console uses it): connection changes, trust, stream frames,
telemetry (live and history), clock offset. Runs on the console's namespace loop."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import aiohttp

from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.device_session import DeviceSession
from edge_console.core.protocol import decode_frame_message

from .console_side import Console


def _decode(data: bytes, received_at: float):
    header, _image = decode_frame_message(data)
    return header.seq, received_at


@dataclass
class SeenByConsole:
    """Appended on the loop thread, read from the harness thread (lists of tuples: appends are atomic)."""

    frames: list[tuple[int, float]] = field(default_factory=list)  # (seq, console time received)
    connection: list[tuple[float, bool, str]] = field(default_factory=list)
    stream: list[tuple[float, bool, str]] = field(default_factory=list)
    telemetry: list[tuple[float, int, bool]] = field(default_factory=list)  # (when, samples, from_history)
    history_samples: list[dict] = field(default_factory=list)
    clock: list[tuple[float, float]] = field(default_factory=list)  # (offset, round trip)
    errors: list[str] = field(default_factory=list)
    trust: list[tuple[float, str, str]] = field(default_factory=list)  # (when, state, detail)
    info: dict = field(default_factory=dict)
    health: dict = field(default_factory=dict)
    changed: threading.Event = field(default_factory=threading.Event)

    def on_info(self, info: dict) -> None:
        self.info = info

    def on_connection(self, connected: bool, reason: str) -> None:
        self.connection.append((time.time(), connected, reason))

    def on_trust(self, trust: str, detail: str) -> None:
        self.trust.append((time.time(), trust, detail))

    def on_health(self, health: dict) -> None:
        self.health = health

    def on_telemetry(self, samples: list[dict], from_history: bool) -> None:
        self.telemetry.append((time.time(), len(samples), from_history))
        if from_history:
            self.history_samples.extend(samples)

    def on_clock(self, offset_s: float, round_trip_s: float) -> None:
        self.clock.append((offset_s, round_trip_s))

    def on_stream_state(self, live: bool, reason: str) -> None:
        self.stream.append((time.time(), live, reason))

    def on_frame(self, frame) -> None:
        self.frames.append(frame)
        self.changed.set()

    def on_error(self, message: str) -> None:
        self.errors.append(message)

    def frames_after(self, t: float) -> list[tuple[int, float]]:
        return [f for f in self.frames if f[1] > t]


class DeviceWatch:
    """A DeviceSession (control channel, and the stream when asked) to one device, pinned TLS."""

    def __init__(self, console: Console, device, stream: bool = True, max_fps: int = 5) -> None:
        self.console = console
        self.device = device
        self.seen = SeenByConsole()
        trust = console.trust()

        async def open_session():
            http = aiohttp.ClientSession()
            session = DeviceSession(http, DeviceAddress(device.addr, device.port), self.seen, _decode, None,
                                    stream_params={"max_fps": max_fps, "quality": 50, "max_width": 160},
                                    trust=trust)
            session.start()
            if stream:
                session.set_stream_wanted(True)
            return http, session

        self._http, self.session = console.loop.call(open_session())

    def wait_frames(self, after: float, count: int = 1, timeout: float = 30.0) -> float | None:
        """Console time of the `count`-th frame received after `after`, or None if none came in time."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.seen.frames_after(after)
            if len(got) >= count:
                return got[count - 1][1]
            self.seen.changed.wait(0.05)
            self.seen.changed.clear()
        return None

    def wait(self, predicate, timeout: float = 30.0, interval: float = 0.05):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate(self.seen)
            if value:
                return value
            time.sleep(interval)
        return None

    def close(self) -> None:
        async def shut():
            await self.session.close()
            await self._http.close()

        try:
            self.console.loop.call(shut(), timeout=15)
        except (TimeoutError, RuntimeError):
            pass
