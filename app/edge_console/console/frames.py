"""Turning one stream message into something the GUI thread can paint at once; runs on a decoder thread.

The GUI thread must only paint, so everything costly happens here: splitting the message (protocol.py),
`cv2.imdecode`, and the BGR -> BGRA conversion that makes the pixels a zero-copy `QImage.Format_RGB32`
(the format Qt's raster engine draws fastest; BGRA bytes are 0xAARRGGBB words on the little-endian machines we
target). QImage, unlike QPixmap, may be created off the GUI thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtGui import QImage

from edge_console.client.image_headers import check_stream_jpeg
from edge_console.core.protocol import ProtocolError, StreamHeader, decode_frame_message


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One frame and the detections of that very frame, ready to paint. Boxes stay in SOURCE pixels."""

    header: StreamHeader
    image: QImage  # the JPEG as sent, possibly downscaled by the agent (max_width)
    pixels: np.ndarray  # keeps the buffer `image` points into alive
    received_at: float  # console clock, s since the epoch
    message: bytes  # the stream message as received (header + JPEG): what the frame ring keeps to step back to

    @property
    def box_scale(self) -> tuple[float, float]:
        """Factors from the header's source-frame pixels to this JPEG's pixels."""
        h = self.header
        return (self.image.width() / h.width if h.width else 1.0, self.image.height() / h.height if h.height else 1.0)


def decode_jpeg_bgra(jpeg: bytes) -> np.ndarray:
    pixels = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ProtocolError(f"JPEG of {len(jpeg)} bytes does not decode")
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2BGRA)


def decode_stream_message(data: bytes, received_at: float, max_width: int | None = None) -> DecodedFrame:
    """Header + JPEG -> DecodedFrame; ProtocolError for anything that is not a well-formed frame message.

    The JPEG's own size is checked against its header (and the `max_width` the console asked the agent to scale
    to) BEFORE decoding: a small JPEG that declares a huge canvas is refused without allocating it."""
    header, jpeg = decode_frame_message(data)
    expected = check_stream_jpeg(jpeg, header, max_width)
    pixels = decode_jpeg_bgra(jpeg)
    height, width = pixels.shape[:2]
    if (width, height) != expected:  # the SOF header is what libjpeg decodes to; anything else is corrupt
        raise ProtocolError(f"the frame's JPEG decoded to {width}x{height}, not the {expected[0]}x{expected[1]} "
                            "it declares")
    image = QImage(pixels.data, width, height, pixels.strides[0], QImage.Format.Format_RGB32)
    return DecodedFrame(header, image, pixels, received_at, data)


class LatestFrameSlot:
    """Holds only the newest decoded frame of a device and says when the GUI needs a wake-up.

    Why: frames arrive faster than a busy GUI may paint; queueing a signal per frame would grow the event queue
    without bound. The decoder overwrites the slot and posts a notification only if none is pending, so at most
    one wake-up per device sits in the GUI's queue and the GUI always takes the newest frame.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: DecodedFrame | None = None
        self._notify_pending = False
        self.replaced_unseen = 0  # frames overwritten before the GUI took them (the console's own drops)

    def put(self, frame: DecodedFrame) -> bool:
        """Store `frame`; True when the caller must notify the GUI thread."""
        with self._lock:
            if self._frame is not None:
                self.replaced_unseen += 1
            self._frame = frame
            if self._notify_pending:
                return False
            self._notify_pending = True
            return True

    def take(self) -> DecodedFrame | None:
        with self._lock:
            frame, self._frame = self._frame, None
            self._notify_pending = False
            return frame
