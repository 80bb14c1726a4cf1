"""One asyncio loop on one background thread for all of the console's network I/O."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class NetworkLoop:
    """Owns the thread and its loop; the GUI submits coroutines and never awaits them itself.

    `stop()` cancels every task still running, lets them clean up (close sockets, zeroconf), then joins the
    thread, so no thread outlives the console (the tests check that).
    """

    def __init__(self, name: str = "console-network") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = threading.Event()
        self._stopped = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def start(self) -> None:
        self._thread.start()
        self._started.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._started.set)
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run `coro` on the loop; the returned future may be waited on only off the GUI thread."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Run `fn(*args)` on the loop soon; False (and nothing runs) once the loop is stopping or closed."""
        if self._stopped or self._loop.is_closed():
            return False
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # closed between the check and the call
            return False
        return True

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def stop(self, before_stop: Callable[[], Coroutine[Any, Any, None]] | None = None, timeout: float = 5.0) -> None:
        """Run `before_stop` (closing sessions), cancel what is left, stop the loop and join the thread."""
        if self._stopped or not self._thread.is_alive():
            self._stopped = True
            return
        self._stopped = True

        async def _shutdown() -> None:
            if before_stop is not None:
                try:
                    await asyncio.wait_for(before_stop(), timeout)
                except (TimeoutError, asyncio.CancelledError):
                    pass
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=timeout)

        try:
            asyncio.run_coroutine_threadsafe(_shutdown(), self._loop).result(timeout * 2 + 1)
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError, RuntimeError):
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
