"""Continuous comparison with its two halves overlapped: fetching (network loop) and inference (a pool thread).

While frame N is inferred, frame N+1 is fetched and decoded, so a cycle costs the slower of the two, not their
sum (issue 16). Two details keep the overlap cheap and the pairing exact:

- at most one frame is fetched ahead: memory stays bounded, and a result is never older than one frame;
- the inference thread compares fetched frames back to back: when frame N is done and N+1 is already there, it
  starts on N+1 at once instead of handing N back to the loop first and waiting to be given N+1 (two thread
  hand-offs per frame, measured at 7 % of a parts-v2 cycle on two busy cores).

Each comparison is made from one `DeviceFrame` (header, pixels and message travel together) and delivered with
it, in fetch order, so a result can never be paired with a neighbouring frame. Qt-free.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable

from edge_console.client.compare.fetch import DeviceFrame
from edge_console.core.detection.comparison import FrameComparison

FETCHED_AHEAD = 1  # frames fetched beyond the one being compared


class ComparePipeline:
    def __init__(self, fetch: Callable[[], Awaitable[DeviceFrame]], compare: Callable[[DeviceFrame], FrameComparison],
                 on_compared: Callable[[DeviceFrame, FrameComparison], None],
                 executor: concurrent.futures.Executor | None, count: int | None) -> None:
        self._fetch = fetch
        self._compare = compare  # blocking: runs on `executor`
        self._on_compared = on_compared
        self._executor = executor
        self._count = count
        self._lock = threading.Lock()  # guards the hand-over between the loop and the inference thread
        self._ready: collections.deque[DeviceFrame] = collections.deque()  # fetched, not yet being compared
        self._comparing = False  # an inference job is running (it takes every ready frame in turn)
        self._stopped = False
        self._in_flight = 0  # fetched or being fetched, not yet delivered
        self._delivered = 0
        self._room = asyncio.Event()  # set whenever a delivery makes room for another fetch
        self._settled = asyncio.Event()  # set at every delivery or failure: the run re-checks whether it is over
        self._failure: BaseException | None = None
        self._final = False  # the failure ends the run at once (a comparison failed), not after what came before
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self) -> int:
        """Compare `count` frames (None: until cancelled); returns how many were delivered. A failed fetch is
        raised once every frame fetched before it has been delivered; a failed comparison at once."""
        self._loop = asyncio.get_running_loop()
        producer = self._loop.create_task(self._produce())
        try:
            while True:
                if self._count is not None and self._delivered >= self._count:
                    return self._delivered
                if self._failure is not None and (self._final or self._in_flight == 0):
                    raise self._failure
                self._settled.clear()
                await self._settled.wait()
        finally:
            with self._lock:
                self._stopped = True  # the inference thread stops after the frame it is on; its result is dropped
                self._ready.clear()
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)

    # -- the loop's side: fetching ahead, delivering in order -------------------------------------------------------

    async def _produce(self) -> None:
        fetched = 0
        while self._count is None or fetched < self._count:
            while self._in_flight > FETCHED_AHEAD:
                self._room.clear()
                await self._room.wait()
            self._in_flight += 1
            try:
                frame = await self._fetch()
            except Exception as exc:  # raised by the run after the frames before it are delivered
                self._in_flight -= 1
                self._fail(exc, final=False)
                return
            fetched += 1
            with self._lock:
                if self._stopped:
                    return
                self._ready.append(frame)
                start = not self._comparing
                self._comparing = True
            if start:
                try:
                    self._loop.run_in_executor(self._executor, self._compare_ready_frames)
                except RuntimeError as exc:  # the pool is shut down: the console is closing
                    self._fail(exc, final=True)
                    return

    def _deliver(self, frame: DeviceFrame, comparison: FrameComparison | None, error: BaseException | None) -> None:
        """On the loop, in fetch order: hand one result on; after a failed comparison, nothing more."""
        if self._stopped or self._final:
            return
        self._in_flight -= 1
        self._room.set()
        if error is not None:
            self._fail(error, final=True)
            return
        self._delivered += 1
        try:
            self._on_compared(frame, comparison)
        except Exception as exc:  # the receiver's bug ends the run, visibly
            self._fail(exc, final=True)
        self._settled.set()

    def _fail(self, error: BaseException, *, final: bool) -> None:
        if self._failure is None:
            self._failure = error
        self._final = self._final or final
        self._settled.set()

    # -- the inference thread's side ----------------------------------------------------------------------------------

    def _compare_ready_frames(self) -> None:
        """On a pool thread: compare every ready frame in turn, then end (the loop starts another job later)."""
        while True:
            with self._lock:
                if self._stopped or not self._ready:
                    self._comparing = False
                    return
                frame = self._ready.popleft()
            try:
                result, error = self._compare(frame), None
            except Exception as exc:  # a frame that does not match its header: the run reports it
                result, error = None, exc
            try:
                self._loop.call_soon_threadsafe(self._deliver, frame, result, error)
            except RuntimeError:  # the loop is closed: the console is shutting down, nobody waits for this
                with self._lock:
                    self._comparing = False
                return
