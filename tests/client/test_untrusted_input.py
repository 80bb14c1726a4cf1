"""The Qt-free guards against what a device sends (issue 9 items 7 and 10, issue 10 item 5): an image's size read
from its own header before decoding, untrusted text made visible, and the bounded ring of received frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_console.client.frame_ring import FrameRing, ReceivedFrame
from edge_console.client.image_headers import (
    ImageSizeError,
    check_lossless_image,
    check_stream_jpeg,
    jpeg_size,
    lossless_image_size,
)
from edge_console.client.untrusted_text import escaped, plain_tooltip, visible_text
from edge_console.core.protocol import StreamHeader


def encoded(ext: str, width: int, height: int, params: list[int] | None = None) -> bytes:
    ok, data = cv2.imencode(ext, np.full((height, width, 3), 90, np.uint8), params or [])
    assert ok
    return data.tobytes()


def header(width: int, height: int) -> StreamHeader:
    return StreamHeader(seq=1, capture_ts=0.0, model_version="1", width=width, height=height)


def test_image_sizes_come_from_the_headers_of_real_files():
    assert jpeg_size(encoded(".jpg", 640, 480)) == (640, 480)
    assert jpeg_size(encoded(".jpg", 1280, 720, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])) == (1280, 720)  # SOF2
    with_exif = bytearray(encoded(".jpg", 320, 240))
    with_exif[2:2] = b"\xff\xe1" + (2 + 5000).to_bytes(2, "big") + b"E" * 5000  # a big APP1 segment first
    assert jpeg_size(bytes(with_exif)) == (320, 240)
    assert lossless_image_size(encoded(".bmp", 641, 479)) == (641, 479)
    assert lossless_image_size(encoded(".png", 33, 17)) == (33, 17)


def test_a_stream_jpeg_must_be_its_header_or_the_agents_scaling_of_it():
    check_stream_jpeg(encoded(".jpg", 640, 480), header(640, 480), max_width=1280)  # smaller than max_width
    check_stream_jpeg(encoded(".jpg", 1280, 720), header(1920, 1080), max_width=1280)  # scaled by the agent
    check_stream_jpeg(encoded(".jpg", 1280, 853), header(1920, 1280), max_width=1280)  # its rounding
    refused = [(encoded(".jpg", 1280, 960), header(640, 480), 1280),  # larger than claimed
               (encoded(".jpg", 640, 360), header(1920, 1080), 1280),  # not the width the console asked for
               (encoded(".jpg", 1280, 900), header(1920, 1080), 1280),  # another aspect
               (encoded(".jpg", 640, 480), header(640, 0), None),
               (encoded(".jpg", 64, 48), header(20000, 20000), None)]  # a claim beyond any camera
    for jpeg, claim, max_width in refused:
        with pytest.raises(ImageSizeError):
            check_stream_jpeg(jpeg, claim, max_width)


def test_a_lossless_image_must_be_exactly_its_header():
    check_lossless_image(encoded(".bmp", 640, 480), header(640, 480))
    with pytest.raises(ImageSizeError, match="640x481 but its header says 640x480"):
        check_lossless_image(encoded(".png", 640, 481), header(640, 480))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([b"", b"\xff\xd8", b"BM", b"\x89PNG\r\n\x1a\n"]))
def test_any_bytes_give_a_size_or_a_clear_refusal(data, prefix):
    for read in (jpeg_size, lossless_image_size):
        try:
            width, height = read(prefix + data)
        except ImageSizeError as exc:
            assert str(exc)
        else:
            assert width > 0 and height > 0


def test_untrusted_text_is_made_visible_and_escaped():
    name = "<b>x</b>\u202eevil\n\x00\x1b[31m\u200dok"
    shown = visible_text(name)
    assert shown == "<b>x</b>\u27e8U+202E\u27e9evil\u240a\u2400\u241b[31m\u200dok"  # ZWJ kept: scripts need it
    assert visible_text(shown) == shown
    assert escaped(name).startswith("&lt;b&gt;x&lt;/b&gt;")
    assert "<b>" not in plain_tooltip([name]) and plain_tooltip([name]).startswith("<p")
    assert visible_text("x" * 500, 10) == "x" * 9 + "…"


def test_the_frame_ring_is_bounded_by_count_and_bytes():
    ring = FrameRing(max_frames=5, max_bytes=1000)
    for seq in range(1, 11):
        ring.add(ReceivedFrame(StreamHeader(seq, 0.0, "1", 64, 48), b"m" * 100, float(seq)))
    assert [f.seq for f in ring.frames()] == [6, 7, 8, 9, 10] and ring.nbytes == 500
    ring.add(ReceivedFrame(StreamHeader(11, 0.0, "1", 64, 48), b"m" * 900, 11.0))
    assert [f.seq for f in ring.frames()] == [10, 11] and ring.nbytes == 1000  # the bytes bound
    shown = ring.frames()[0]
    assert ring.neighbour(shown.seq, shown.received_at, -1) is None
