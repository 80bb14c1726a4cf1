"""Pushing one release to one device: a resumable upload (tus 1.0), the install request, then the device's own
progress events until the update is good, rejected or rolled back. Qt-free (asyncio, on the console's loop).

Every step that matters for resuming is handed to `on_state` (the rollout persists it): the upload's address and
confirmed offset, then the update's id. A push given that state again (after a cut link or a console restart)
continues from the offset the device confirms, or follows the update already running there.

A push follows the device, not an address: where the device is (`where`) is asked again at every try, so one that
came back at another address (re-announced, or added again) is reached there. A failed connection is said at once
(`on_link`: "offline since 14:02:03, waiting for it (297 s left)"), in words (host, port, what failed), never as
aiohttp's own text, which quotes the TLS context it was given.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from edge_console.client.net.device_access import ssl_arg
from edge_console.client.net.device_answers import UnreadableAnswer, parse_json, read_error_detail, read_json
from edge_console.client.net.session_terms import describe_error
from edge_console.client.untrusted_text import visible_text
from edge_console.core.protocol import UPDATE_FINAL

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = 4 * 1024 * 1024
RETRY_FOR_S = 300.0  # a link down this long in a row fails the push (the rollout can resume it later)
# A device names its upload (tus Location) and its update; both go into this console's URLs to that device, so
# only plain ids are taken (a Location of "@elsewhere/x" would otherwise change the host the upload goes to).
DEVICE_ID_TEXT = r"[A-Za-z0-9_-]{1,64}"
UPLOAD_LOCATION = re.compile(r"/v1/uploads/" + DEVICE_ID_TEXT)
UPDATE_ID = re.compile(DEVICE_ID_TEXT)


class PushFailed(Exception):
    pass


@dataclass
class PushState:
    """What survives a console restart: enough to resume the upload or to follow the update."""

    upload_url: str = ""
    offset: int = 0
    update_id: str = ""
    sha256: str = ""  # of the file this upload sends: a resume with other bytes must start a new upload


@dataclass
class PushProgress:
    phase: str  # "upload", then the device's states: staged, verified, checked, active, good / rejected, ...
    sent: int = 0
    total: int = 0
    rate_bps: float = 0.0
    record: dict = field(default_factory=dict)

    @property
    def detail(self) -> str:
        """What the device last said about the update (its last step's note), made safe to show."""
        if self.phase == "upload":
            return f"uploading {self.sent / 2**20:.1f} of {self.total / 2**20:.1f} MB ({self.rate_bps / 2**20:.1f} MB/s)"
        steps = self.record.get("steps")
        note = steps[-1].get("note") if isinstance(steps, list) and steps and isinstance(steps[-1], dict) else None
        return visible_text(note if isinstance(note, str) and note else self.phase, 300)


async def _answer(resp: aiohttp.ClientResponse) -> dict:
    """A device's JSON object answer, or PushFailed (what a rollout reports) when the console cannot read it."""
    try:
        return await read_json(resp, expect=dict)
    except UnreadableAnswer as exc:
        raise PushFailed(str(exc)) from None


async def _refusal(resp: aiohttp.ClientResponse) -> str:
    return visible_text(await read_error_detail(resp), 300)


def _offset(resp: aiohttp.ClientResponse) -> int:
    try:
        offset = int(resp.headers["Upload-Offset"])
    except (KeyError, ValueError):
        raise PushFailed("the device's answer has no Upload-Offset the console can read") from None
    if offset < 0:
        raise PushFailed(f"the device says it holds {offset} bytes of the upload")
    return offset


class _AskOffsetAgain(Exception):
    """A PATCH answered 409: HEAD again for the offset the device has."""


_REPR = re.compile(r"<[^<>]*\bat 0x[0-9a-fA-F]+>")


def plain_words(text: str) -> str:
    """No Python object's repr ever reaches a user (an SSLContext, "<... object at 0x7f...>"): what is left says
    what failed."""
    return re.sub(r"\s{2,}", " ", _REPR.sub("", text)).strip()


def link_problem(exc: BaseException, base: str) -> str:
    """A failed connection in words: the device's host and port, and what failed (never aiohttp's own text, which
    quotes the TLS context it was given)."""
    where = urlsplit(base).netloc if base else "the device"
    if isinstance(exc, aiohttp.ClientConnectorError):
        where, what = f"{exc.host}:{exc.port}", describe_error(exc)
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        what = "connection lost: the device closed it"
    elif isinstance(exc, aiohttp.ClientOSError) and exc.errno:
        what = f"connection lost: {os.strerror(exc.errno).lower()}"
    elif type(exc) is aiohttp.ClientConnectionError and str(exc):  # raised here, in our own words
        what = f"connection lost: {exc}"
    else:
        what = describe_error(exc)
    return plain_words(f"{where}: {what}")


@dataclass(frozen=True)
class LinkDown:
    """The device cannot be reached: since when (time.time()), how long the push still waits, and what failed."""

    since: float
    left_s: float
    problem: str

    @property
    def text(self) -> str:
        return (f"offline since {time.strftime('%H:%M:%S', time.localtime(self.since))}, waiting for it "
                f"({self.left_s:.0f} s left) · {self.problem}")


Where = Callable[[], tuple[str, "ssl.SSLContext | None"]]  # the device's base URL and TLS context, now


class _Link:
    """How a push reaches its device. `where` is asked again at every try, so a device that came back at another
    address is reached there; a link down for RETRY_FOR_S in a row fails the push (it can be resumed later)."""

    def __init__(self, where: Where, on_link: Callable[[LinkDown | None], None]) -> None:
        self.where = where
        self.on_link = on_link
        self._down_since: float | None = None  # time.monotonic()
        self._down_at = 0.0  # time.time(), for the user

    def now(self) -> tuple[str, ssl.SSLContext | None]:
        return self.where()

    async def lost(self, exc: BaseException, base: str) -> None:
        """Say the device is offline (at once, then every try), wait a second; PushFailed past RETRY_FOR_S."""
        now = time.monotonic()
        if self._down_since is None:
            self._down_since, self._down_at = now, time.time()
        problem = link_problem(exc, base)
        left = RETRY_FOR_S - (now - self._down_since)
        if left <= 0:
            raise PushFailed(f"the device stayed unreachable for {RETRY_FOR_S:.0f} s ({problem}); resume the push "
                             "when it is back") from None
        self.on_link(LinkDown(self._down_at, left, problem))
        await asyncio.sleep(1.0)

    def back(self) -> None:
        if self._down_since is not None:
            self._down_since = None
            self.on_link(None)


LINK_ERRORS = (aiohttp.ClientConnectionError, aiohttp.WSServerHandshakeError, TimeoutError)


async def _upload(session: aiohttp.ClientSession, base: str, tls: ssl.SSLContext | None, release: Path,
                  state: PushState, on_state: Callable[[PushState], None],
                  on_progress: Callable[[PushProgress], None], link: _Link | None = None) -> str:
    link = link or _Link(lambda: (base, tls), lambda _down: None)
    data_len = release.stat().st_size
    while not state.upload_url:
        base, tls = link.now()
        try:
            async with session.post(base + "/v1/uploads", ssl=ssl_arg(tls),
                                    headers={**TUS, "Upload-Length": str(data_len),
                                             # the release's name, for the device's records and audit log
                                             "Upload-Metadata": "filename " + base64.b64encode(
                                                 release.name.encode()).decode()}) as r:
                if r.status != 201:
                    raise PushFailed(f"the device refused the upload (HTTP {r.status}): {await _refusal(r)}")
                location = r.headers.get("Location", "")
                if not UPLOAD_LOCATION.fullmatch(location):  # appended to the device's base URL: nothing else
                    raise PushFailed(f"the device gave the upload an address the console does not use: "
                                     f"{visible_text(location, 100) or 'none'}")
                state.upload_url, state.offset = location, 0
                on_state(state)
        except LINK_ERRORS as exc:  # an upload made on a broken link is left to expire there: ask again
            await link.lost(exc, base)
    link.back()
    started, first_offset = time.monotonic(), None
    refused_until = time.monotonic() + RETRY_FOR_S
    with open(release, "rb") as f:
        while True:
            base, tls = link.now()
            url = base + state.upload_url
            try:
                async with session.head(url, ssl=ssl_arg(tls), headers=TUS) as r:
                    if r.status == 404:
                        raise PushFailed("the device no longer has this upload (it expired); start the push again")
                    state.offset = _offset(r)
                link.back()
                first_offset = state.offset if first_offset is None else first_offset
                while state.offset < data_len:
                    f.seek(state.offset)
                    chunk = f.read(CHUNK)
                    headers = {**TUS, "Upload-Offset": str(state.offset),
                               "Content-Type": "application/offset+octet-stream"}
                    async with session.patch(url, data=chunk, ssl=ssl_arg(tls), headers=headers) as r:
                        if r.status == 409:  # the device's offset differs (a request of ours on a dead link
                            raise _AskOffsetAgain  # was superseded, or kept fewer bytes): ask it, go on from there
                        if r.status != 204:
                            raise PushFailed(f"the device stopped the upload (HTTP {r.status}): {await _refusal(r)}")
                        state.offset = _offset(r)
                    on_state(state)
                    elapsed = max(time.monotonic() - started, 1e-3)
                    on_progress(PushProgress("upload", state.offset, data_len, (state.offset - first_offset) / elapsed))
                return state.upload_url.rsplit("/", 1)[1]
            except _AskOffsetAgain:
                if time.monotonic() > refused_until:
                    raise PushFailed("the device kept refusing the upload's offset; start the push again") from None
                await asyncio.sleep(0.2)
            except LINK_ERRORS as exc:
                await link.lost(exc, base)  # a cut link: ask the device where it got to, and go on from there


async def _follow(session: aiohttp.ClientSession, base: str, tls: ssl.SSLContext | None, update_id: str,
                  until: tuple[str, ...], on_progress: Callable[[PushProgress], None],
                  link: _Link | None = None) -> dict:
    link = link or _Link(lambda: (base, tls), lambda _down: None)
    while True:
        base, tls = link.now()
        try:
            async with session.ws_connect(base + "/v1/updates/events?after=latest", ssl=ssl_arg(tls),
                                          heartbeat=10) as ws:
                async with session.get(f"{base}/v1/updates/{update_id}", ssl=ssl_arg(tls)) as r:
                    record = await _answer(r) if r.status == 200 else {}  # what happened before the socket was open
                link.back()
                while True:
                    if isinstance(record.get("state"), str) and record["state"]:
                        on_progress(PushProgress(record["state"], record=record))
                        if record["state"] in until or record["state"] in UPDATE_FINAL:
                            return record
                    msg = await ws.receive(timeout=60)
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        raise aiohttp.ClientConnectionError("the device closed the events socket")
                    try:
                        event = parse_json(msg.data, "an update event")
                    except UnreadableAnswer as exc:
                        raise PushFailed(str(exc)) from None
                    if event.get("id") == update_id:
                        record = event
        except LINK_ERRORS as exc:
            await link.lost(exc, base)


async def follow_update(session: aiohttp.ClientSession, where: Where, update_id: str, *,
                        until: tuple[str, ...] = ("good",),
                        on_progress: Callable[[PushProgress], None] = lambda p: None,
                        on_link: Callable[[LinkDown | None], None] = lambda d: None) -> dict:
    """Follow an update a device is already running (a cancelled rollout's, or one a restart left) to its end."""
    return await _follow(session, "", None, update_id, until, on_progress, _Link(where, on_link))


async def push(session: aiohttp.ClientSession, base: str, tls: ssl.SSLContext | None, release: Path, *,
               state: PushState | None = None, on_state: Callable[[PushState], None] = lambda s: None,
               on_progress: Callable[[PushProgress], None] = lambda p: None,
               until: tuple[str, ...] = ("good",), where: Where | None = None,
               on_link: Callable[[LinkDown | None], None] = lambda d: None,
               before_install: Callable[[], None] = lambda: None) -> dict:
    """Upload `release` and install it; returns the device's update record once it reaches `until` or an end.

    `where`: how to reach the device now, asked at every try (default: `base` and `tls`); `on_link`: the device
    went offline (a LinkDown, at once and at every try) or came back (None); `before_install`: called just before
    the install is requested (it may raise to stop there: nothing is installed then)."""
    state = state or PushState()
    link = _Link(where or (lambda: (base, tls)), on_link)
    if not state.update_id:
        upload_id = await _upload(session, base, tls, release, state, on_state, on_progress, link)
        before_install()
        while True:
            base, tls = link.now()
            try:
                async with session.post(base + "/v1/updates", ssl=ssl_arg(tls), json={"upload": upload_id}) as r:
                    if r.status != 202:
                        raise PushFailed(f"the device would not install it (HTTP {r.status}): {await _refusal(r)}")
                    body = await _answer(r)
                break
            except aiohttp.ClientConnectorError as exc:  # never reached the device: asking again is safe
                await link.lost(exc, base)
            except LINK_ERRORS as exc:  # it may have started: only the device can say; the push is resumable
                raise PushFailed(f"the link broke while asking the device to install it "
                                 f"({link_problem(exc, base)}); see Fleet versions, then push again") from None
        link.back()
        if not isinstance(body.get("id"), str) or not UPDATE_ID.fullmatch(body["id"]):
            raise PushFailed("the device took the release but its answer names no update the console can follow")
        state.update_id = body["id"]
        on_state(state)
    return await _follow(session, base, tls, state.update_id, until, on_progress, link)


async def drop_upload(session: aiohttp.ClientSession, base: str, tls: ssl.SSLContext | None, upload_url: str) -> None:
    """End an upload this console will not finish (tus termination), so it holds no space on the device until it
    expires there. Best effort: a device that cannot be asked now expires it by itself."""
    if not UPLOAD_LOCATION.fullmatch(upload_url):
        return
    try:
        async with session.delete(base + upload_url, ssl=ssl_arg(tls), headers=TUS,
                                  timeout=aiohttp.ClientTimeout(total=10)):
            pass
    except (aiohttp.ClientError, OSError, TimeoutError):
        pass


async def rollback(session: aiohttp.ClientSession, base: str, tls: ssl.SSLContext | None,
                   version: str | None = None) -> dict:
    async with session.post(base + "/v1/models/rollback", ssl=ssl_arg(tls),
                            json={"version": version} if version else {}) as r:
        if r.status != 200:
            raise PushFailed(f"the device did not roll back (HTTP {r.status}): {await _refusal(r)}")
        return await _answer(r)
