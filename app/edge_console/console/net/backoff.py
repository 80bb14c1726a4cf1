"""Reconnect delays that grow on failure, reset on success, and can be cut short when something changes."""

from __future__ import annotations

import asyncio
import random


class Backoff:
    """0.5 s, 1 s, 2 s, 4 s, then every 5 s: a returning device is back on screen within seconds, and a refused
    connection costs nothing. Jitter keeps a fleet that dropped together from returning in lockstep."""

    def __init__(self, initial: float = 0.5, maximum: float = 5.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self._next = initial
        self._wake = asyncio.Event()

    def reset(self) -> None:
        self._next = self.initial

    def next_delay(self) -> float:
        delay = self._next * random.uniform(0.8, 1.2)
        self._next = min(self._next * 2, self.maximum)
        return delay

    def wake(self) -> None:
        """Cut the current wait short (the device was re-announced at a new address, or the user asked)."""
        self.reset()
        self._wake.set()

    async def sleep(self, delay: float | None = None) -> None:
        delay = self.next_delay() if delay is None else delay
        try:
            await asyncio.wait_for(self._wake.wait(), delay)
        except TimeoutError:
            pass
        self._wake.clear()
