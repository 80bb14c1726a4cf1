"""Retry delays that grow on failure and reset on success: one policy for the agent's camera retries and the
console's reconnects (each wraps it in its own way of waiting: a thread event there, an asyncio event here)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class BackoffPolicy:
    """initial, 2x initial, 4x ... up to `maximum`; `jitter` spreads a fleet that failed together (0.2: +-20%)."""

    initial: float = 0.5
    maximum: float = 5.0
    jitter: float = 0.0
    _next: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._next = self.initial

    def reset(self) -> None:
        self._next = self.initial

    def peek(self) -> float:
        """The next delay without jitter, without advancing (for messages such as 'retrying in 2 s')."""
        return self._next

    def next_delay(self) -> float:
        delay = self._next * (random.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else 1.0)
        self._next = min(self._next * 2, self.maximum)
        return delay
