"""A device's clock as seen from the console: how far it is off, and device timestamps on the console's clock.

Device clocks on isolated sites drift, and nothing on the site corrects them. Each ping gives an NTP-style
estimate (the device's time against the midpoint of the round trip); the ping with the shortest round trip has
the least asymmetric delay, so its estimate is kept. Its error is at most half that round trip, which is what the
console shows as the uncertainty of a latency.
"""

from __future__ import annotations

import time
from collections import deque

from edge_console.core.protocol import ClockSample, estimate_clock_offset

SAMPLES_KEPT = 16


class DeviceClock:
    def __init__(self, kept: int = SAMPLES_KEPT) -> None:
        self._samples: deque[ClockSample] = deque(maxlen=kept)

    def add(self, sample: ClockSample) -> bool:
        """Keep one ping; False for a sample that cannot be right (the reply came before the request)."""
        if sample.round_trip < 0:
            return False
        self._samples.append(sample)
        return True

    @property
    def offset(self) -> float | None:
        """Device clock minus console clock, in seconds (positive: the device is ahead); None before any ping."""
        return estimate_clock_offset(list(self._samples))

    @property
    def round_trip(self) -> float | None:
        """The shortest round trip seen; the offset is right to within half of it."""
        return min((s.round_trip for s in self._samples), default=None)

    def to_console_time(self, device_ts: float) -> float | None:
        offset = self.offset
        return None if offset is None else device_ts - offset


def console_time(device_ts: float, offset: float) -> float:
    """A device timestamp on the console's clock, given the device's offset (device minus console)."""
    return device_ts - offset


def latency_since(device_ts: float, offset: float, now: float | None = None) -> float:
    """Seconds from a moment stamped by the device (a frame's capture) until `now` on the console's clock."""
    return (time.time() if now is None else now) - console_time(device_ts, offset)
