"""Fetch what the device says about itself and its newest inferred frame, losslessly (GET /v1/info, /v1/frame).

Coroutines for whichever loop awaits them: the console's network loop, or `asyncio.run` in `edge-console compare`.
Decoding the image runs in an executor, never on the loop, which also carries every other device's traffic.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass

import aiohttp
import numpy as np

from edge_console.client.net.device_answers import MAX_ANSWER_BYTES, NOT_JSON, UnreadableAnswer, parse_json, read_body
from edge_console.client.untrusted_text import visible_text
from edge_console.core.errors import EdgeConsoleError
from edge_console.core.frame_file import MAX_SAVED_FRAME_BYTES, decode_saved_frame
from edge_console.core.protocol import (
    FRAME_CONTENT_TYPE,
    ProtocolError,
    StreamHeader,
)

REQUEST_TIMEOUT_S = 10.0
NOT_AN_AGENT = "this is not an edge agent"
# The largest lossless frame the console takes (as a saved frame: core/frame_file.py), read no further: the
# frame's own checks come after it is read.
MAX_FRAME_BYTES = MAX_SAVED_FRAME_BYTES


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


async def _get(session: aiohttp.ClientSession, url: str, timeout: float = REQUEST_TIMEOUT_S,
               limit: int = MAX_ANSWER_BYTES) -> tuple[int, str, bytes]:
    """Status, content type and body (at most `limit` bytes, else UnreadableAnswer as DeviceFetchError)."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            return r.status, visible_text(r.content_type, 80), await read_body(r, limit=limit)
    except UnreadableAnswer as exc:
        raise DeviceFetchError(f"{exc}; is this the right device?") from None
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
        data = parse_json(body, "an error answer")
    except UnreadableAnswer:
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
        info = parse_json(body, "/v1/info")
    except UnreadableAnswer as exc:
        if exc.kind == NOT_JSON:
            raise DeviceFetchError(f"{NOT_AN_AGENT} at {where}: its /v1/info is not JSON. Is the port right?") from None
        raise DeviceFetchError(str(exc)) from None
    problem = _model_problem(info.get("model"))
    if problem:
        raise DeviceFetchError(f"{NOT_AN_AGENT} at {where}: its /v1/info is not what an edge agent sends "
                               f"({problem}). Is the port right?")
    return info


def _model_problem(model: object) -> str:
    """What is wrong with /v1/info's "model" for a comparison ("" when nothing): the comparison looks the model up
    in the library by these fields and maps its classes by name."""
    if not isinstance(model, dict):
        return "no model object"
    classes = model.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        return "its model's classes are not a list of names"
    for key in ("name", "version", "sha256"):
        if model.get(key) is not None and not isinstance(model[key], str):
            return f"its model's {key} is not text"
    return ""


def decode_frame(body: bytes) -> tuple[StreamHeader, np.ndarray]:
    """Header and BGR pixels of a /v1/frame body; ProtocolError when it is not a valid frame. The same reader as a
    saved frame's (a saved frame is this very message): the header and the image's own header are checked on a
    prefix before anything decodes it, and the image is decoded straight from the body, never copied under the GIL,
    which a comparison's inference on another thread is waiting for (benchmarks/bench_compare.py)."""
    return decode_saved_frame(body)


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
    status, content_type, body = await _get(session, base_url + query, timeout, MAX_FRAME_BYTES)
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
