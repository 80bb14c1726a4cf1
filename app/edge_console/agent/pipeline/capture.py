"""The capture thread: reads the source as fast as it delivers and never waits for inference or clients."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from edge_console.agent.pipeline.latest_slot import LatestSlot
from edge_console.agent.pipeline.sources import SourceError, SourceSpec, open_source
from edge_console.agent.pipeline.stats import PipelineStats
from edge_console.core.backoff import BackoffPolicy

log = logging.getLogger(__name__)
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 10.0


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    seq: int
    capture_ts: float  # agent wall clock (epoch s) when the frame was read
    image: np.ndarray  # BGR; never modified after capture, so consumers can share it


class CaptureLoop(threading.Thread):
    """Opens the source, reads frames into a LatestSlot, and on failure reports why and retries with backoff."""

    def __init__(self, spec: SourceSpec, slot: LatestSlot[CapturedFrame], stats: PipelineStats, opener=open_source):
        super().__init__(name="capture", daemon=True)
        self.spec = spec
        self.slot = slot
        self.stats = stats
        self._open = opener
        self._stopping = threading.Event()
        self._reopen = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def reopen(self) -> None:
        """Close and open the source again before the next frame (an operator's "restart the pipeline")."""
        self._reopen.set()

    def run(self) -> None:
        source, seq, failing = None, 0, False
        backoff = BackoffPolicy(BACKOFF_START_S, BACKOFF_MAX_S)
        while not self._stopping.is_set():
            if self._reopen.is_set() and source is not None:
                self._reopen.clear()
                source.close()
                source = None
                log.warning("capture: reopening the source on request")
            try:
                if source is None:
                    source = self._open(self.spec)
                frame = source.read()
            except Exception as exc:  # any source failure must leave the agent up and reporting
                reason = str(exc) if isinstance(exc, SourceError) else f"source error: {exc!r}"
                delay = backoff.next_delay()
                self.stats.record_capture_failure(f"{reason} (retrying in {delay:g} s)")
                log.warning("capture: %s (retrying in %g s)", reason, delay)
                failing = True
                if source is not None:
                    source.close()
                    source = None
                self._stopping.wait(delay)
                continue
            if failing:
                log.warning("capture: the source delivers frames again")
                failing = False
            backoff.reset()
            seq += 1
            self.slot.put(CapturedFrame(seq, time.time(), frame))
            self.stats.record_captured(self.slot.dropped)
        if source is not None:
            source.close()
