"""The recent frames of one previewed device, so a paused preview steps through what was received, frame by frame.

Qt-free. What is kept is each stream message as it arrived (header + JPEG, ~40 kB at 640x480), not its decoded
pixels (1.2 MB as BGRA at 640x480, 3.7 MB at 1280x720): a frame stepped to is decoded again, off the GUI thread.
Bounded twice, the oldest going first: FRAME_RING_FRAMES frames (10 s of the agent's default 15 fps) and
FRAME_RING_BYTES of messages, so a device sending large frames keeps fewer of them, never more memory.
Filled from the network loop's thread as frames are decoded, read on the GUI thread: one lock.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from edge_console.core.protocol import StreamHeader

FRAME_RING_FRAMES = 150
FRAME_RING_BYTES = 12 * 1024 * 1024  # per previewed device: at most 12 MiB of received messages


@dataclass(frozen=True, eq=False)
class ReceivedFrame:
    """One frame as it arrived: enough to decode it again and to say which frame it is."""

    header: StreamHeader
    message: bytes
    received_at: float

    @property
    def seq(self) -> int:
        return self.header.seq


class FrameRing:
    def __init__(self, max_frames: int = FRAME_RING_FRAMES, max_bytes: int = FRAME_RING_BYTES) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._frames: deque[ReceivedFrame] = deque()
        self._bytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    def add(self, frame: ReceivedFrame) -> None:
        with self._lock:
            self._frames.append(frame)
            self._bytes += len(frame.message)
            while len(self._frames) > 1 and (len(self._frames) > self.max_frames or self._bytes > self.max_bytes):
                self._bytes -= len(self._frames.popleft().message)

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._bytes = 0

    def frames(self) -> list[ReceivedFrame]:
        with self._lock:
            return list(self._frames)

    def neighbour(self, seq: int, received_at: float, step: int) -> ReceivedFrame | None:
        """The frame received `step` frames after (or, negative, before) the one with this seq and arrival time;
        None when there is none (the newest, or older than what is kept)."""
        with self._lock:
            frames = list(self._frames)
        for i, frame in enumerate(frames):
            if frame.seq == seq and frame.received_at == received_at:
                j = i + step
                return frames[j] if 0 <= j < len(frames) else None
        # The shown frame has aged out: stepping back finds nothing older; stepping on starts at the oldest kept.
        return frames[0] if step > 0 and frames else None
