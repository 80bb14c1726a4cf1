"""Everything the console does with one device over the network, as tasks on the network loop.

Two independent channels, each reconnecting by itself with backoff:
- control: `GET /v1/info` (identity, API version), clock pings, `/v1/health`, the telemetry WebSocket, and on
  every (re)connect a history fill from `/v1/telemetry/history` so charts have no hole the device could fill;
- stream: `WS /v1/stream`, opened only while some view shows the device; each message is decoded on the decoder
  pool (never on the loop, never on the GUI thread) and handed on as a `DecodedFrame`.
All results go to a `session_terms.SessionListener` (called on the loop thread); no Qt here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.backoff import Backoff, reconnect_policy
from edge_console.client.net.device_access import CertificateChanged, NoLongerPaired, NotAnAgentAnswer, reach, ssl_arg
from edge_console.client.net.device_answers import NOT_JSON, UnreadableAnswer, parse_json, read_error_detail, read_json
from edge_console.client.net.device_clock import DeviceClock
from edge_console.client.net.device_info import (
    ProtocolMismatch,
    check_device_info,
    check_health,
    check_telemetry_sample,
)
from edge_console.client.net.session_terms import (
    Decoder,
    DeviceRefused,
    NotAnAgent,
    SessionListener,
    TrustProblem,
    describe_error,
)
from edge_console.client.untrusted_text import visible_text
from edge_console.core.backoff import BackoffPolicy
from edge_console.core.protocol import ClockSample, ProtocolError

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=5, connect=3)
TELEMETRY_SILENCE_S = 5.0  # the agent sends a sample every second; this long without one means it is gone
PING_PERIOD_S = 2.0
HISTORY_PAGE = 600
HISTORY_SPAN_S = 3600.0  # the longest chart window; older samples are never drawn
BAD_DATA_REPORT_PERIOD_S = 5.0
MAX_STREAM_MESSAGE = 32 * 1024 * 1024
# A device at its client limit refuses the telemetry WebSocket: the console then polls health and the newest
# telemetry over plain HTTP this often (the device stays online), and tries the WebSocket again every
# TELEMETRY_RETRY_S. A refused stream is retried at the stream's own backoff, at least REFUSED_STREAM_RETRY_S apart.
POLL_PERIOD_S = 2.0
TELEMETRY_RETRY_S = 15.0
REFUSED_STREAM_RETRY_S = 5.0


NOT_PAIRED_RECHECK_S = 30.0  # an unpaired device is asked again this often (pairing reconnects at once)
UNEXPECTED_LOG_PERIOD_S = 600.0  # an unexpected failure is logged with its traceback at most this often per channel

log = logging.getLogger(__name__)


class DeviceSession:
    def __init__(self, http: aiohttp.ClientSession, address: DeviceAddress, listener: SessionListener,
                 decoder: Decoder, decode_pool: concurrent.futures.Executor | None,
                 stream_params: dict[str, int] | None = None,
                 backoff_policy: Callable[[], BackoffPolicy] = reconnect_policy, trust=None) -> None:
        """`trust`: the console's `trust_store.ConsoleTrust` (HTTPS, pinned devices); None: plain HTTP only."""
        self.address = address
        self._trust = trust
        self._base = address.base_url  # set on each connection by what the device turns out to be
        self._tls = None
        self._ready = asyncio.Event()  # the control channel has reached the device as it may be reached
        self._http = http
        self._listener = listener
        self._decoder = decoder
        self._decode_pool = decode_pool
        self._stream_params = stream_params or {}
        self._control_backoff = Backoff(backoff_policy())
        self._stream_backoff = Backoff(backoff_policy())
        self.clock = DeviceClock()
        self._last_sample_ts: float | None = None  # agent clock; where the next history fill starts
        self._control_task: asyncio.Task | None = None
        self._stream_task: asyncio.Task | None = None
        self._last_bad_report: dict[str, float] = {}  # per channel, so a flood on one cannot mute the others
        self._bad_since_report: dict[str, int] = {}
        self._telemetry_refused = ""  # the device's reason while it refuses the telemetry WebSocket
        self._frame_problem = ""  # why the last stream frame was refused, until one is shown again
        self._last_unexpected_log: dict[str, float] = {}
        self._model_sha256 = ""  # of the model /v1/info last described: a sample naming another one re-reads it
        self._info_refresh: asyncio.Task | None = None

    # -- called on the loop thread by the owner -------------------------------------------------------------

    def start(self) -> None:
        self._control_task = asyncio.get_running_loop().create_task(self._control_loop(), name=f"control {self.address}")

    def set_stream_wanted(self, wanted: bool) -> None:
        if wanted and self._stream_task is None:
            self._stream_task = asyncio.get_running_loop().create_task(self._stream_loop(), name=f"stream {self.address}")
        elif not wanted and self._stream_task is not None:
            self._stream_task.cancel()
            self._stream_task = None

    def set_address(self, address: DeviceAddress) -> None:
        """The device moved (re-announced on another port or host): talk to the new address at once."""
        if address != self.address:
            self.address = address
            self._ready.clear()
            self.reconnect_now()

    def reconnect_now(self) -> None:
        """Drop the current connections and connect again without waiting out any backoff."""
        loop = asyncio.get_running_loop()
        self._control_backoff.reset()
        self._stream_backoff.reset()
        if self._control_task is not None:
            self._control_task.cancel()
            self._control_task = loop.create_task(self._control_loop(), name=f"control {self.address}")
        if self._stream_task is not None:
            self._stream_task.cancel()
            self._stream_task = loop.create_task(self._stream_loop(), name=f"stream {self.address}")

    async def close(self) -> None:
        tasks = [t for t in (self._control_task, self._stream_task, self._info_refresh) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._control_task = self._stream_task = self._info_refresh = None

    # -- control channel --------------------------------------------------------------------------------------

    async def _control_loop(self) -> None:
        while True:
            failure: Exception | None = None
            try:
                if await self._control_once():
                    continue  # polled while refused: try the WebSocket again at once
            except asyncio.CancelledError:
                raise
            except ProtocolMismatch as exc:
                self._listener.on_connection(False, f"protocol mismatch: {exc}")
                await self._control_backoff.sleep(30.0)  # a different API version will not change in seconds
                continue
            except TrustProblem as exc:
                self._ready.clear()
                self._listener.on_connection(False, str(exc))
                await self._control_backoff.sleep(NOT_PAIRED_RECHECK_S)  # pairing wakes it at once
                continue
            except Exception as exc:  # whatever it is, the session says so and retries (see _failure)
                failure = exc
            self._ready.clear()
            delay = self._control_backoff.next_delay()
            reason = "connection closed by the device" if failure is None else self._failure("connection", failure,
                                                                                             delay)
            self._listener.on_connection(False, reason)
            await self._control_backoff.sleep(delay)

    def _failure(self, channel: str, exc: Exception, delay: float) -> str:
        """Why a channel's connection ended, in the words `describe_error` has for it. An answer the console cannot
        read, or a failure nobody expected (a bug, or an answer nobody thought of), comes back at every retry while
        the device answers as it does: it also goes to the device's error list (rate-limited), an unexpected one to
        the log with its traceback (at most every UNEXPECTED_LOG_PERIOD_S), and the reason says when the next try
        is, so whoever looks knows the console has not given up."""
        if isinstance(exc, UnreadableAnswer):
            reason = describe_error(exc)
        elif isinstance(exc, aiohttp.ClientError | OSError | TimeoutError | ValueError):
            return describe_error(exc)  # the network or the device's data, as expected: the usual words
        else:
            now = time.monotonic()
            if now - self._last_unexpected_log.get(channel, -1e9) >= UNEXPECTED_LOG_PERIOD_S:
                self._last_unexpected_log[channel] = now
                log.error("device %s: unexpected failure on the %s channel; retrying with backoff", self.address,
                          channel, exc_info=exc)
            reason = (f"unexpected failure while talking to the device ({exc.__class__.__name__}: "
                      f"{visible_text(exc, 200)})")
        self._report_bad_data(channel, reason)
        return f"{reason}; retrying in {max(delay, 1.0):.0f} s"

    async def _get_json(self, path: str, ok_statuses: tuple[int, ...] = (200,)) -> Any:
        async with self._http.get(self._base + path, ssl=ssl_arg(self._tls), timeout=REQUEST_TIMEOUT) as resp:
            if resp.status not in ok_statuses:
                if path == "/v1/info" and resp.status in (401, 403, 404, 405):
                    raise NotAnAgent(f"this is not an edge agent: {self.address} answered /v1/info with HTTP "
                                     f"{resp.status} {visible_text(resp.reason, 80)}".rstrip()
                                     + " (another program on this port?)")
                raise aiohttp.ClientResponseError(resp.request_info, resp.history, status=resp.status,
                                                  message=resp.reason or "")
            try:
                return await read_json(resp, path.split("?", 1)[0], expect=None)
            except UnreadableAnswer as exc:
                if path == "/v1/info" and exc.kind == NOT_JSON:
                    raise NotAnAgent(f"this is not an edge agent: {self.address} did not answer JSON on /v1/info "
                                     f"({visible_text(resp.content_type, 80) or 'no content type'})") from exc
                raise

    async def _reach(self) -> None:
        """Find out how this device may be reached (HTTPS pinned, not paired, changed, insecure) and report its
        checked /v1/info, then its trust: whoever sees the trust known also finds the device's identity known.
        TrustProblem when it may not be talked to beyond that."""
        if self._trust is None:
            self._base, self._tls = self.address.base_url, None
            self._report_info(check_device_info(await self._get_json("/v1/info")))
            return
        try:
            access = await reach(self._http, self.address, self._trust.contexts, self._trust.pin_for)
        except CertificateChanged as exc:
            self._listener.on_trust("certificate changed", str(exc))
            raise TrustProblem("certificate changed", f"certificate changed: {exc}") from None
        except NoLongerPaired as exc:
            self._listener.on_trust("no longer paired", str(exc))
            raise TrustProblem("no longer paired", str(exc)) from None
        except NotAnAgentAnswer as exc:
            raise NotAnAgent(f"this is not an edge agent: {self.address} {exc}") from None
        self._base, self._tls = access.base_url, access.tls
        self._report_info(check_device_info(access.info))
        if access.info.get("insecure_lab_mode"):
            self._listener.on_trust("insecure lab mode", "the device runs in insecure lab mode: plain HTTP, "
                                                         "no pairing, every route open to anyone on its network")
        elif access.pin is None:
            self._listener.on_trust("not paired", "")
            raise TrustProblem("not paired", "not paired: pair this console with the device (Pair…) to see it")
        else:
            self._listener.on_trust(str(access.role), "")

    async def _refusal(self, path: str, handshake: aiohttp.WSServerHandshakeError) -> Exception:
        """Why the device refused a WebSocket: the handshake error does not carry the body, so the same URL is
        asked again as a plain GET, which the agent refuses with the same JSON reason."""
        if handshake.status != 503:
            return handshake
        try:
            async with self._http.get(self._base + path, ssl=ssl_arg(self._tls), timeout=REQUEST_TIMEOUT) as resp:
                reason = await read_error_detail(resp, ("error",))  # the short reason: "too many clients (limit 32)"
        except (aiohttp.ClientError, OSError, TimeoutError):
            reason = ""
        return DeviceRefused(visible_text(reason, 200) or "HTTP 503 (busy)")

    async def _control_once(self) -> bool:
        """One connection of the control channel; True when it ended a round of polling a device that refused
        the telemetry WebSocket (no failure: the caller asks again at once)."""
        await self._reach()
        self._ready.set()
        await self._sync_clock()
        self._listener.on_health(check_health(await self._get_json("/v1/health", (200, 503))))
        url = self._base + "/v1/telemetry"
        try:
            ws_context = await self._http.ws_connect(
                url, ssl=ssl_arg(self._tls), timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=0.5), heartbeat=None)
        except aiohttp.WSServerHandshakeError as exc:
            refusal = await self._refusal("/v1/telemetry", exc)
            if not isinstance(refusal, DeviceRefused):
                raise refusal from exc
            await self._poll_while_refused(refusal.reason)
            return True
        self._telemetry_refused = ""
        async with ws_context as ws:
            await self._fill_history()
            self._listener.on_connection(True, "")
            self._control_backoff.reset()
            self._stream_backoff.wake()  # the device is back: do not let the stream wait out its backoff
            pinger = asyncio.get_running_loop().create_task(self._ping_every(ws))
            try:
                while True:
                    msg = await ws.receive(timeout=TELEMETRY_SILENCE_S)
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        self._handle_telemetry_text(msg.data)
                    elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                        return
                    elif msg.type == aiohttp.WSMsgType.ERROR:
                        raise aiohttp.ClientError(str(ws.exception() or "WebSocket error"))
                    else:
                        self._report_bad_data("telemetry", "unexpected binary message")
            finally:
                pinger.cancel()

    async def _poll_while_refused(self, reason: str) -> None:
        """The device answers but has no WebSocket slot for this console: it is online, so say so, and keep its
        health and telemetry current over plain HTTP until TELEMETRY_RETRY_S, when the WebSocket is tried again
        (the caller's loop comes straight back here if it is still refused)."""
        self._listener.on_connection(True, "")
        if reason != self._telemetry_refused:
            self._telemetry_refused = reason
            self._listener.on_error(f"telemetry: the device refused the live channel ({reason}); polling every "
                                    f"{POLL_PERIOD_S:g} s instead")
        self._control_backoff.reset()
        deadline = time.monotonic() + TELEMETRY_RETRY_S
        while True:
            await self._fill_history(live=True)
            self._listener.on_health(check_health(await self._get_json("/v1/health", (200, 503))))
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(POLL_PERIOD_S)

    def _handle_telemetry_text(self, text: str) -> None:
        try:
            data = parse_json(text, "a telemetry message", expect=None)
        except UnreadableAnswer as exc:
            self._report_bad_data("telemetry", f"{exc}: {visible_text(text, 80)}")
            return
        if isinstance(data, dict) and data.get("type") == "pong":
            self._add_clock_sample(data)
            return
        try:
            sample = check_telemetry_sample(data)
        except ProtocolError as exc:
            self._report_bad_data("telemetry", str(exc))
            return
        if self._last_sample_ts is None or sample["ts"] > self._last_sample_ts:
            self._last_sample_ts = sample["ts"]
            self._follow_model(sample.get("model_sha256"))
            if isinstance(sample.get("health"), dict):
                try:
                    self._listener.on_health(check_health(sample["health"]))
                except ProtocolError:
                    pass
            self._listener.on_telemetry([sample], False)

    def _follow_model(self, sha256: object) -> None:
        """The device runs another model than /v1/info said (a rollout, a rollback, a USB install): read it again,
        so every view shows the model the device runs now, from the one place that says it (DeviceState.info)."""
        if not isinstance(sha256, str) or not self._model_sha256 or sha256 == self._model_sha256:
            return
        if self._info_refresh is None or self._info_refresh.done():
            self._info_refresh = asyncio.get_running_loop().create_task(self._refresh_info())

    async def _refresh_info(self) -> None:
        try:
            self._report_info(check_device_info(await self._get_json("/v1/info")))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the control channel reads it again when it reconnects: say so, do not crash
            self._listener.on_error(f"could not read the device's new model: {describe_error(exc)}")

    def _report_info(self, info: dict) -> None:
        model = info.get("model")
        self._model_sha256 = str(model.get("sha256") or "") if isinstance(model, dict) else ""
        self._listener.on_info(info)

    async def _ping_every(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while not ws.closed:
            await asyncio.sleep(PING_PERIOD_S)
            await ws.send_str(json.dumps({"type": "ping", "t0": time.time()}))

    def _add_clock_sample(self, pong: dict, t3: float | None = None) -> None:
        try:
            sample = ClockSample(float(pong["t0"]), float(pong["server_time"]), t3 if t3 is not None else time.time())
        except (KeyError, TypeError, ValueError, OverflowError):
            self._report_bad_data("clock", f"pong without t0/server_time: {visible_text(pong, 80)}")
            return
        if not self.clock.add(sample):
            return
        offset, round_trip = self.clock.offset, self.clock.round_trip
        if offset is not None and round_trip is not None:
            self._listener.on_clock(offset, round_trip)

    async def _sync_clock(self) -> None:
        """A few quick samples before anything uses agent timestamps (history, latency)."""
        for _ in range(3):
            t0 = time.time()
            data = await self._get_json("/v1/time")
            t3 = time.time()
            if not isinstance(data, dict) or not isinstance(data.get("time"), int | float):
                raise ProtocolError(f"/v1/time is not {{'time': seconds}}: {visible_text(data, 80)}")
            self._add_clock_sample({"t0": t0, "server_time": data["time"]}, t3)

    async def _fill_history(self, live: bool = False) -> None:
        # The device's own clock says what "the last hour" is: console time plus its offset.
        offset = self.clock.offset or 0.0
        since = self._last_sample_ts if self._last_sample_ts is not None else time.time() + offset - HISTORY_SPAN_S
        for _ in range(int(HISTORY_SPAN_S // HISTORY_PAGE) + 1):
            # `since` in full (repr round-trips a float exactly): rounded, it could fall just below the last sample
            # of the page before and ask for that sample again.
            data = await self._get_json(f"/v1/telemetry/history?since={since!r}&limit={HISTORY_PAGE}")
            if not isinstance(data, dict) or not isinstance(data.get("samples"), list):
                raise ProtocolError("/v1/telemetry/history has no 'samples' list")
            fresh = []
            for raw in data["samples"]:
                try:
                    sample = check_telemetry_sample(raw)
                except ProtocolError as exc:
                    self._report_bad_data("history", str(exc))
                    continue
                if self._last_sample_ts is None or sample["ts"] > self._last_sample_ts:
                    fresh.append(sample)
                    self._last_sample_ts = sample["ts"]
            if fresh:
                self._listener.on_telemetry(fresh, not live)
                since = self._last_sample_ts
            if not data.get("more") or not fresh:
                return

    # -- stream channel -----------------------------------------------------------------------------------------

    async def _stream_loop(self) -> None:
        while True:
            delay = None
            failure: Exception | None = None
            try:
                await self._stream_once()
            except asyncio.CancelledError:
                self._listener.on_stream_state(False, "stream stopped")
                raise
            except aiohttp.WSServerHandshakeError as exc:
                failure = refusal = await self._refusal("/v1/stream", exc)
                if isinstance(refusal, DeviceRefused):
                    delay = max(self._stream_backoff.next_delay(), REFUSED_STREAM_RETRY_S)
            except Exception as exc:  # whatever it is, the preview says so and the stream is retried (see _failure)
                failure = exc
            delay = self._stream_backoff.next_delay() if delay is None else delay
            reason = "stream closed by the device" if failure is None else self._failure("stream", failure, delay)
            self._listener.on_stream_state(False, reason)
            await self._stream_backoff.sleep(delay)

    async def _stream_once(self) -> None:
        query = "&".join(f"{k}={v}" for k, v in self._stream_params.items())
        if self._trust is not None:
            # Only once the control channel knows how this device may be reached (pinned, or lab mode).
            self._listener.on_stream_state(False, "waiting for the device's connection")
            await self._ready.wait()
        url = self._base + "/v1/stream" + (f"?{query}" if query else "")
        loop = asyncio.get_running_loop()
        async with self._http.ws_connect(url, ssl=ssl_arg(self._tls), timeout=aiohttp.ClientWSTimeout(ws_receive=None,
                                                                                             ws_close=0.5),
                                         heartbeat=5.0, max_msg_size=MAX_STREAM_MESSAGE) as ws:
            self._frame_problem = ""
            self._listener.on_stream_state(True, "")
            self._stream_backoff.reset()
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    try:
                        # Awaiting each decode before reading on keeps at most one frame in flight per device:
                        # a slow console reads slower and the agent sends it fewer frames, never a backlog.
                        frame = await loop.run_in_executor(self._decode_pool, self._decoder, msg.data, time.time())
                    except ProtocolError as exc:
                        self._report_bad_data("stream", str(exc))
                        if not self._frame_problem:  # the preview says why its picture does not move (once)
                            self._frame_problem = str(exc)
                            self._listener.on_stream_state(True, f"frames refused: {exc}")
                        continue
                    if self._frame_problem:
                        self._frame_problem = ""
                        self._listener.on_stream_state(True, "")
                    self._listener.on_frame(frame)
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    try:
                        data = parse_json(msg.data, "a stream text message")
                    except UnreadableAnswer:
                        data = None
                    if not (data is not None and data.get("type") == "pong"):
                        self._report_bad_data("stream", f"unexpected text message {visible_text(msg.data, 80)}")
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    raise aiohttp.ClientError(str(ws.exception() or "WebSocket error"))

    def _report_bad_data(self, channel: str, message: str) -> None:
        """Tell the user, but at most every few seconds per channel: a broken device may send garbage 30 times a
        second, and a flood must not bury the one message that explains it."""
        count = self._bad_since_report.get(channel, 0) + 1
        now = time.monotonic()
        if now - self._last_bad_report.get(channel, -1e9) < BAD_DATA_REPORT_PERIOD_S:
            self._bad_since_report[channel] = count
            return
        more = f" (and {count - 1} more bad messages)" if count > 1 else ""
        self._listener.on_error(f"{channel}: {message}{more}")
        self._last_bad_report[channel] = now
        self._bad_since_report[channel] = 0
