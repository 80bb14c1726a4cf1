"""The capture thread: reads the source as fast as it delivers and never waits for inference or clients."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from .latest_slot import LatestSlot
from .sources import SourceError, SourceSpec, open_source

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

    def __init__(self, spec: SourceSpec, slot: LatestSlot[CapturedFrame], opener=open_source):
        super().__init__(name="capture", daemon=True)
        self.spec = spec
        self.slot = slot
        self._open = opener
        self._stopping = threading.Event()
        self.error: str | None = None  # why there are no frames right now; None while healthy
        self.captured = 0
        self.failures = 0

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        source, seq, backoff = None, 0, BACKOFF_START_S
        while not self._stopping.is_set():
            try:
                if source is None:
                    source = self._open(self.spec)
                frame = source.read()
            except Exception as exc:  # any source failure must leave the agent up and reporting
                reason = str(exc) if isinstance(exc, SourceError) else f"source error: {exc!r}"
                self.error = f"{reason} (retrying in {backoff:g} s)"
                self.failures += 1
                log.warning("capture: %s", self.error)
                if source is not None:
                    source.close()
                    source = None
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            if self.error:
                log.info("capture: source is back")
            self.error, backoff = None, BACKOFF_START_S
            seq += 1
            self.captured += 1
            self.slot.put(CapturedFrame(seq, time.time(), frame))
        if source is not None:
            source.close()
