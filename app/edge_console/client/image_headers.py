"""An image's own dimensions, read from its header before anything decodes it: now in core
(`edge_console.core.image_headers`), where `edge-bundle` reads the frames a console saved too. The console's
modules import it from here."""

from edge_console.core.image_headers import (  # noqa: F401 - re-exported
    MAX_FRAME_PIXELS,
    MAX_FRAME_SIDE,
    ImageSizeError,
    bmp_size,
    check_claimed_size,
    check_lossless_image,
    check_stream_jpeg,
    jpeg_size,
    lossless_image_size,
    png_size,
)
