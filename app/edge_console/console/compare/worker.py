"""The Compare panel's background worker: one thread of its own owns the CompareSession (the device connection
and the local model) and runs the panel's requests in order, so fetching and local inference never run on the
GUI thread and a large model never freezes the window.

Qt-free on purpose: results go back through `post` (the panel passes its `GuiDispatcher.post`, the console's one
way back to the GUI thread), so the listener's methods run on the GUI thread. Every request carries the panel's
`run` number and every result returns it, so results of an abandoned run (another model picked, a replay
started) that were already on their way can be recognised and dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edge_console.core.comparison import FrameComparison, IncompatibleModelsError
from edge_console.core.errors import EdgeConsoleError
from edge_console.core.model_library import LibraryModel, ModelLibrary
from edge_console.core.protocol import StreamHeader

from .fetch import DeviceFetchError
from .saved_frames import load_saved_frames
from .session import CompareCancelled, CompareSession

log = logging.getLogger(__name__)
RETRY_AFTER_FETCH_ERROR_S = 2.0  # continuous mode keeps trying a device that stops answering, this often
MAX_PRE_WAIT_S = 5.0  # never sleep longer than this for "every Nth frame" on a guessed frame rate


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
    def on_job_done(self) -> None: ...  # one request finished (the panel counts them to show when it is busy)
    def on_continuous_ended(self, run: int) -> None: ...  # continuous mode ended by itself (no device or model)


class CompareWorker:
    def __init__(self, base_url: str, library: ModelLibrary, listener: CompareListener,
                 post: Callable[..., None], *, iou: float = 0.5) -> None:
        self.base_url = base_url
        self.library = library
        self.iou = iou
        self._listener = listener
        self._post = post
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._session: CompareSession | None = None
        self._model_path: Path | None = None  # what the panel asked for; None: the device's own model
        self._continuous_stop: threading.Event | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="compare-worker")
        self._thread.start()

    # -- requests, from the GUI thread ---------------------------------------------------------------------------

    def open(self, run: int, model_path: Path | None) -> None:
        """Connect to the device and load `model_path` (None: the library's copy of the device's model)."""
        self._submit(lambda: self._open(run, model_path))

    def refresh_library(self, add_file: Path | None = None, add_folder: Path | None = None) -> None:
        self._submit(lambda: self._refresh_library(add_file, add_folder))

    def compare_once(self, run: int) -> None:
        self._submit(lambda: self._compare_once(run))

    def replay(self, run: int, source: Path | Sequence[tuple[StreamHeader, np.ndarray]]) -> None:
        """Compare a saved set (a folder, or frames already at hand) with the local model."""
        self._submit(lambda: self._replay(run, source))

    def start_continuous(self, run: int, every: int) -> None:
        self.stop_continuous()
        stop = threading.Event()  # one token per start: a quick stop/start can never revive an old loop
        self._continuous_stop = stop
        self._submit(lambda: self._continuous(run, every, stop))

    def stop_continuous(self) -> None:
        stop, self._continuous_stop = self._continuous_stop, None
        if stop is not None:
            stop.set()
            session = self._session
            if session is not None:
                session.cancel()  # do not wait out a device that is slow to send its next frame

    def close(self) -> None:
        """Stop after the current step (one inference at most) and release the device and model; no join."""
        if self._closed:
            return
        self._closed = True
        self.stop_continuous()
        session = self._session
        if session is not None:
            session.cancel()  # a fetch in flight ends now instead of at its timeout
        self._jobs.put(None)

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _submit(self, job: Callable[[], None]) -> None:
        if not self._closed:
            self._jobs.put(job)

    # -- the worker thread ---------------------------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                if self._closed:
                    continue  # requests still queued when the panel closed: nobody wants their results
                try:
                    job()
                except Exception as exc:  # a bug must not kill the worker and leave the panel waiting forever
                    log.exception("compare worker: unexpected error")
                    self._tell("on_failed", -1, f"unexpected error: {exc!r}")
                self._tell("on_job_done")
        finally:
            self._close_session()

    def _tell(self, method: str, *args: Any) -> None:
        if self._closed:
            return  # the panel is going away: nobody to tell
        try:
            self._post(getattr(self._listener, method), *args)
        except RuntimeError:
            pass  # the dispatcher's Qt object was deleted between the check and the post

    def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def _listing(self) -> LibraryListing:
        models = self.library.models()
        return LibraryListing(models, dict(self.library.problems))

    def _refresh_library(self, add_file: Path | None, add_folder: Path | None) -> None:
        try:
            if add_folder is not None:
                self.library.add_folder(add_folder)
            if add_file is not None:
                self.library.add_file(add_file)
        except Exception as exc:  # a file that is not a model, a folder that vanished: say so, keep the rest
            self._tell("on_failed", -1, f"cannot add {add_file or add_folder}: {str(exc).strip()[:300]}")
        self._tell("on_library", self._listing())

    def _open(self, run: int, model_path: Path | None) -> None:
        self._close_session()
        self._model_path = model_path
        self._tell("on_library", self._listing())
        try:
            session = CompareSession(self.base_url, self.library, model_path, iou=self.iou)
        except CompareCancelled:
            return
        except (EdgeConsoleError, OSError) as exc:  # unreachable device, bad or incompatible model
            self._tell("on_failed", run, str(exc))
            return
        self._session = session
        m = session.info["model"]
        copy = self.library.find(m.get("name", ""), m.get("version", ""), m.get("sha256"))
        self._tell("on_opened", SessionOpened(run, session.info, session.model_path, session.detector.spec.describe(),
                                              session.detector.provider, copy.path if copy else None))

    def _ready_session(self, run: int) -> CompareSession | None:
        """The open session, or a new attempt at opening it (a retry after the device or model failed)."""
        if self._session is None:
            self._open(run, self._model_path)
        return self._session

    def _compare_once(self, run: int) -> None:
        session = self._ready_session(run)
        if session is None:
            return
        try:
            self._tell("on_compared", run, session.next_frame())
        except CompareCancelled:
            pass
        except (DeviceFetchError, ValueError) as exc:
            self._tell("on_failed", run, str(exc))

    def _replay(self, run: int, source: Path | Sequence[tuple[StreamHeader, np.ndarray]]) -> None:
        session = self._ready_session(run)
        if session is None:
            return
        try:
            frames = load_saved_frames(source) if isinstance(source, Path) else list(source)
            for header, image in frames:
                self._tell("on_compared", run, session.compare(header, image))
        except (EdgeConsoleError, ValueError) as exc:
            self._tell("on_failed", run, str(exc))

    def _continuous(self, run: int, every: int, stop: threading.Event) -> None:
        session = self._ready_session(run)
        if session is None:  # the failure is already reported; the panel switches the mode off
            self._tell("on_continuous_ended", run)
            return
        last_fetch = 0.0
        while not stop.is_set():
            # Sleep through the frames that will be skipped anyway instead of polling the device for them; wake a
            # little early (the last frame fetched may have waited on the device a while), then fetch_frame polls.
            period = session.frame_period_s
            if period and last_fetch:
                wait = min((every - 0.25) * period - (time.monotonic() - last_fetch), MAX_PRE_WAIT_S)
                if wait > 0 and stop.wait(wait):
                    return
            try:
                comparison = session.next_frame(every=every)
            except CompareCancelled:
                return
            except (DeviceFetchError, ValueError, IncompatibleModelsError) as exc:
                self._tell("on_failed", run, str(exc))
                if stop.wait(RETRY_AFTER_FETCH_ERROR_S):
                    return
                continue
            last_fetch = time.monotonic()
            self._tell("on_compared", run, comparison)
