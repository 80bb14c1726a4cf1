"""What both channels of a device session share: where the device is reached (address, base URL and TLS, as the
control channel found them), the one way they read its JSON answers, why it refused a WebSocket, and how a
channel's failures and bad data are told (worded, rate-limited, an unexpected one logged once in a while).

Split out of `device_session.py` so the stream channel (`stream_channel.py`) and the control channel use the same
facts without one owning the other. No Qt here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp

from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.device_access import ssl_arg
from edge_console.client.net.device_answers import NOT_JSON, UnreadableAnswer, read_error_detail, read_json
from edge_console.client.net.session_terms import DeviceRefused, NotAnAgent, SessionListener, describe_error
from edge_console.client.untrusted_text import visible_text

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=5, connect=3)
BAD_DATA_REPORT_PERIOD_S = 5.0
UNEXPECTED_LOG_PERIOD_S = 600.0  # an unexpected failure is logged with its traceback at most this often per channel

log = logging.getLogger(__name__)


class DeviceLink:
    def __init__(self, http: aiohttp.ClientSession, address: DeviceAddress, listener: SessionListener) -> None:
        self.http = http
        self.address = address
        self.listener = listener
        self.base_url = address.base_url  # set on each connection by what the device turns out to be
        self.tls = None
        self.ready = asyncio.Event()  # the control channel has reached the device as it may be reached
        self._last_bad_report: dict[str, float] = {}  # per channel, so a flood on one cannot mute the others
        self._bad_since_report: dict[str, int] = {}
        self._last_unexpected_log: dict[str, float] = {}

    async def get_json(self, path: str, ok_statuses: tuple[int, ...] = (200,)) -> Any:
        async with self.http.get(self.base_url + path, ssl=ssl_arg(self.tls), timeout=REQUEST_TIMEOUT) as resp:
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

    async def refusal(self, path: str, handshake: aiohttp.WSServerHandshakeError) -> Exception:
        """Why the device refused a WebSocket: the handshake error does not carry the body, so the same URL is
        asked again as a plain GET, which the agent refuses with the same JSON reason."""
        if handshake.status != 503:
            return handshake
        try:
            async with self.http.get(self.base_url + path, ssl=ssl_arg(self.tls), timeout=REQUEST_TIMEOUT) as resp:
                reason = await read_error_detail(resp, ("error",))  # the short reason: "too many clients (limit 32)"
        except (aiohttp.ClientError, OSError, TimeoutError):
            reason = ""
        return DeviceRefused(visible_text(reason, 200) or "HTTP 503 (busy)")

    def failure(self, channel: str, exc: Exception, delay: float) -> str:
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
        self.report_bad_data(channel, reason)
        return f"{reason}; retrying in {max(delay, 1.0):.0f} s"

    def report_bad_data(self, channel: str, message: str) -> None:
        """Tell the user, but at most every few seconds per channel: a broken device may send garbage 30 times a
        second, and a flood must not bury the one message that explains it."""
        count = self._bad_since_report.get(channel, 0) + 1
        now = time.monotonic()
        if now - self._last_bad_report.get(channel, -1e9) < BAD_DATA_REPORT_PERIOD_S:
            self._bad_since_report[channel] = count
            return
        more = f" (and {count - 1} more bad messages)" if count > 1 else ""
        self.listener.on_error(f"{channel}: {message}{more}")
        self._last_bad_report[channel] = now
        self._bad_since_report[channel] = 0
