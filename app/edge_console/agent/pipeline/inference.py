"""The inference thread: runs the detector on the newest captured frame; the model can be swapped while running."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge_console.agent.pipeline.capture import CapturedFrame
from edge_console.agent.pipeline.latest_slot import LatestSlot
from edge_console.agent.pipeline.stats import PipelineStats
from edge_console.core.detection.detector import Detector
from edge_console.core.detection.record import Detection, Timings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InferredFrame:
    seq: int
    capture_ts: float
    image: np.ndarray  # the exact pixels the model saw (before its own preprocessing)
    detections: list[Detection]
    timings: Timings
    model_version: str


class InferenceLoop(threading.Thread):
    def __init__(self, frames: LatestSlot[CapturedFrame], detector: Detector, stats: PipelineStats,
                 on_result: Callable[[InferredFrame], None], injected_delay_s: float = 0.0):
        super().__init__(name="inference", daemon=True)
        self.frames = frames
        self.stats = stats
        self.on_result = on_result
        self.injected_delay_s = injected_delay_s  # the simulator's "slower hardware"
        self._detector = detector
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.latest: InferredFrame | None = None

    @property
    def detector(self) -> Detector:
        with self._lock:
            return self._detector

    def swap_detector(self, detector: Detector) -> Detector:
        """Use `detector` from the next frame on; capture and stream clients carry on untouched."""
        with self._lock:
            old, self._detector = self._detector, detector
        return old

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        version = 0
        while not self._stopping.is_set():
            version, frame = self.frames.take_newer(version, timeout=0.25)
            if frame is None:
                continue
            detector = self.detector
            try:
                result = detector.detect(frame.image)
            except Exception as exc:  # a model failing at run time is reported, not fatal
                reason = f"{detector.spec.name} {detector.spec.version} failed on frame #{frame.seq}: {exc}"
                log.warning("inference: %s", reason)
                self.stats.record_model_error(reason)
                self._stopping.wait(0.5)
                continue
            timings = result.timings
            if self.injected_delay_s:
                time.sleep(self.injected_delay_s)
                timings = Timings(timings.preprocess_ms, timings.inference_ms + self.injected_delay_s * 1e3,
                                  timings.postprocess_ms)
            out = InferredFrame(frame.seq, frame.capture_ts, frame.image, result.detections, timings,
                                detector.spec.version)
            self.latest = out
            self.stats.record_inference(timings, result.detections)
            self.on_result(out)
