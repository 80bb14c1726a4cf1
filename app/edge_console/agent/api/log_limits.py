"""Repeated log lines are rate-limited: a flood (a client retrying a bad request in a loop, accept() failing
for lack of descriptors) must not fill the disk or bury the one line that explains it."""

from __future__ import annotations

import logging
import time

WINDOW_S = 60.0
PER_WINDOW = 5  # identical messages (same logger, same format string) kept per window; the rest are counted


class RepeatLimiter(logging.Filter):
    def __init__(self, per_window: int = PER_WINDOW, window_s: float = WINDOW_S) -> None:
        super().__init__()
        self.per_window = per_window
        self.window_s = window_s
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # key -> (window start, count in window)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "asyncio" and "out of system resource" in str(record.msg):
            # accept() ran out of descriptors: asyncio retries by itself; the traceback says nothing more.
            record.exc_info, record.exc_text = None, None
        key = (record.name, str(record.msg))
        now = time.monotonic()
        start, count = self._seen.get(key, (now, 0))
        if now - start >= self.window_s:
            if count > self.per_window:
                record.msg = f"{record.msg} [{count - self.per_window} similar messages suppressed in the last " \
                             f"{self.window_s:g} s]"
            start, count = now, 0
        count += 1
        self._seen[key] = (start, count)
        if len(self._seen) > 1000:  # distinct messages are few; a huge table means keys carry data: start over
            self._seen.clear()
        if count > self.per_window:
            return False
        if count == self.per_window:
            record.msg = f"{record.msg} [repeating; further identical messages suppressed for {self.window_s:g} s]"
        return True


def install(handler: logging.Handler) -> None:
    handler.addFilter(RepeatLimiter())
