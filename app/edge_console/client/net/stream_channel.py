"""The stream channel of a device session: `WS /v1/stream`, opened only while some view shows the device, each
message decoded on the decoder pool (never on the loop, never on the GUI thread) and handed to the listener.
Reconnects by itself with its own backoff; its owner (`device_session.DeviceSession`) starts and cancels it and
wakes its backoff when the control channel finds the device again. No Qt here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time

import aiohttp

from edge_console.client.net.backoff import Backoff
from edge_console.client.net.device_access import ssl_arg
from edge_console.client.net.device_answers import UnreadableAnswer, parse_json
from edge_console.client.net.device_link import DeviceLink
from edge_console.client.net.session_terms import Decoder, DeviceRefused
from edge_console.client.untrusted_text import visible_text
from edge_console.core.protocol import ProtocolError

MAX_STREAM_MESSAGE = 32 * 1024 * 1024
# A refused stream (the device at its client limit) is retried at the stream's own backoff, at least this far apart.
REFUSED_STREAM_RETRY_S = 5.0


class StreamChannel:
    def __init__(self, link: DeviceLink, decoder: Decoder, decode_pool: concurrent.futures.Executor | None,
                 params: dict[str, int], backoff: Backoff, wait_for_reach: bool) -> None:
        """`wait_for_reach`: connect only once the control channel knows how the device may be reached (pinned, or
        lab mode); without trust there is nothing to find out first."""
        self._link = link
        self._decoder = decoder
        self._decode_pool = decode_pool
        self._params = params
        self.backoff = backoff
        self._wait_for_reach = wait_for_reach
        self._frame_problem = ""  # why the last stream frame was refused, until one is shown again

    async def run(self) -> None:
        """Connect, read, and on any end connect again after the backoff, until cancelled."""
        listener = self._link.listener
        while True:
            delay = None
            failure: Exception | None = None
            try:
                await self._connect_once()
            except asyncio.CancelledError:
                listener.on_stream_state(False, "stream stopped")
                raise
            except aiohttp.WSServerHandshakeError as exc:
                failure = refusal = await self._link.refusal("/v1/stream", exc)
                if isinstance(refusal, DeviceRefused):
                    delay = max(self.backoff.next_delay(), REFUSED_STREAM_RETRY_S)
            except Exception as exc:  # whatever it is, the preview says so and the stream is retried (see failure)
                failure = exc
            delay = self.backoff.next_delay() if delay is None else delay
            reason = "stream closed by the device" if failure is None else self._link.failure("stream", failure, delay)
            listener.on_stream_state(False, reason)
            await self.backoff.sleep(delay)

    async def _connect_once(self) -> None:
        link, listener = self._link, self._link.listener
        query = "&".join(f"{k}={v}" for k, v in self._params.items())
        if self._wait_for_reach:
            listener.on_stream_state(False, "waiting for the device's connection")
            await link.ready.wait()
        url = link.base_url + "/v1/stream" + (f"?{query}" if query else "")
        loop = asyncio.get_running_loop()
        async with link.http.ws_connect(url, ssl=ssl_arg(link.tls), timeout=aiohttp.ClientWSTimeout(ws_receive=None,
                                                                                                ws_close=0.5),
                                        heartbeat=5.0, max_msg_size=MAX_STREAM_MESSAGE) as ws:
            self._frame_problem = ""
            listener.on_stream_state(True, "")
            self.backoff.reset()
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    try:
                        # Awaiting each decode before reading on keeps at most one frame in flight per device:
                        # a slow console reads slower and the agent sends it fewer frames, never a backlog.
                        frame = await loop.run_in_executor(self._decode_pool, self._decoder, msg.data, time.time())
                    except ProtocolError as exc:
                        link.report_bad_data("stream", str(exc))
                        if not self._frame_problem:  # the preview says why its picture does not move (once)
                            self._frame_problem = str(exc)
                            listener.on_stream_state(True, f"frames refused: {exc}")
                        continue
                    if self._frame_problem:
                        self._frame_problem = ""
                        listener.on_stream_state(True, "")
                    listener.on_frame(frame)
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    try:
                        data = parse_json(msg.data, "a stream text message")
                    except UnreadableAnswer:
                        data = None
                    if not (data is not None and data.get("type") == "pong"):
                        link.report_bad_data("stream", f"unexpected text message {visible_text(msg.data, 80)}")
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    raise aiohttp.ClientError(str(ws.exception() or "WebSocket error"))
