"""Pushing one release to one device: a resumable upload (tus 1.0), the install request, then the device's own
progress events until the update is good, rejected or rolled back. Qt-free (asyncio, on the console's loop).

Every step that matters for resuming is handed to `on_state` (the rollout persists it): the upload's address and
confirmed offset, then the update's id. A push given that state again (after a cut link or a console restart)
continues from the offset the device confirms, or follows the update already running there.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = 4 * 1024 * 1024
RETRY_FOR_S = 300.0  # a link that stays down longer than this fails the push (the rollout can resume it later)
FINAL = ("good", "rejected", "interrupted", "rolled_back")


class PushFailed(Exception):
    pass


@dataclass
class PushState:
    """What survives a console restart: enough to resume the upload or to follow the update."""

    upload_url: str = ""
    offset: int = 0
    update_id: str = ""


@dataclass
class PushProgress:
    phase: str  # "upload", then the device's states: staged, verified, checked, active, good / rejected, ...
    sent: int = 0
    total: int = 0
    rate_bps: float = 0.0
    record: dict = field(default_factory=dict)

    @property
    def detail(self) -> str:
        if self.phase == "upload":
            return f"uploading {self.sent / 2**20:.1f} of {self.total / 2**20:.1f} MB ({self.rate_bps / 2**20:.1f} MB/s)"
        steps = self.record.get("steps") or []
        return steps[-1]["note"] if steps else self.phase


async def _json(resp: aiohttp.ClientResponse) -> dict:
    try:
        data = await resp.json(content_type=None)
        return data if isinstance(data, dict) else {}
    except ValueError:
        return {}


class _AskOffsetAgain(Exception):
    """A PATCH answered 409: HEAD again for the offset the device has."""


async def _upload(session: aiohttp.ClientSession, base: str, tls: ssl.SSLContext | None, release: Path,
                  state: PushState, on_state: Callable[[PushState], None],
                  on_progress: Callable[[PushProgress], None]) -> str:
    data_len = release.stat().st_size
    if not state.upload_url:
        async with session.post(base + "/v1/uploads", ssl=tls, headers={**TUS, "Upload-Length": str(data_len)}) as r:
            if r.status != 201:
                body = await _json(r)
                raise PushFailed(f"the device refused the upload (HTTP {r.status}): {body.get('detail', '')}")
            state.upload_url, state.offset = r.headers["Location"], 0
            on_state(state)
    url = base + state.upload_url
    started, first_offset = time.monotonic(), None
    deadline = time.monotonic() + RETRY_FOR_S
    with open(release, "rb") as f:
        while True:
            try:
                async with session.head(url, ssl=tls, headers=TUS) as r:
                    if r.status == 404:
                        raise PushFailed("the device no longer has this upload (it expired); start the push again")
                    state.offset = int(r.headers["Upload-Offset"])
                first_offset = state.offset if first_offset is None else first_offset
                while state.offset < data_len:
                    f.seek(state.offset)
                    chunk = f.read(CHUNK)
                    headers = {**TUS, "Upload-Offset": str(state.offset),
                               "Content-Type": "application/offset+octet-stream"}
                    async with session.patch(url, data=chunk, ssl=tls, headers=headers) as r:
                        if r.status == 409:  # the device's offset differs (a request of ours on a dead link
                            raise _AskOffsetAgain  # was superseded, or kept fewer bytes): ask it, go on from there
                        if r.status != 204:
                            body = await _json(r)
                            raise PushFailed(f"the device stopped the upload (HTTP {r.status}): {body.get('detail')}")
                        state.offset = int(r.headers["Upload-Offset"])
                    on_state(state)
                    elapsed = max(time.monotonic() - started, 1e-3)
                    on_progress(PushProgress("upload", state.offset, data_len, (state.offset - first_offset) / elapsed))
                return state.upload_url.rsplit("/", 1)[1]
            except _AskOffsetAgain:
                if time.monotonic() > deadline:
                    raise PushFailed("the device kept refusing the upload's offset; start the push again") from None
                await asyncio.sleep(0.2)
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                if time.monotonic() > deadline:
                    raise PushFailed(f"the link to the device stayed down ({exc}); resume the push later") from exc
                await asyncio.sleep(1.0)  # a cut link: ask the device where it got to, and go on from there


async def _follow(session: aiohttp.ClientSession, base: str, tls: ssl.SSLContext | None, update_id: str,
                  until: tuple[str, ...], on_progress: Callable[[PushProgress], None]) -> dict:
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            async with session.ws_connect(base + "/v1/updates/events?after=latest", ssl=tls, heartbeat=10) as ws:
                async with session.get(f"{base}/v1/updates/{update_id}", ssl=tls) as r:
                    record = await _json(r)  # what happened before the socket was open
                while True:
                    if record.get("state"):
                        on_progress(PushProgress(record["state"], record=record))
                        if record["state"] in until or record["state"] in FINAL:
                            return record
                    msg = await ws.receive(timeout=60)
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        raise aiohttp.ClientConnectionError("the events socket closed")
                    event = json.loads(msg.data)
                    if event.get("id") == update_id:
                        record = event
        except (aiohttp.ClientConnectionError, aiohttp.WSServerHandshakeError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise PushFailed(f"lost the device while following the update ({exc})") from exc
            await asyncio.sleep(1.0)


async def push(session: aiohttp.ClientSession, base: str, tls: ssl.SSLContext | None, release: Path, *,
               state: PushState | None = None, on_state: Callable[[PushState], None] = lambda s: None,
               on_progress: Callable[[PushProgress], None] = lambda p: None,
               until: tuple[str, ...] = ("good",)) -> dict:
    """Upload `release` and install it; returns the device's update record once it reaches `until` or an end."""
    state = state or PushState()
    if not state.update_id:
        upload_id = await _upload(session, base, tls, release, state, on_state, on_progress)
        async with session.post(base + "/v1/updates", ssl=tls, json={"upload": upload_id}) as r:
            body = await _json(r)
            if r.status != 202:
                raise PushFailed(f"the device would not install it (HTTP {r.status}): {body.get('detail', '')}")
        state.update_id = body["id"]
        on_state(state)
    return await _follow(session, base, tls, state.update_id, until, on_progress)


async def rollback(session: aiohttp.ClientSession, base: str, tls: ssl.SSLContext | None,
                   version: str | None = None) -> dict:
    async with session.post(base + "/v1/models/rollback", ssl=tls, json={"version": version} if version else {}) as r:
        body = await _json(r)
        if r.status != 200:
            raise PushFailed(f"the device did not roll back (HTTP {r.status}): {body.get('detail', '')}")
        return body
