"""Everything the console does with one device over the network, as tasks on the network loop.

Two independent channels, each reconnecting by itself with backoff:
- control (here): `GET /v1/info` (identity, API version), clock pings, `/v1/health`, the telemetry WebSocket, and on
  every (re)connect a history fill from `/v1/telemetry/history` so charts have no hole the device could fill;
- stream (`stream_channel.py`): `WS /v1/stream`, opened only while some view shows the device; each message is
  decoded on the decoder pool (never on the loop, never on the GUI thread) and handed on as the decoder made it.
What both use (where the device is reached, reading its answers, wording failures) is `device_link.DeviceLink`.
All results go to a `session_terms.SessionListener` (called on the loop thread); no Qt here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
from collections.abc import Callable

import aiohttp

from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.backoff import Backoff, reconnect_policy
from edge_console.client.net.device_access import CertificateChanged, NoLongerPaired, NotAnAgentAnswer, reach, ssl_arg
from edge_console.client.net.device_answers import UnreadableAnswer, parse_json
from edge_console.client.net.device_clock import DeviceClock
from edge_console.client.net.device_info import (
    ProtocolMismatch,
    check_device_info,
    check_health,
    check_telemetry_sample,
)
from edge_console.client.net.device_link import DeviceLink
from edge_console.client.net.session_terms import (
    Decoder,
    DeviceRefused,
    NotAnAgent,
    SessionListener,
    TrustProblem,
    describe_error,
)
from edge_console.client.net.stream_channel import StreamChannel
from edge_console.client.untrusted_text import visible_text
from edge_console.core.backoff import BackoffPolicy
from edge_console.core.protocol import ClockSample, ProtocolError

TELEMETRY_SILENCE_S = 5.0  # the agent sends a sample every second; this long without one means it is gone
PING_PERIOD_S = 2.0
HISTORY_PAGE = 600
HISTORY_SPAN_S = 3600.0  # the longest chart window; older samples are never drawn
# A device at its client limit refuses the telemetry WebSocket: the console then polls health and the newest
# telemetry over plain HTTP this often (the device stays online), and tries the WebSocket again every
# TELEMETRY_RETRY_S. (A refused stream: see stream_channel.REFUSED_STREAM_RETRY_S.)
POLL_PERIOD_S = 2.0
TELEMETRY_RETRY_S = 15.0
NOT_PAIRED_RECHECK_S = 30.0  # an unpaired device is asked again this often (pairing reconnects at once)


class DeviceSession:
    def __init__(self, http: aiohttp.ClientSession, address: DeviceAddress, listener: SessionListener,
                 decoder: Decoder, decode_pool: concurrent.futures.Executor | None,
                 stream_params: dict[str, int] | None = None,
                 backoff_policy: Callable[[], BackoffPolicy] = reconnect_policy, trust=None) -> None:
        """`trust`: the console's `trust_store.ConsoleTrust` (HTTPS, pinned devices); None: plain HTTP only."""
        self._trust = trust
        self._link = DeviceLink(http, address, listener)
        self._listener = listener
        self._control_backoff = Backoff(backoff_policy())  # made first, then the stream's (a test tells them apart)
        self._stream = StreamChannel(self._link, decoder, decode_pool, stream_params or {}, Backoff(backoff_policy()),
                                     wait_for_reach=trust is not None)
        self.clock = DeviceClock()
        self._last_sample_ts: float | None = None  # agent clock; where the next history fill starts
        self._control_task: asyncio.Task | None = None
        self._stream_task: asyncio.Task | None = None
        self._telemetry_refused = ""  # the device's reason while it refuses the telemetry WebSocket
        self._model_sha256 = ""  # of the model /v1/info last described: a sample naming another one re-reads it
        self._info_refresh: asyncio.Task | None = None

    @property
    def address(self) -> DeviceAddress:
        return self._link.address

    # -- called on the loop thread by the owner -------------------------------------------------------------

    def start(self) -> None:
        self._control_task = asyncio.get_running_loop().create_task(self._control_loop(), name=f"control {self.address}")

    def set_stream_wanted(self, wanted: bool) -> None:
        if wanted and self._stream_task is None:
            self._stream_task = asyncio.get_running_loop().create_task(self._stream.run(), name=f"stream {self.address}")
        elif not wanted and self._stream_task is not None:
            self._stream_task.cancel()
            self._stream_task = None

    def set_address(self, address: DeviceAddress) -> None:
        """The device moved (re-announced on another port or host): talk to the new address at once."""
        if address != self.address:
            self._link.address = address
            self._link.ready.clear()
            self.reconnect_now()

    def reconnect_now(self) -> None:
        """Drop the current connections and connect again without waiting out any backoff."""
        loop = asyncio.get_running_loop()
        self._control_backoff.reset()
        self._stream.backoff.reset()
        if self._control_task is not None:
            self._control_task.cancel()
            self._control_task = loop.create_task(self._control_loop(), name=f"control {self.address}")
        if self._stream_task is not None:
            self._stream_task.cancel()
            self._stream_task = loop.create_task(self._stream.run(), name=f"stream {self.address}")

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
                self._link.ready.clear()
                self._listener.on_connection(False, str(exc))
                await self._control_backoff.sleep(NOT_PAIRED_RECHECK_S)  # pairing wakes it at once
                continue
            except Exception as exc:  # whatever it is, the session says so and retries (see DeviceLink.failure)
                failure = exc
            self._link.ready.clear()
            delay = self._control_backoff.next_delay()
            reason = ("connection closed by the device" if failure is None
                      else self._link.failure("connection", failure, delay))
            self._listener.on_connection(False, reason)
            await self._control_backoff.sleep(delay)

    async def _reach(self) -> None:
        """Find out how this device may be reached (HTTPS pinned, not paired, changed, insecure) and report its
        checked /v1/info, then its trust: whoever sees the trust known also finds the device's identity known.
        TrustProblem when it may not be talked to beyond that."""
        if self._trust is None:
            self._link.base_url, self._link.tls = self.address.base_url, None
            self._report_info(check_device_info(await self._link.get_json("/v1/info")))
            return
        try:
            access = await reach(self._link.http, self.address, self._trust.contexts, self._trust.pin_for)
        except CertificateChanged as exc:
            self._listener.on_trust("certificate changed", str(exc))
            raise TrustProblem("certificate changed", f"certificate changed: {exc}") from None
        except NoLongerPaired as exc:
            self._listener.on_trust("no longer paired", str(exc))
            raise TrustProblem("no longer paired", str(exc)) from None
        except NotAnAgentAnswer as exc:
            raise NotAnAgent(f"this is not an edge agent: {self.address} {exc}") from None
        self._link.base_url, self._link.tls = access.base_url, access.tls
        self._report_info(check_device_info(access.info))
        if access.info.get("insecure_lab_mode"):
            self._listener.on_trust("insecure lab mode", "the device runs in insecure lab mode: plain HTTP, "
                                                         "no pairing, every route open to anyone on its network")
        elif access.pin is None:
            self._listener.on_trust("not paired", "")
            raise TrustProblem("not paired", "not paired: pair this console with the device (Pair…) to see it")
        else:
            self._listener.on_trust(str(access.role), "")

    async def _control_once(self) -> bool:
        """One connection of the control channel; True when it ended a round of polling a device that refused
        the telemetry WebSocket (no failure: the caller asks again at once)."""
        await self._reach()
        self._link.ready.set()
        await self._sync_clock()
        self._listener.on_health(check_health(await self._link.get_json("/v1/health", (200, 503))))
        url = self._link.base_url + "/v1/telemetry"
        try:
            ws_context = await self._link.http.ws_connect(
                url, ssl=ssl_arg(self._link.tls), timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=0.5),
                heartbeat=None)
        except aiohttp.WSServerHandshakeError as exc:
            refusal = await self._link.refusal("/v1/telemetry", exc)
            if not isinstance(refusal, DeviceRefused):
                raise refusal from exc
            await self._poll_while_refused(refusal.reason)
            return True
        self._telemetry_refused = ""
        async with ws_context as ws:
            await self._fill_history()
            self._listener.on_connection(True, "")
            self._control_backoff.reset()
            self._stream.backoff.wake()  # the device is back: do not let the stream wait out its backoff
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
                        self._link.report_bad_data("telemetry", "unexpected binary message")
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
            self._listener.on_health(check_health(await self._link.get_json("/v1/health", (200, 503))))
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(POLL_PERIOD_S)

    def _handle_telemetry_text(self, text: str) -> None:
        try:
            data = parse_json(text, "a telemetry message", expect=None)
        except UnreadableAnswer as exc:
            self._link.report_bad_data("telemetry", f"{exc}: {visible_text(text, 80)}")
            return
        if isinstance(data, dict) and data.get("type") == "pong":
            self._add_clock_sample(data)
            return
        try:
            sample = check_telemetry_sample(data)
        except ProtocolError as exc:
            self._link.report_bad_data("telemetry", str(exc))
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
        so every view shows the model the device runs now, from the one place that says it (`on_info`)."""
        if not isinstance(sha256, str) or not self._model_sha256 or sha256 == self._model_sha256:
            return
        if self._info_refresh is None or self._info_refresh.done():
            self._info_refresh = asyncio.get_running_loop().create_task(self._refresh_info())

    async def _refresh_info(self) -> None:
        try:
            self._report_info(check_device_info(await self._link.get_json("/v1/info")))
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
            self._link.report_bad_data("clock", f"pong without t0/server_time: {visible_text(pong, 80)}")
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
            data = await self._link.get_json("/v1/time")
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
            data = await self._link.get_json(f"/v1/telemetry/history?since={since!r}&limit={HISTORY_PAGE}")
            if not isinstance(data, dict) or not isinstance(data.get("samples"), list):
                raise ProtocolError("/v1/telemetry/history has no 'samples' list")
            fresh = []
            for raw in data["samples"]:
                try:
                    sample = check_telemetry_sample(raw)
                except ProtocolError as exc:
                    self._link.report_bad_data("history", str(exc))
                    continue
                if self._last_sample_ts is None or sample["ts"] > self._last_sample_ts:
                    fresh.append(sample)
                    self._last_sample_ts = sample["ts"]
            if fresh:
                self._listener.on_telemetry(fresh, not live)
                since = self._last_sample_ts
            if not data.get("more") or not fresh:
                return
