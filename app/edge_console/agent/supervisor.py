"""The agent's periodic background loops, kept alive: a loop whose step raises is restarted after a backoff, and
while it is failing health says so (failing), instead of the loop dying silently while health still says ok."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from edge_console.core.backoff import BackoffPolicy

log = logging.getLogger(__name__)


class BackgroundLoops:
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task] = {}
        self._failures: dict[str, str] = {}
        self.restarts: dict[str, int] = {}

    def start(self, name: str, step: Callable[[], Awaitable[None]], period_s: float) -> None:
        """Run `step` every `period_s` (fixed rate, no drift) until `stop()`."""
        self._tasks[name] = asyncio.get_running_loop().create_task(self._run(name, step, period_s), name=name)

    def problems(self) -> list[str]:
        return list(self._failures.values())

    async def _run(self, name: str, step: Callable[[], Awaitable[None]], period_s: float) -> None:
        loop = asyncio.get_running_loop()
        backoff = BackoffPolicy(1.0, 30.0)
        next_at = loop.time()
        last_error = ""
        while True:
            next_at += period_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = backoff.next_delay()
                self.restarts[name] = self.restarts.get(name, 0) + 1
                self._failures[name] = f"{name} failed: {exc!r} (restarting in {delay:g} s)"
                if repr(exc) != last_error:  # the traceback once per distinct error, not once a second
                    log.exception("%s failed; restarting in %g s", name, delay)
                    last_error = repr(exc)
                await asyncio.sleep(delay)
                next_at = loop.time()
                continue
            if name in self._failures:
                log.warning("%s works again", name)
                del self._failures[name]
                last_error = ""
            backoff.reset()

    async def stop(self) -> None:
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
