"""Frame sources: a camera index, a video file (looped), an RTSP/HTTP stream, or the synthetic conveyor scene.

Each source is opened and read from the capture thread only. `read()` returns a BGR frame or raises SourceError
with a reason a person can act on; the capture thread then retries with backoff.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np

from edge_console.core.scene.conveyor import ConveyorScene


class SourceError(Exception):
    pass


@dataclass(frozen=True)
class SourceSpec:
    """What the user asked for: `0` (camera index), a file path, `rtsp://...`/`http://...`, or `synthetic`."""

    value: str
    fps: float = 15.0  # pace for synthetic and file sources; cameras and streams pace themselves
    width: int = 640  # synthetic only
    height: int = 480
    seed: int = 0

    @property
    def kind(self) -> str:
        v = self.value.strip()
        if v == "synthetic":
            return "synthetic"
        if v.isdigit():
            return "camera"
        if "://" in v:
            return "stream"
        return "file"

    def describe(self) -> dict:
        """What the API and the logs may say about the source: no credentials, no query, no folder names."""
        text = {
            "synthetic": f"synthetic conveyor scene {self.width}x{self.height} @ {self.fps:g} fps (seed {self.seed})",
            "camera": f"camera {self.value}",
            "stream": redact_url(self.value),
            "file": f"video file {Path(self.value).name} (looped)",
        }[self.kind]
        return {"kind": self.kind, "description": text}


def redact_url(url: str) -> str:
    """A camera URL without what may be secret: user and password (which may themselves hold '@', ':' or
    '%40'), the query (`?user=admin&password=...`) and the fragment. Parsed, never pattern-matched."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # an unparseable URL: say nothing of it rather than leak part of it
        return "stream (address not shown: it could not be parsed)"
    if ":" in host:
        host = f"[{host}]"
    hidden = " (credentials hidden)" if parts.username or parts.password or parts.query else ""
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path}{hidden}"


class Pacer:
    """Sleeps so frames come no faster than `fps`, without drifting when a frame took long."""

    def __init__(self, fps: float):
        self.period = 1.0 / fps if fps > 0 else 0.0
        self.next_at = time.monotonic()

    def wait(self) -> None:
        if not self.period:
            return
        now = time.monotonic()
        if self.next_at > now:
            time.sleep(self.next_at - now)
        self.next_at = max(self.next_at + self.period, time.monotonic() - self.period)


class SyntheticSource:
    def __init__(self, spec: SourceSpec):
        self.scene = ConveyorScene(width=spec.width, height=spec.height, seed=spec.seed)
        self.pacer = Pacer(spec.fps)
        self.index = 0

    def read(self) -> np.ndarray:
        self.pacer.wait()
        frame, _ = self.scene.frame(self.index)
        self.index += 1
        return frame

    def close(self) -> None:
        pass


class OpenCVSource:
    """Camera, file or network stream through cv2.VideoCapture; a file is looped from the start at its end."""

    def __init__(self, spec: SourceSpec):
        self.spec = spec
        kind = spec.kind
        if kind == "file" and not Path(spec.value).is_file():
            raise SourceError(f"video file not found: {spec.value}")
        target = int(spec.value) if kind == "camera" else spec.value
        self.cap = cv2.VideoCapture(target)
        if not self.cap.isOpened():
            hint = {"camera": "is it plugged in, and is no other program using it?",
                    "stream": "is the address right and the camera reachable?",
                    "file": "is it a video format OpenCV can read?"}[kind]
            raise SourceError(f"cannot open {spec.describe()['description']}: {hint}")
        file_fps = self.cap.get(cv2.CAP_PROP_FPS) if kind == "file" else 0
        self.pacer = Pacer(file_fps if 0 < file_fps < 240 else spec.fps) if kind == "file" else None

    def read(self) -> np.ndarray:
        if self.pacer:
            self.pacer.wait()
        ok, frame = self.cap.read()
        if not ok and self.spec.kind == "file":
            # Reopen rather than seek: a file removed or replaced on disk shows up at the next loop.
            self.cap.release()
            if not Path(self.spec.value).is_file():
                raise SourceError(f"video file not found: {self.spec.value}")
            self.cap = cv2.VideoCapture(self.spec.value)
            ok, frame = self.cap.read()
        if not ok or frame is None:
            raise SourceError(f"{self.spec.describe()['description']}: no frame (unplugged, stream dropped or file unreadable)")
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        return frame

    def close(self) -> None:
        self.cap.release()


def open_source(spec: SourceSpec):
    return SyntheticSource(spec) if spec.kind == "synthetic" else OpenCVSource(spec)
