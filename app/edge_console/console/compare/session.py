"""One comparison set-up (device + local model) that fetches and compares frame after frame.

Blocking calls: run it from a worker thread (the console does) or a script (`edge-console compare`). Only
`cancel()` may be called from another thread.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import numpy as np

from edge_console.core.comparison import FrameComparison, class_mapping, compare_frame
from edge_console.core.detector import Detector
from edge_console.core.errors import ModelError
from edge_console.core.model_library import ModelLibrary
from edge_console.core.protocol import StreamHeader

from .fetch import fetch_frame_message, fetch_info


class CompareCancelled(Exception):
    """A request in flight was abandoned through `CompareSession.cancel()` (not an error to show anyone)."""


def pick_local_model(info: dict, library: ModelLibrary, explicit: Path | None) -> Path:
    """The model to run here: the one given, else the library's copy of what the device runs."""
    if explicit is not None:
        return explicit
    m = info["model"]
    found = library.find(m.get("name", ""), m.get("version", ""), m.get("sha256"))
    if found is None:
        folders = ", ".join(str(f) for f in library.folders) or "no folders"
        raise ModelError(f"no local copy of the device's model {m.get('name')} {m.get('version')} "
                         f"(sha256 {str(m.get('sha256'))[:12]}...) in the model library ({folders}); "
                         "add it from a file or USB stick, or choose another model to compare against")
    return found.path


class CompareSession:
    def __init__(self, base_url: str, library: ModelLibrary, model_path: Path | None = None, iou: float = 0.5,
                 intra_op_threads: int | None = None):
        self.base_url = base_url.rstrip("/")
        self.iou = iou
        self._loop = asyncio.new_event_loop()
        self._http: aiohttp.ClientSession | None = None
        self._in_flight: asyncio.Task | None = None
        self.last_seq = 0
        self.last_message = b""  # the newest frame message exactly as the device sent it (for saved sets)
        self.frame_period_s: float | None = None  # the device's frame interval, from its own capture clock
        self._last_capture: tuple[int, float] | None = None
        try:
            self.info = self._run(self._info())
            self.model_path = pick_local_model(self.info, library, model_path)
            self.detector = Detector(self.model_path, intra_op_threads=intra_op_threads)
            self.mapping = class_mapping(self.info["model"]["classes"], self.detector.spec.class_names)
        except BaseException:
            self.close()
            raise

    def _run(self, coro):
        task = self._loop.create_task(coro)
        self._in_flight = task
        try:
            return self._loop.run_until_complete(task)
        except asyncio.CancelledError as exc:
            raise CompareCancelled("the request to the device was cancelled") from exc
        finally:
            self._in_flight = None

    def cancel(self) -> None:
        """From any thread: abandon the request in flight, if any; the blocked call raises CompareCancelled.
        Inference already running finishes (onnxruntime cannot be interrupted); it is one frame."""
        task = self._in_flight
        if task is not None:
            try:
                self._loop.call_soon_threadsafe(task.cancel)  # a no-op if the task has finished meanwhile
            except RuntimeError:
                pass  # the loop is closed: nothing is in flight any more

    async def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    async def _info(self) -> dict:
        return await fetch_info(await self._session(), self.base_url)

    async def _frame(self, after_seq: int):
        return await fetch_frame_message(await self._session(), self.base_url, after_seq)

    def next_frame(self, keep_image: bool = True, every: int = 1) -> FrameComparison:
        """Fetch the device's next inferred frame (at least `every` frames after the last one fetched, so a
        continuous comparison can sample every Nth frame) and compare it with the local model."""
        wanted = self.last_seq + max(1, every)
        header, image, message = self._run(self._frame(self.last_seq))
        # The agent answers with its next frame; ask again until the Nth. A number below ours means the agent
        # restarted and counts from 1 again: take what it has.
        while self.last_seq and self.last_seq < header.seq < wanted:
            header, image, message = self._run(self._frame(header.seq))
        self._note_capture(header)
        self.last_seq = header.seq
        self.last_message = message
        return self.compare(header, image, keep_image=keep_image)

    def compare(self, header: StreamHeader, image: np.ndarray, keep_image: bool = True) -> FrameComparison:
        """Compare one frame already at hand (a saved one, or one just fetched) with the local model."""
        return compare_frame(image, header, self.detector, self.mapping, iou=self.iou, keep_image=keep_image)

    def _note_capture(self, header: StreamHeader) -> None:
        if self._last_capture is not None:
            seq, ts = self._last_capture
            if header.seq > seq and header.capture_ts > ts:
                self.frame_period_s = (header.capture_ts - ts) / (header.seq - seq)
        self._last_capture = (header.seq, header.capture_ts)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        http, self._http = self._http, None
        if http is not None:
            try:
                self._run(http.close())
            except CompareCancelled:
                pass  # a cancel() racing the close: the connections go with the loop anyway
        self._loop.close()

    def __enter__(self) -> CompareSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
