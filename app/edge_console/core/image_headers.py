"""An image's own dimensions, read from its header before anything decodes it.

A device is untrusted input. A JPEG of a few kilobytes can declare 16384x16384 pixels: the decoder then allocates
the whole canvas (0.8 GB as BGR, another 1 GB as BGRA) before noticing that the data ends early, and a console
that decodes such frames 15 times a second is gone in seconds. The frame's header says how big its picture is;
the image's own header (JPEG SOF, BMP info header, PNG IHDR) says how big it really is. Both are read here, in
microseconds, and a frame whose image is larger than allowed, or than its header claims, is refused undecoded.
In core because more than the console reads device frames: `edge-bundle build` takes frames a console saved
(core/frame_file.py).
"""

from __future__ import annotations

import struct

from edge_console.core.protocol import ProtocolError, StreamHeader

# 8K UHD: beyond any camera the console supports. One such frame is 133 MB as BGRA; anything larger is refused.
MAX_FRAME_PIXELS = 7680 * 4320
MAX_FRAME_SIDE = 16384  # a frame this long on one side is not a camera's, whatever its area

# SOFn markers carry the frame's size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frame headers.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE_MARKERS = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn and TEM have no length field
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageSizeError(ProtocolError):
    """The image's header is missing, malformed, or declares a size the console refuses to decode."""


def jpeg_size(data: bytes | memoryview) -> tuple[int, int]:
    """(width, height) from a JPEG's frame header (SOFn), walking the marker segments up to it."""
    view = memoryview(data)
    if bytes(view[:2]) != b"\xff\xd8":
        raise ImageSizeError("the image is not a JPEG (no start-of-image marker)")
    i = 2
    while i + 4 <= len(view):
        if view[i] != 0xFF:
            raise ImageSizeError(f"the JPEG's marker segments are damaged at byte {i}")
        marker = view[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in _STANDALONE_MARKERS:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            break
        (length,) = struct.unpack_from(">H", view, i + 2)
        if marker in _SOF_MARKERS:
            if length < 8 or i + 9 > len(view):
                break
            height, width = struct.unpack_from(">HH", view, i + 5)
            if not width or not height:
                raise ImageSizeError(f"the JPEG declares a {width}x{height} frame")
            return width, height
        if length < 2:
            break
        i += 2 + length
    raise ImageSizeError("the JPEG has no frame header (SOF) before its image data")


def bmp_size(data: bytes | memoryview) -> tuple[int, int]:
    view = memoryview(data)
    if bytes(view[:2]) != b"BM" or len(view) < 26:
        raise ImageSizeError("the image is not a BMP")
    (info_size,) = struct.unpack_from("<I", view, 14)
    if info_size == 12:  # BITMAPCOREHEADER: 16-bit sizes
        width, height = struct.unpack_from("<HH", view, 18)
    else:
        width, height = struct.unpack_from("<ii", view, 18)
    height = abs(height)  # negative: rows stored top-down
    if width <= 0 or not height:
        raise ImageSizeError(f"the BMP declares a {width}x{height} image")
    return width, height


def png_size(data: bytes | memoryview) -> tuple[int, int]:
    view = memoryview(data)
    if bytes(view[:8]) != _PNG_SIGNATURE or len(view) < 24 or bytes(view[12:16]) != b"IHDR":
        raise ImageSizeError("the image is not a PNG (no signature and IHDR chunk)")
    width, height = struct.unpack_from(">II", view, 16)
    if not width or not height:
        raise ImageSizeError(f"the PNG declares a {width}x{height} image")
    return width, height


def lossless_image_size(data: bytes | memoryview) -> tuple[int, int]:
    """BMP (what /v1/frame sends by default) or PNG (?format=framed-png)."""
    head = bytes(memoryview(data)[:8])
    if head.startswith(b"BM"):
        return bmp_size(data)
    if head == _PNG_SIGNATURE:
        return png_size(data)
    raise ImageSizeError("the frame's image is neither BMP nor PNG")


def check_claimed_size(header: StreamHeader) -> None:
    """The frame header's own claim must be a camera's size."""
    if not (0 < header.width <= MAX_FRAME_SIDE and 0 < header.height <= MAX_FRAME_SIDE) \
            or header.width * header.height > MAX_FRAME_PIXELS:
        raise ImageSizeError(f"the frame header claims a {header.width}x{header.height} frame, beyond the "
                             f"{MAX_FRAME_PIXELS / 1e6:.0f}-megapixel limit")


def check_stream_jpeg(jpeg: bytes | memoryview, header: StreamHeader, max_width: int | None = None) -> tuple[int, int]:
    """Refuse a stream frame's JPEG, before decoding it, unless it is the frame its header describes: the same
    size, or that size scaled down by the agent to the `max_width` the console asked for (same aspect, the agent
    rounds the height to the nearest pixel). Returns the JPEG's (width, height)."""
    check_claimed_size(header)
    width, height = jpeg_size(jpeg)
    claim = f"its header says {header.width}x{header.height}"
    if width > header.width or height > header.height:
        raise ImageSizeError(f"the frame's JPEG is {width}x{height} but {claim}; refused undecoded")
    if width < header.width:
        if max_width and width != max_width:
            raise ImageSizeError(f"the frame's JPEG is {width}x{height}: {claim}, scaled to the "
                                 f"{max_width} px width asked for it would be {max_width} wide; refused undecoded")
        expected_height = round(header.height * width / header.width)
        if abs(height - expected_height) > 1:
            raise ImageSizeError(f"the frame's JPEG is {width}x{height}, not {claim} scaled down "
                                 f"({width}x{expected_height}); refused undecoded")
    elif height != header.height:
        raise ImageSizeError(f"the frame's JPEG is {width}x{height} but {claim}; refused undecoded")
    return width, height


def check_lossless_image(image: bytes | memoryview, header: StreamHeader) -> tuple[int, int]:
    """A lossless /v1/frame image is the very pixels the device inferred on: exactly its header's size."""
    check_claimed_size(header)
    width, height = lossless_image_size(image)
    if (width, height) != (header.width, header.height):
        raise ImageSizeError(f"the frame's image is {width}x{height} but its header says "
                             f"{header.width}x{header.height}; refused undecoded")
    return width, height
