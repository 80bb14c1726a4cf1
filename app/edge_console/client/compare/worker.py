"""The Compare panel's requests, run in order as coroutines on the console's network loop (with its one HTTP
client), the local model on the task manager's pool: nothing here has a thread or an event loop of its own, and
neither fetching nor inference ever runs on the GUI thread.

Qt-free on purpose: results go back through the task manager's `post` (the console's one way back to the GUI
thread), so the listener's methods run on the GUI thread. Every request carries the panel's `run` number and every
result returns it, so results of an abandoned run (another model picked, a replay started) that were already on
their way can be recognised and dropped; `close()` abandons every request, so nothing at all arrives afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import numpy as np

from edge_console.client.compare.fetch import DeviceFetchError, DeviceFrame
from edge_console.client.compare.saved_frames import load_saved_frames
from edge_console.client.compare.session import CompareSession
from edge_console.client.net.bound_session import DeviceBoundSession
from edge_console.client.tasks import Task, TaskCancelled, TaskManager
from edge_console.core.detection.comparison import FrameComparison, IncompatibleModelsError
from edge_console.core.detection.model_library import LibraryModel, ModelLibrary
from edge_console.core.errors import EdgeConsoleError
from edge_console.core.protocol import StreamHeader

log = logging.getLogger(__name__)
RETRY_AFTER_FETCH_ERROR_S = 2.0  # continuous mode tries a device that stops sending frames again this often...
CONTINUOUS_GIVE_UP_AFTER = 3  # ...and stops after this many failures in a row: no run over a stale frame
_lane_numbers = itertools.count(1)


@dataclass(frozen=True)
class LibraryListing:
    models: list[LibraryModel]
    problems: dict[Path, str] = field(default_factory=dict)  # files that look like models but cannot be read


@dataclass(frozen=True)
class SessionOpened:
    run: int
    info: dict  # the device's /v1/info
    model_path: Path
    model: dict  # ModelSpec.describe() of the local model
    provider: str
    device_copy: Path | None  # the library's copy of the device's own model, if there is one


class CompareListener(Protocol):
    """What the worker reports; each method is called on the GUI thread (through `post`)."""

    def on_library(self, listing: LibraryListing) -> None: ...
    def on_opened(self, opened: SessionOpened) -> None: ...
    def on_compared(self, run: int, comparison: FrameComparison) -> None: ...
    def on_failed(self, run: int, message: str) -> None: ...
    def on_model_refused(self, run: int, path: Path, message: str) -> None: ...  # the model in use stays
    def on_job_done(self) -> None: ...  # one request finished (the panel counts them to show when it is busy)
    def on_continuous_ended(self, run: int, reason: str) -> None: ...  # ended by itself: no device, model or frames


class CompareWorker:
    def __init__(self, base_url: str, library: ModelLibrary, listener: CompareListener, tasks: TaskManager,
                 http: Callable[[], aiohttp.ClientSession], *, iou: float = 0.5, tls=None) -> None:
        """`base_url` and `tls`: how this device is reached (Fleet.transport: HTTPS with its pinned context)."""
        self.base_url = base_url
        self.tls = tls
        self.library = library
        self.iou = iou
        self._listener = listener
        self._tasks = tasks
        self._http = http  # called on the loop thread, where the console's client lives
        self._lane = f"compare-{next(_lane_numbers)}"  # this panel's requests, in the order they were made
        self._jobs: list[Task] = []
        self._continuous: Task | None = None
        self._closed = False
        # Touched only by the coroutines, on the network loop's thread:
        self._session: CompareSession | None = None
        self._model_path: Path | None = None  # what the panel asked for; None: the device's own model

    # -- requests, from the GUI thread ---------------------------------------------------------------------------

    def open(self, run: int, model_path: Path | None) -> None:
        """Connect to the device and load `model_path` (None: the library's copy of the device's model)."""
        self._submit(lambda: self._open(run, model_path))

    def switch_model(self, run: int, model_path: Path, add_to_library: bool = False) -> None:
        """Compare against `model_path` from now on if it loads; if it does not, keep the model in use and say
        why once (`on_model_refused`). `add_to_library`: a file the user picked, offered in the list if it loads."""
        self._submit(lambda: self._switch(run, model_path, add_to_library))

    def refresh_library(self, add_file: Path | None = None, add_folder: Path | None = None) -> None:
        self._submit(lambda: self._refresh_library(add_file, add_folder))

    def compare_once(self, run: int) -> None:
        self._submit(lambda: self._compare_once(run))

    def replay(self, run: int, source: Path | Sequence[tuple[StreamHeader, np.ndarray]]) -> None:
        """Compare a saved set (a folder, or frames already at hand) with the local model."""
        self._submit(lambda: self._replay(run, source))

    def start_continuous(self, run: int, every: int) -> None:
        self.stop_continuous()
        self._continuous = self._submit(lambda: self._run_continuous(run, every))

    def stop_continuous(self) -> None:
        """Cancel the continuous run where it waits: a fetch in flight ends now; an inference already running
        finishes on its thread (onnxruntime cannot be interrupted) and its result is dropped."""
        task, self._continuous = self._continuous, None
        if task is not None:
            task.cancel()

    def close(self) -> None:
        """Abandon every request (nothing more is reported) and release the device and the model; no waiting."""
        if self._closed:
            return
        self._closed = True
        self._continuous = None
        for task in self._jobs:
            task.abandon()
        network = self._tasks.network
        if network is not None:
            network.call_soon(self._release)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every request has really ended (for tests and shutdown; never on the GUI thread in use)."""
        return all(task.wait(timeout) for task in list(self._jobs))

    @property
    def running(self) -> bool:
        return any(not task.done for task in self._jobs)

    def _submit(self, request: Callable[[], Coroutine[Any, Any, None]]) -> Task | None:
        if self._closed:
            return None

        async def job(_task: Task) -> None:
            await request()

        task = self._tasks.run_async(job, lane=self._lane, on_done=lambda _result: self._job_done(None),
                                     on_failed=self._job_done)
        self._jobs = [t for t in self._jobs if not t.done] + [task]
        return task

    def _job_done(self, error: BaseException | None) -> None:
        """On the GUI thread: one request ended (finished, cancelled, or failed unexpectedly)."""
        if self._closed:  # a request that had ended before close() may still have had this on its way
            return
        if error is not None and not isinstance(error, TaskCancelled):
            log.error("compare worker: unexpected error", exc_info=error)
            self._listener.on_failed(-1, f"unexpected error: {error!r}")
        self._listener.on_job_done()

    def _tell(self, method: str, *args: Any) -> None:
        """From a coroutine: call the listener on the GUI thread, unless the panel has gone meanwhile."""
        if not self._closed:
            self._tasks.post(self._deliver, method, args)

    def _deliver(self, method: str, args: tuple) -> None:
        if not self._closed:
            getattr(self._listener, method)(*args)

    def _release(self) -> None:
        self._session = None  # the model goes with the last inference that still holds it

    # -- the requests, as coroutines on the network loop ----------------------------------------------------------

    async def _in_pool(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._tasks.pool, fn, *args)

    def _listing(self) -> LibraryListing:
        return LibraryListing(self.library.models(), dict(self.library.problems))

    async def _refresh_library(self, add_file: Path | None, add_folder: Path | None) -> None:
        def refresh() -> LibraryListing:  # reads models' metadata: disk and onnxruntime, off the loop
            try:
                if add_folder is not None:
                    self.library.add_folder(add_folder)
                if add_file is not None:
                    self.library.add_file(add_file)
            except Exception as exc:  # a file that is not a model, a folder that vanished: say so, keep the rest
                self._tell("on_failed", -1, f"cannot add {add_file or add_folder}: {str(exc).strip()[:300]}")
            return self._listing()

        self._tell("on_library", await self._in_pool(refresh))

    async def _open(self, run: int, model_path: Path | None) -> None:
        self._session = None
        self._model_path = model_path
        self._tell("on_library", await self._in_pool(self._listing))
        try:
            session = await self._load(model_path)
        except (EdgeConsoleError, OSError) as exc:  # unreachable device, bad or incompatible model
            self._tell("on_failed", run, str(exc))
            return
        await self._opened(run, session)

    async def _load(self, model_path: Path | None) -> CompareSession:
        return await CompareSession.open(DeviceBoundSession(self._http(), self.tls), self.base_url, self.library,
                                         model_path, iou=self.iou, executor=self._tasks.pool)

    async def _switch(self, run: int, model_path: Path, add_to_library: bool) -> None:
        added = False
        try:
            if add_to_library:  # read once here: a file that is no model is refused before anything changes
                await self._in_pool(self.library.add_file, model_path)
                added = True
            if self._session is None:  # nothing in use to keep: a plain open
                await self._open(run, model_path)
                return
            session = await self._load(model_path)
        except (EdgeConsoleError, OSError, ValueError) as exc:
            if added:  # an ONNX model that cannot be used here (its layout, its classes): still offered in the list
                self._tell("on_library", await self._in_pool(self._listing))
            self._tell("on_model_refused", run, model_path, str(exc).strip()[:400])
            return
        self._model_path = model_path
        self._tell("on_library", await self._in_pool(self._listing))
        await self._opened(run, session)

    async def _opened(self, run: int, session: CompareSession) -> None:
        self._session = session
        m = session.info["model"]
        copy = await self._in_pool(self.library.find, m.get("name", ""), m.get("version", ""), m.get("sha256"))
        self._tell("on_opened", SessionOpened(run, session.info, session.model_path, session.detector.spec.describe(),
                                              session.detector.provider, copy.path if copy else None))

    async def _ready_session(self, run: int) -> CompareSession | None:
        """The open session, or a new attempt at opening it (a retry after the device or model failed)."""
        if self._session is None:
            await self._open(run, self._model_path)
        return self._session

    async def _compare_once(self, run: int) -> None:
        session = await self._ready_session(run)
        if session is None:
            return
        try:
            self._tell("on_compared", run, await session.next_frame())
        except (DeviceFetchError, ValueError) as exc:
            self._tell("on_failed", run, str(exc))

    async def _replay(self, run: int, source: Path | Sequence[tuple[StreamHeader, np.ndarray]]) -> None:
        session = await self._ready_session(run)
        if session is None:
            return
        try:
            frames = await self._in_pool(load_saved_frames, source) if isinstance(source, Path) else list(source)
            for header, image in frames:
                self._tell("on_compared", run, await session.compare((header, image)))
        except (EdgeConsoleError, ValueError) as exc:
            self._tell("on_failed", run, str(exc))

    async def _run_continuous(self, run: int, every: int) -> None:
        """Until cancelled: frame after frame, the next fetched while this one is inferred (`CompareSession.run`)."""
        session = await self._ready_session(run)
        if session is None:  # the failure is already reported; the panel switches the mode off
            self._tell("on_continuous_ended", run, "no device or no local model")
            return
        failures = 0

        def compared(_frame: DeviceFrame, comparison: FrameComparison) -> None:
            nonlocal failures
            failures = 0
            self._tell("on_compared", run, comparison)

        while True:
            try:
                await session.run(compared, every=every)
            except (DeviceFetchError, ValueError, IncompatibleModelsError) as exc:
                failures += 1
                if failures >= CONTINUOUS_GIVE_UP_AFTER:  # frames stopped: say so rather than show a stale frame
                    self._tell("on_continuous_ended", run, str(exc))
                    return
                self._tell("on_failed", run, str(exc))
                await asyncio.sleep(RETRY_AFTER_FETCH_ERROR_S)
