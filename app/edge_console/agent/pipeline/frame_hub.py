"""The asyncio side of the pipeline: the newest inferred frame, and its stream messages encoded once per setting.

Each frame is JPEG-encoded once per distinct (quality, max_width) that clients asked for, not once per client:
the first client to ask starts the encode in a worker thread, the others await the same future.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

import cv2

from edge_console.agent.pipeline.inference import InferredFrame
from edge_console.core.protocol import StreamHeader, encode_frame_message, header_bytes


def encode_jpeg(frame: InferredFrame, quality: int, max_width: int) -> bytes:
    image = frame.image
    h, w = image.shape[:2]
    if max_width and w > max_width:
        image = cv2.resize(image, (max_width, round(h * max_width / w)), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    header = StreamHeader(frame.seq, frame.capture_ts, frame.model_version, w, h, frame.timings, frame.detections)
    return encode_frame_message(header_bytes(header), jpeg.tobytes())


class FrameHub:
    """Created on the event loop; `publish` is called there (via call_soon_threadsafe from the inference thread)."""

    def __init__(self, executor: Executor):
        self.executor = executor
        self.latest: InferredFrame | None = None
        self._event = asyncio.Event()
        self._messages: dict[tuple[int, int, int], asyncio.Future[bytes]] = {}
        self.encodes = 0  # how many JPEG encodes ran: tests check it does not grow with the client count

    def publish(self, frame: InferredFrame) -> None:
        self.latest = frame
        # Messages of older frames are never sent again: drop them so memory stays one frame deep.
        self._messages = {k: v for k, v in self._messages.items() if k[0] == frame.seq}
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_newer(self, seq: int) -> InferredFrame:
        while self.latest is None or self.latest.seq <= seq:
            await self._event.wait()
        return self.latest

    async def message(self, frame: InferredFrame, quality: int, max_width: int) -> bytes:
        key = (frame.seq, quality, max_width)
        future = self._messages.get(key)
        if future is None:
            self.encodes += 1
            future = asyncio.get_running_loop().run_in_executor(self.executor, encode_jpeg, frame, quality, max_width)
            if self.latest is not None and frame.seq == self.latest.seq:
                self._messages[key] = future
        return await asyncio.shield(future)
