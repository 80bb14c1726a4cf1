"""Fetch what the device says about itself and its newest inferred frame, losslessly (GET /v1/info, /v1/frame).

Coroutines for whichever loop awaits them: the console's network loop, or `asyncio.run` in `edge-console compare`.
Decoding the image runs in an executor, never on the loop, which also carries every other device's traffic.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import struct
from dataclasses import dataclass

import aiohttp
import cv2
import numpy as np

from edge_console.core.errors import EdgeConsoleError
from edge_console.core.protocol import FRAME_CONTENT_TYPE, ProtocolError, StreamHeader, decode_frame_message

from ..image_headers import check_lossless_image
from ..untrusted_text import visible_text

REQUEST_TIMEOUT_S = 10.0
FRAME_LENGTH_PREFIX = struct.Struct(">I")  # a frame message starts with its header's length (core.protocol)
IMAGE_SIGNATURE_BYTES = 8  # enough of the image for the parser to recognise it (JPEG, PNG or BMP)
NOT_AN_AGENT = "this is not an edge agent"


def _where(url: str) -> str:
    """The device as the user typed it (host:port), not the URL the console built from it."""
    return url.split("/v1/", 1)[0].removeprefix("http://").removeprefix("https://")


class DeviceFetchError(EdgeConsoleError):
    """The device could not be reached or answered with something unusable; the message says which."""


@dataclass(frozen=True, eq=False)
class DeviceFrame:
    """One inferred frame exactly as the device sent it: the header (with the device's detections of these very
    pixels), the pixels (BGR), and the message's bytes (what a saved set keeps)."""

    header: StreamHeader
    image: np.ndarray
    message: bytes


async def _get(session: aiohttp.ClientSession, url: str,
               timeout: float = REQUEST_TIMEOUT_S) -> tuple[int, str, bytes]:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            return r.status, r.content_type, await r.read()
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise DeviceFetchError(f"cannot reach the device at {_where(url)}: {_reach_error(exc)}. "
                               "Is it powered, on this network, and is the address right?") from exc


def _reach_error(exc: BaseException) -> str:
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused (nothing listens on that port)"
    if os_error is not None and getattr(os_error, "strerror", None):
        return str(os_error.strerror)
    return str(exc) or type(exc).__name__


def _device_error(status: int, body: bytes) -> str | None:
    """The agent's JSON error ("error: detail"), or None when the body is not one (an HTML page: not an agent)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    return visible_text(f"{data.get('error', '')}: {data.get('detail', '')}".strip(": "), 300)


async def fetch_info(session: aiohttp.ClientSession, base_url: str) -> dict:
    status, content_type, body = await _get(session, base_url + "/v1/info")
    where = _where(base_url + "/v1/")
    if status != 200:
        reason = _device_error(status, body)
        if reason is None:
            raise DeviceFetchError(f"{NOT_AN_AGENT} at {where}: /v1/info answered HTTP {status} with "
                                   f"{content_type or 'no content type'}, not an agent's JSON. Is the port right? "
                                   "(the agent listens on 8470 unless configured otherwise)")
        raise DeviceFetchError(f"the device at {where} answered /v1/info with HTTP {status}: {reason}")
    try:
        info = json.loads(body)
        info["model"]["classes"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DeviceFetchError(f"{NOT_AN_AGENT} at {where}: its /v1/info is not what an edge agent sends "
                               f"({type(exc).__name__}). Is the port right?") from exc
    return info


def decode_frame(body: bytes) -> tuple[StreamHeader, np.ndarray]:
    """Header and BGR pixels of a /v1/frame body; ProtocolError when it is not a valid frame.

    The protocol's own parser checks the header and the image's signature on a prefix of the message; the image
    (a megabyte of BMP) is then decoded straight from the body, never copied under the GIL, which a comparison's
    inference on another thread is waiting for (benchmarks/bench_compare.py)."""
    if len(body) < FRAME_LENGTH_PREFIX.size:
        raise ProtocolError(f"frame message of {len(body)} bytes is too short for its length prefix")
    (header_length,) = FRAME_LENGTH_PREFIX.unpack_from(body)
    image_at = FRAME_LENGTH_PREFIX.size + header_length
    header, _signature = decode_frame_message(body[: image_at + IMAGE_SIGNATURE_BYTES])
    # The image's own header (BMP or PNG) must describe exactly the frame's pixels, checked before decoding: a
    # few bytes claiming 16384x16384 would otherwise allocate a gigabyte.
    check_lossless_image(memoryview(body)[image_at:], header)
    image = cv2.imdecode(np.frombuffer(body, np.uint8, offset=image_at), cv2.IMREAD_COLOR)
    if image is None:
        raise ProtocolError("the frame's image cannot be decoded")
    if image.shape[:2] != (header.height, header.width):
        raise ProtocolError(f"the frame's image decoded to {image.shape[1]}x{image.shape[0]}, not the "
                            f"{header.width}x{header.height} it declares")
    return header, image


async def fetch_frame(session: aiohttp.ClientSession, base_url: str, after_seq: int = 0,
                      timeout: float = REQUEST_TIMEOUT_S) -> tuple[StreamHeader, np.ndarray]:
    """The newest inferred frame with a sequence number above `after_seq` (the device holds the request until then)."""
    frame = await fetch_device_frame(session, base_url, after_seq, timeout)
    return frame.header, frame.image


async def fetch_device_frame(session: aiohttp.ClientSession, base_url: str, after_seq: int = 0,
                             timeout: float = REQUEST_TIMEOUT_S,
                             executor: concurrent.futures.Executor | None = None) -> DeviceFrame:
    """As `fetch_frame`, plus the message exactly as the device sent it; the image is decoded on `executor` (None:
    the loop's default executor)."""
    # One long-poll request: the agent answers once it has a frame after #after_seq (or says why not).
    query = f"/v1/frame?after={after_seq}" if after_seq else "/v1/frame"
    status, content_type, body = await _get(session, base_url + query, timeout)
    if status != 200:
        reason = _device_error(status, body) or f"not an agent's answer ({content_type or 'no content type'})"
        raise DeviceFetchError(f"the device has no frame to compare (HTTP {status}): {reason}")
    if content_type != FRAME_CONTENT_TYPE:
        raise DeviceFetchError(f"the device sent {content_type or 'no content type'} for /v1/frame, "
                               f"not {FRAME_CONTENT_TYPE}")
    try:
        header, image = await asyncio.get_running_loop().run_in_executor(executor, decode_frame, body)
    except ProtocolError as exc:
        raise DeviceFetchError(f"the device sent a frame that cannot be used: {exc}") from exc
    return DeviceFrame(header, image, body)
