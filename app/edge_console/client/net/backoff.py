"""Reconnect delays that grow on failure, reset on success, and can be cut short when something changes.

The delays are the product's one retry policy (`edge_console.core.backoff.BackoffPolicy`); this adds what a
session on an asyncio loop needs on top: a sleep that `wake()` ends early.
"""

from __future__ import annotations

import asyncio

from edge_console.core.backoff import BackoffPolicy

RECONNECT_INITIAL_S = 0.5
RECONNECT_MAXIMUM_S = 5.0
RECONNECT_JITTER = 0.2


def reconnect_policy() -> BackoffPolicy:
    """0.5 s, 1 s, 2 s, 4 s, then every 5 s: a returning device is back on screen within seconds, and a refused
    connection costs nothing. Jitter keeps a fleet that dropped together from returning in lockstep."""
    return BackoffPolicy(RECONNECT_INITIAL_S, RECONNECT_MAXIMUM_S, RECONNECT_JITTER)


class Backoff:
    def __init__(self, policy: BackoffPolicy | None = None) -> None:
        self.policy = policy or reconnect_policy()
        self._wake = asyncio.Event()

    def reset(self) -> None:
        self.policy.reset()

    def next_delay(self) -> float:
        return self.policy.next_delay()

    def wake(self) -> None:
        """Cut the current wait short (the device was re-announced at a new address, or the user asked)."""
        self.reset()
        self._wake.set()

    async def sleep(self, delay: float | None = None) -> None:
        delay = self.next_delay() if delay is None else delay
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that arrives as the
        # wait ends (CPython gh-86296), and a session's close() would then wait forever for a loop that goes on.
        try:
            async with asyncio.timeout(delay):
                await self._wake.wait()
        except TimeoutError:
            pass
        self._wake.clear()
