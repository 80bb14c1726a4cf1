"""The frames that fell below the agreement threshold, kept to step through and to export for retraining.

Bounded twice: by count and by the bytes of their pixels, since a 1080p frame weighs seven times a 640x480 one
and a continuous run may last a shift. The oldest go first.
"""

from __future__ import annotations

from collections import deque

from edge_console.core.detection.comparison import FrameComparison
from edge_console.core.detection.yolo_dataset import LabelledFrame

MAX_HARD_FRAMES = 200
MAX_HARD_FRAME_BYTES = 400 * 1024 * 1024


def file_stem(name: str) -> str:
    """A device name made safe for file names ("Packing line 2" -> "Packing-line-2")."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name).strip("-") or "device"


class HardFrames:
    def __init__(self, max_frames: int = MAX_HARD_FRAMES, max_bytes: int = MAX_HARD_FRAME_BYTES) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._frames: deque[FrameComparison] = deque()
        self._bytes = 0
        self.dropped = 0  # pushed out by the bounds; shown, so nobody thinks the list is everything

    def __len__(self) -> int:
        return len(self._frames)

    def __iter__(self):
        return iter(self._frames)

    def add(self, comparison: FrameComparison) -> list[FrameComparison]:
        """Keep `comparison` (it must carry its image); returns the frames dropped to make room."""
        if comparison.image is None:
            raise ValueError("a hard frame needs its pixels (compare with keep_image=True)")
        self._frames.append(comparison)
        self._bytes += comparison.image.nbytes
        dropped = []
        while len(self._frames) > 1 and (len(self._frames) > self.max_frames or self._bytes > self.max_bytes):
            old = self._frames.popleft()
            self._bytes -= old.image.nbytes if old.image is not None else 0
            dropped.append(old)
        self.dropped += len(dropped)
        return dropped

    def clear(self) -> None:
        self._frames.clear()
        self._bytes = 0
        self.dropped = 0

    def labelled(self, device_name: str) -> list[LabelledFrame]:
        """The frames as a YOLO export wants them, labelled with the local model's boxes (the reference)."""
        stem = file_stem(device_name)
        labelled, used = [], set()
        for f in self._frames:
            name = f"{stem}-seq{f.seq:08d}"
            if name in used:  # a device that restarted counts its frames from 1 again: never overwrite a frame
                name += f"-{len(labelled)}"
            used.add(name)
            labelled.append(LabelledFrame(name, f.image, f.local))
        return labelled
