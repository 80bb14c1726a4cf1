"""A saved device frame (`.edgeframe`): one `GET /v1/frame` message byte for byte, as the device sent it.

    4 bytes big-endian header length N | N bytes JSON header (core/protocol.py) | the lossless image (BMP or PNG)

`edge-console compare --save-frames DIR` writes one file per frame (client/compare/saved_frames.py); the Compare
panel replays them, and `edge-bundle build --golden DIR` takes them as golden frames. Read here, with core code
only, so the signing tool needs nothing of the console. Everything in such a file came from a device: the header
is parsed under the protocol's limits, and the image's own header must describe exactly the frame's pixels before
anything decodes it (a few bytes may claim a gigapixel).
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from edge_console.core.image_headers import MAX_FRAME_PIXELS, check_lossless_image
from edge_console.core.protocol import MAX_HEADER_BYTES, ProtocolError, StreamHeader, decode_frame_message

SUFFIX = ".edgeframe"
_LENGTH_PREFIX = struct.Struct(">I")
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the empty IEND chunk every PNG ends with
_IMAGE_SIGNATURE_BYTES = 8  # enough of the image for the protocol's parser to recognise it (JPEG, PNG or BMP)
# The largest frame worth reading (4 bytes a pixel covers BMP's row padding and PNG's filter bytes): a bigger file
# is refused before it is read.
MAX_SAVED_FRAME_BYTES = 4 * MAX_FRAME_PIXELS + _LENGTH_PREFIX.size + MAX_HEADER_BYTES


def decode_saved_frame(data: bytes) -> tuple[StreamHeader, np.ndarray]:
    """Header and BGR pixels of a saved frame (a `/v1/frame` message); ProtocolError says what is wrong."""
    if len(data) < _LENGTH_PREFIX.size:
        raise ProtocolError(f"{len(data)} bytes are too few for a frame's length prefix")
    (header_length,) = _LENGTH_PREFIX.unpack_from(data)
    image_at = _LENGTH_PREFIX.size + header_length
    # The protocol's parser checks the header and the image's signature on a prefix: the image is never copied.
    header, _signature = decode_frame_message(data[: image_at + _IMAGE_SIGNATURE_BYTES])
    check_lossless_image(memoryview(data)[image_at:], header)
    _check_complete(memoryview(data)[image_at:])
    image = cv2.imdecode(np.frombuffer(data, np.uint8, offset=image_at), cv2.IMREAD_COLOR)
    if image is None:
        raise ProtocolError("the frame's image cannot be decoded")
    if image.shape[:2] != (header.height, header.width):
        raise ProtocolError(f"the frame's image decoded to {image.shape[1]}x{image.shape[0]}, not the "
                            f"{header.width}x{header.height} it declares")
    return header, image


def _check_complete(image: memoryview) -> None:
    """A file cut short (a copy interrupted, a full disk) is named as such, before the decoder complains about it
    in its own words: a BMP is as long as its header says, a PNG ends with its IEND chunk."""
    if bytes(image[:2]) == b"BM":
        (declared,) = struct.unpack_from("<I", image, 2)
        if len(image) < declared:
            raise ProtocolError(f"its image is cut short: {len(image):,} of the {declared:,} bytes its BMP header "
                                "declares")
    elif bytes(image[-12:]) != _PNG_END:
        raise ProtocolError("its image is cut short: the PNG does not end with its IEND chunk")


def read_saved_frame(path: Path) -> tuple[StreamHeader, np.ndarray]:
    """`decode_saved_frame` of a file; OSError when it cannot be read, ProtocolError when it is not a frame."""
    with open(path, "rb") as f:
        data = f.read(MAX_SAVED_FRAME_BYTES + 1)
    if len(data) > MAX_SAVED_FRAME_BYTES:
        raise ProtocolError(f"it is larger than any frame ({MAX_SAVED_FRAME_BYTES:,} bytes at most)")
    return decode_saved_frame(data)
