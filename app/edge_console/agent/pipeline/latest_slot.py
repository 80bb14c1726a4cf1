"""A one-item mailbox between threads: the producer never waits, the consumer always gets the newest item."""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds only the newest item. Overwriting an item nobody took counts as a drop.

    Why not a queue: a camera must never wait for a slow model, and a slow model must always work on the newest
    frame, not on a backlog of stale ones.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._version = 0
        self._taken_version = 0
        self.dropped = 0

    def put(self, item: T) -> None:
        with self._cond:
            if self._item is not None and self._taken_version < self._version:
                self.dropped += 1
            self._item = item
            self._version += 1
            self._cond.notify_all()

    def take_newer(self, after_version: int, timeout: float) -> tuple[int, T | None]:
        """Wait up to `timeout` for an item newer than `after_version`; returns (version, item) or (after, None)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._version > after_version, timeout):
                return after_version, None
            self._taken_version = self._version
            return self._version, self._item

    def peek(self) -> T | None:
        with self._cond:
            return self._item
