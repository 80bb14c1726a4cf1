"""A saved set of device frames: each `/v1/frame` message byte for byte as the device sent it (header with the
device's detections and timings, plus the lossless image), one file per frame.

A saved set makes a comparison repeatable on the very same pixels: `edge-console compare --save-frames DIR`
writes one, and the Compare panel's "Replay saved frames" compares it again, with any local model.

    <dir>/seq00000042.edgeframe

The format and its reader are core's (core/frame_file.py): `edge-bundle build --golden DIR` takes these files too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_console.core.errors import EdgeConsoleError
from edge_console.core.frame_file import SUFFIX, read_saved_frame
from edge_console.core.protocol import ProtocolError, StreamHeader

MAX_FRAMES_LOADED = 500  # a replay holds every frame in memory (~1 MB each at 640x480)


class SavedFramesError(EdgeConsoleError):
    """A saved set that cannot be read; the message names the folder or the file."""


def save_frame(folder: Path, seq: int, message: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"seq{seq:08d}{SUFFIX}"
    path.write_bytes(message)
    return path


def load_saved_frames(folder: Path) -> list[tuple[StreamHeader, np.ndarray]]:
    """Every saved frame in `folder`, in sequence order; SavedFramesError says what is wrong."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SavedFramesError(f"no saved frames: {folder} is not a folder")
    paths = sorted(folder.glob(f"*{SUFFIX}"))
    if not paths:
        raise SavedFramesError(f"{folder} holds no saved frames (*{SUFFIX} files, as written by "
                               "`edge-console compare --save-frames`)")
    if len(paths) > MAX_FRAMES_LOADED:
        raise SavedFramesError(f"{folder} holds {len(paths)} saved frames; replay at most {MAX_FRAMES_LOADED} at once")
    frames = []
    for path in paths:
        try:
            frames.append(read_saved_frame(path))
        except (OSError, ProtocolError) as exc:
            raise SavedFramesError(f"{path.name} in {folder} is not a saved device frame: {exc}") from exc
    return sorted(frames, key=lambda frame: frame[0].seq)
