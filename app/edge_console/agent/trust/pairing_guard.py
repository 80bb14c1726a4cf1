"""Who may try the open pairing code, and how often: counted per source address, so strangers on the network
cannot burn the owner's code.

Each pairing exchange is one guess at the code (core/trust/pairing_protocol.py). A source address may start one exchange
a second and fail MAX_FAILURES times per code; after that it is refused until a new code is opened. Everyone
together may start GLOBAL_STARTS_PER_S exchanges a second (a flood from many addresses slows guessing, it does
not speed it up), and the code burns after MAX_GUESSES failures in all (trust.py). What happened is said on the
device's terminal (its log), where the owner reads the code.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from edge_console.core.trust.pairing_protocol import MAX_FAILURES

log = logging.getLogger(__name__)
SOURCE_INTERVAL_S = 1.0
GLOBAL_STARTS_PER_S = 10.0
MAX_SOURCES = 4096  # addresses remembered per code; the oldest are forgotten first (their counts restart)


@dataclass
class _Source:
    failures: int = 0
    last_start: float = float("-inf")


@dataclass
class PairingGuard:
    code_key: tuple[str, float] | None = None  # the code the counts are for: a new code starts them again
    sources: dict[str, _Source] = field(default_factory=dict)
    _tokens: float = GLOBAL_STARTS_PER_S
    _refilled: float = field(default_factory=time.monotonic)

    def _for_code(self, code_key: tuple[str, float]) -> None:
        if code_key != self.code_key:
            self.code_key, self.sources = code_key, {}

    def refusal(self, code_key: tuple[str, float], source: str) -> tuple[int, str] | None:
        """(HTTP status, why) when `source` may not start an exchange now; None when it may (and it is counted)."""
        self._for_code(code_key)
        now = time.monotonic()
        entry = self.sources.get(source) or _Source()
        if entry.failures >= MAX_FAILURES:
            return 429, (f"{MAX_FAILURES} wrong codes came from this address; it may not try this code again. "
                         "Open a new code on the device (`edge-agent pair`) and type it carefully.")
        if now - entry.last_start < SOURCE_INTERVAL_S:
            return 429, "one pairing attempt a second from one address; wait a second and try again"
        self._tokens = min(GLOBAL_STARTS_PER_S, self._tokens + (now - self._refilled) * GLOBAL_STARTS_PER_S)
        self._refilled = now
        if self._tokens < 1.0:
            return 429, "the device is receiving many pairing attempts; wait a few seconds and try again"
        self._tokens -= 1.0
        entry.last_start = now
        self.sources.pop(source, None)
        self.sources[source] = entry  # newest last: the oldest are forgotten first
        while len(self.sources) > MAX_SOURCES:
            del self.sources[next(iter(self.sources))]
        return None

    def failed(self, source: str) -> int:
        """An exchange from `source` was started (a guess); returns the attempts that source has left."""
        entry = self.sources.setdefault(source, _Source())
        entry.failures += 1
        left = MAX_FAILURES - entry.failures
        if left <= 0:
            log.warning("pairing: %d wrong codes from %s; that address may not try this code again (the code stays "
                        "open for others)", MAX_FAILURES, source)
        else:
            log.warning("pairing: an attempt from %s (%d left for that address); if it was not you, someone on the "
                        "network is guessing", source, left)
        return max(left, 0)

    def succeeded(self, source: str) -> None:
        self.sources.pop(source, None)
