"""The console's one way to run work off the GUI thread, with progress, cancellation and results on the GUI thread.

Anki's task manager, in small: blocking jobs (disk, a model's metadata, an export) run on a thread pool, or in
submission order on a named serial lane where order matters (the database); coroutines (anything that talks to a
device) run on the console's one network loop. Every callback (`on_done`, `on_failed`, `on_progress`) reaches
the GUI thread through `post`, the `GuiDispatcher.post` the console hands in. Qt-free, so it is tested without a
display, and the owner of the threads (`ConsoleRuntime`) shuts every pool and lane down in `close()`.

Cancelling: `Task.cancel()` asks the job to stop (its `cancel_event` is set; a coroutine is cancelled where it
waits) and the job still reports how it ended, so a dialog can say "cancelled, nothing written". `Task.abandon()`
cancels and drops every later callback: nobody is left to show them (a panel closing, another model chosen).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from edge_console.client.net.loop_thread import NetworkLoop

log = logging.getLogger(__name__)
T = TypeVar("T")
Post = Callable[..., None]  # post(fn, *args): run fn(*args) on the GUI thread soon; safe from any thread
DEFAULT_WORKERS = 2  # the laptops this runs on have few cores; the decoder pool and the network loop have theirs


class TaskCancelled(Exception):
    """Raised by `Task.raise_if_cancelled()` inside a job that was asked to stop."""


class Task:
    """A handle on one submitted job, used from the GUI thread (cancel, abandon) and from the job (progress)."""

    def __init__(self, post: Post, on_progress: Callable[[int, int], None] | None) -> None:
        self._post = post
        self._on_progress = on_progress
        self.cancel_event = threading.Event()  # what a blocking job polls (e.g. export_yolo_dataset's `cancel`)
        self.abandoned = False
        self._stop_hook: Callable[[], Any] | None = None  # how the manager stops this kind of job
        self._finished = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def cancel(self) -> None:
        """Ask the job to stop; its outcome (often TaskCancelled or the job's own "cancelled" error) still arrives."""
        self.cancel_event.set()
        if self._stop_hook is not None:
            self._stop_hook()  # a coroutine: cancelled on its loop at its next await; a queued job: never started

    def abandon(self) -> None:
        """Cancel and drop every callback still to come."""
        self.abandoned = True
        self.cancel()

    def raise_if_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise TaskCancelled("cancelled")

    def report_progress(self, done: int, total: int) -> None:
        """From the job: `on_progress(done, total)` runs on the GUI thread (unless abandoned)."""
        if self._on_progress is not None and not self.abandoned:
            self._post(self._deliver_progress, done, total)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has ended; never on the GUI thread (tests and shutdown use it)."""
        return self._finished.wait(timeout)

    def _deliver_progress(self, done: int, total: int) -> None:
        if not self.abandoned and self._on_progress is not None:
            self._on_progress(done, total)


class TaskManager:
    def __init__(self, post: Post, network: NetworkLoop | None = None, *, workers: int = DEFAULT_WORKERS,
                 name: str = "console-task") -> None:
        self.post = post
        self.network = network
        self._name = name
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._lanes: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
        self._async_lanes: dict[str, asyncio.Lock] = {}  # touched only on the network loop's thread
        self._lock = threading.Lock()
        self._closed = False

    # -- blocking jobs ------------------------------------------------------------------------------------------

    def run(self, job: Callable[[Task], T], *, lane: str | None = None,
            on_done: Callable[[T], None] | None = None, on_failed: Callable[[BaseException], None] | None = None,
            on_progress: Callable[[int, int], None] | None = None) -> Task:
        """Run `job(task)` on the pool, or after every earlier job of `lane` on that lane's own thread."""
        task = Task(self.post, on_progress)
        try:
            executor = self._lane(lane) if lane is not None else self.pool
            future = executor.submit(job, task)
        except RuntimeError:  # shut down: the console is closing, nobody waits for this
            task.abandoned = True
            task._finished.set()
            return task
        task._stop_hook = future.cancel
        future.add_done_callback(lambda f: self._finish_thread_job(task, f, on_done, on_failed))
        return task

    def _lane(self, name: str) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("task manager closed")
            lane = self._lanes.get(name)
            if lane is None:
                # One thread per lane: jobs run in submission order, and an object bound to its thread (a
                # SQLite connection) always sees the same one.
                lane = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self._name}-{name}")
                self._lanes[name] = lane
            return lane

    # -- coroutines on the network loop -----------------------------------------------------------------------------

    def run_async(self, make: Callable[[Task], Coroutine[Any, Any, T]], *, lane: str | None = None,
                  on_done: Callable[[T], None] | None = None,
                  on_failed: Callable[[BaseException], None] | None = None,
                  on_progress: Callable[[int, int], None] | None = None) -> Task:
        """Run the coroutine `make(task)` on the network loop; with `lane`, after every earlier coroutine of it.

        `Task.cancel()` cancels the coroutine where it waits (a request in flight ends at once)."""
        network = self.network
        if network is None:
            raise RuntimeError("this task manager has no network loop")
        task = Task(self.post, on_progress)

        async def in_order() -> T:
            if lane is None:
                return await make(task)
            lock = self._async_lanes.setdefault(lane, asyncio.Lock())  # FIFO: lanes keep submission order
            async with lock:
                task.raise_if_cancelled()
                return await make(task)

        running: list[asyncio.Task] = []  # the asyncio task, once created on the loop

        def start() -> None:  # on the loop thread
            coroutine = in_order()
            job = asyncio.get_running_loop().create_task(coroutine)
            running.append(job)
            if task.cancelled:
                job.cancel()
            # Done when the coroutine has really ended (its `finally` blocks run), not when it was asked to.
            job.add_done_callback(lambda j: self._finish_async_job(task, j, on_done, on_failed))

        def stop() -> None:  # from any thread
            network.call_soon(lambda: [job.cancel() for job in running])

        task._stop_hook = stop
        if not network.call_soon(start):  # the loop is closed: the console is shutting down
            task.abandoned = True
            task._finished.set()
        return task

    # -- results -------------------------------------------------------------------------------------------------

    def _finish_thread_job(self, task: Task, future: concurrent.futures.Future, on_done, on_failed) -> None:
        if future.cancelled():
            self._finish(task, None, TaskCancelled("cancelled"), on_done, on_failed)
        else:
            error = future.exception()
            self._finish(task, None if error is not None else future.result(), error, on_done, on_failed)

    def _finish_async_job(self, task: Task, job: asyncio.Task, on_done, on_failed) -> None:
        if job.cancelled():
            self._finish(task, None, TaskCancelled("cancelled"), on_done, on_failed)
        else:
            error = job.exception()
            self._finish(task, None if error is not None else job.result(), error, on_done, on_failed)

    def _finish(self, task: Task, result: Any, error: BaseException | None, on_done, on_failed) -> None:
        """On the job's thread (or the loop), once it ended: hand its outcome to the GUI thread."""
        try:
            if error is not None and on_failed is None and not isinstance(error, TaskCancelled):
                log.error("background job failed", exc_info=error)
            if task.abandoned:
                return
            if error is None:
                if on_done is not None:
                    self.post(self._deliver, task, on_done, result)
            elif on_failed is not None:
                self.post(self._deliver, task, on_failed, error)
        except RuntimeError:
            pass  # the dispatcher's Qt object is gone: the console is shutting down
        finally:
            task._finished.set()

    @staticmethod
    def _deliver(task: Task, callback: Callable[[Any], None], value: Any) -> None:
        if not task.abandoned:  # checked again on the GUI thread, where abandon() is called
            callback(value)

    # -- life cycle ------------------------------------------------------------------------------------------------

    def close(self, wait: bool = True) -> None:
        """Stop taking jobs; let queued lane jobs (a database's last writes) finish; join every thread."""
        with self._lock:
            self._closed = True
            lanes = list(self._lanes.values())
        for lane in lanes:
            lane.shutdown(wait=wait)
        self.pool.shutdown(wait=wait, cancel_futures=True)
