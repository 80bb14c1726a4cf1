"""One comparison set-up (device + local model) that fetches and compares frame after frame.

Coroutines on whichever loop awaits them: the console's network loop and its HTTP client (the Compare panel), or
`asyncio.run` with a client of its own (`edge-console compare`): one code path for both. The local model never
runs on the loop: loading it and every inference run on `executor` (None: the loop's default executor).

Continuous comparison overlaps the two halves of a cycle (`ComparePipeline`): while frame N is being inferred
here, frame N+1 is already being fetched and decoded, so a run is bounded by the slower of the two, not by their
sum. Each result still carries the pixels and the header it was computed from: fetching ahead never re-pairs them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from edge_console.client.compare.fetch import REQUEST_TIMEOUT_S, DeviceFrame, fetch_device_frame, fetch_info
from edge_console.client.compare.pipeline import ComparePipeline
from edge_console.core.detection.comparison import FrameComparison, class_mapping, compare_frame
from edge_console.core.detection.detector import Detector
from edge_console.core.detection.model_library import ModelLibrary
from edge_console.core.errors import ModelError

MAX_PRE_WAIT_S = 5.0  # never sleep longer than this for "every Nth frame" on a guessed frame rate
OnCompared = Callable[[DeviceFrame, FrameComparison], None]


def pick_local_model(info: dict, library: ModelLibrary, explicit: Path | None) -> Path:
    """The model to run here: the one given, else the library's copy of what the device runs (reads every model's
    metadata in the library's folders the first time: call it off the loop)."""
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


def _load(info: dict, library: ModelLibrary, explicit: Path | None,
          intra_op_threads: int | None) -> tuple[Path, Detector, dict[int, int]]:
    path = pick_local_model(info, library, explicit)
    detector = Detector(path, intra_op_threads=intra_op_threads)
    return path, detector, class_mapping(info["model"]["classes"], detector.spec.class_names)


class CompareSession:
    request_timeout_s = REQUEST_TIMEOUT_S  # how long one frame request may wait on the device (a long poll)

    def __init__(self, http: aiohttp.ClientSession, base_url: str, info: dict, model_path: Path, detector: Detector,
                 mapping: dict[int, int], *, iou: float = 0.5,
                 executor: concurrent.futures.Executor | None = None) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.info = info
        self.model_path = model_path
        self.detector = detector
        self.mapping = mapping
        self.iou = iou
        self.executor = executor
        self.last_seq = 0
        self.frame_period_s: float | None = None  # the device's frame interval, from its own capture clock
        self._last_capture: tuple[int, float] | None = None
        self._last_fetch_at = 0.0  # monotonic; when the newest frame arrived here

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, base_url: str, library: ModelLibrary,
                   model_path: Path | None = None, *, iou: float = 0.5, intra_op_threads: int | None = None,
                   executor: concurrent.futures.Executor | None = None) -> CompareSession:
        """Ask the device what it runs, then load the local model (the given one, or the library's copy of the
        device's) off the loop. DeviceFetchError, ModelError or IncompatibleModelsError say what is wrong."""
        base_url = base_url.rstrip("/")
        info = await fetch_info(http, base_url)
        loop = asyncio.get_running_loop()
        path, detector, mapping = await loop.run_in_executor(executor, _load, info, library, model_path,
                                                             intra_op_threads)
        return cls(http, base_url, info, path, detector, mapping, iou=iou, executor=executor)

    # -- one frame ------------------------------------------------------------------------------------------------

    async def fetch_next(self, every: int = 1, *, wait_for_new: bool = True) -> DeviceFrame:
        """The device's next inferred frame, at least `every` frames after the last one fetched (continuous mode
        samples every Nth frame). `wait_for_new=False` takes whatever frame the device has now, even one already
        fetched: the benchmark measures the console's own cycle that way, unpaced by the device's camera."""
        if not wait_for_new:
            return await self._follow_device_model(self._note(await self._fetch(0)))
        every = max(1, every)
        await self._sleep_through_skipped_frames(every)
        wanted = self.last_seq + every
        frame = await self._fetch(self.last_seq)
        # The agent answers with its next frame; ask again until the Nth. A number below ours means the agent
        # restarted and counts from 1 again: take what it has.
        while self.last_seq and self.last_seq < frame.header.seq < wanted:
            frame = await self._fetch(frame.header.seq)
        return await self._follow_device_model(self._note(frame))

    async def _follow_device_model(self, frame: DeviceFrame) -> DeviceFrame:
        """A frame inferred by another model version than the one this session was opened with (a rollout or a
        rollback meanwhile): read what the device runs now, and map its classes again, before comparing."""
        if frame.header.model_version == str(self.info["model"].get("version", "")):
            return frame
        info = await fetch_info(self.http, self.base_url)
        self.mapping = class_mapping(info["model"]["classes"], self.detector.spec.class_names)
        self.info = info
        return frame

    async def _fetch(self, after_seq: int) -> DeviceFrame:
        return await fetch_device_frame(self.http, self.base_url, after_seq, self.request_timeout_s, self.executor)

    async def compare(self, header_image: DeviceFrame | tuple, keep_image: bool = True) -> FrameComparison:
        """Run the local model on one frame (fetched, or a saved one as (header, image)) and match the results."""
        header, image = ((header_image.header, header_image.image) if isinstance(header_image, DeviceFrame)
                         else header_image)
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, lambda: compare_frame(image, header, self.detector, self.mapping, iou=self.iou,
                                                 keep_image=keep_image))

    async def next_frame(self, keep_image: bool = True, every: int = 1) -> FrameComparison:
        return await self.compare(await self.fetch_next(every), keep_image=keep_image)

    # -- continuous -------------------------------------------------------------------------------------------------

    async def run(self, on_compared: OnCompared, *, count: int | None = None, every: int = 1,
                  keep_image: bool = True, wait_for_new: bool = True) -> int:
        """Compare `count` frames (None: until cancelled), fetching frame N+1 while frame N is inferred
        (`ComparePipeline`); calls `on_compared(frame, comparison)` for each, in order, on the loop. A fetch that
        fails is raised once the frames fetched before it have been delivered. Returns how many were compared."""
        def compare(frame: DeviceFrame) -> FrameComparison:
            return compare_frame(frame.image, frame.header, self.detector, self.mapping, iou=self.iou,
                                 keep_image=keep_image)

        pipeline = ComparePipeline(lambda: self.fetch_next(every, wait_for_new=wait_for_new), compare, on_compared,
                                   self.executor, count)
        return await pipeline.run()

    # -- bookkeeping ------------------------------------------------------------------------------------------------

    def _note(self, frame: DeviceFrame) -> DeviceFrame:
        header = frame.header
        if self._last_capture is not None:
            seq, ts = self._last_capture
            if header.seq > seq and header.capture_ts > ts:
                self.frame_period_s = (header.capture_ts - ts) / (header.seq - seq)
        self._last_capture = (header.seq, header.capture_ts)
        self.last_seq = header.seq
        self._last_fetch_at = time.monotonic()
        return frame

    async def _sleep_through_skipped_frames(self, every: int) -> None:
        """For every Nth frame, sleep through the frames that will be skipped anyway instead of polling the device
        for them; wake a little early (the last frame may have waited on the device a while), then poll."""
        period = self.frame_period_s
        if every > 1 and period and self._last_fetch_at:
            wait = min((every - 0.25) * period - (time.monotonic() - self._last_fetch_at), MAX_PRE_WAIT_S)
            if wait > 0:
                await asyncio.sleep(wait)
