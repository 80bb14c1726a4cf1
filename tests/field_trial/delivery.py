"""Releases for the trial's deliveries, signed in one order and delivered in that order, and the console's own push
code (client/releases/push.py) run on the console's namespace loop.

TUF orders deliveries by their timestamp version (the signing time in seconds): a device that has seen a release
signed at T refuses one signed before T as replayed. So every release of the trial is signed by one thread, in
version order, each in a second of its own, and taken from the queue in that order.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import aiohttp

from edge_console.client.releases.push import PushState, _upload, push
from tests.support.updates import TUS, rewrite_bundle

from .releases import ReleaseKit, _next_second


class ReleaseQueue:
    """`count` patch releases parts 2.0.1, 2.0.2, ... then the rollout releases (3.0.0, ...), signed in the
    background in that order; `next()` hands out the patch releases in order, `rollout(v)` a rollout release."""

    def __init__(self, kit: ReleaseKit, count: int, rollouts: tuple[str, ...] = ("3.0.0",)) -> None:
        self.kit = kit
        self.versions = [f"2.0.{i}" for i in range(1, count + 1)] + list(rollouts)
        self._signed: dict[str, Path] = {}
        self._cond = threading.Condition()
        self._taken = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._sign_all, name="release signing", daemon=True)
        self._thread.start()

    def _sign_all(self) -> None:
        try:
            base = self.kit.bundle("2.0.0")
            for version in self.versions:
                bundle = rewrite_bundle(base, self.kit.folder / f"parts-{version}.edgebundle",
                                        manifest_edit=lambda m, v=version: m.update(version=v))
                _next_second()
                release = self.kit.authority.sign(bundle, self.kit.folder / f"parts-{version}.edgerelease")
                with self._cond:
                    self._signed[version] = release
                    self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - reported to whoever waits
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def _get(self, version: str, timeout: float = 120.0) -> Path:
        with self._cond:
            self._cond.wait_for(lambda: version in self._signed or self._error is not None, timeout)
            if self._error is not None:
                raise self._error
            return self._signed[version]

    def next(self) -> tuple[str, Path]:
        with self._cond:
            version = self.versions[self._taken]
            if version.startswith("3.") or version.startswith("4."):
                raise RuntimeError("the trial used more patch releases than it signed")
            self._taken += 1
        return version, self._get(version)

    def rollout(self, version: str = "3.0.0") -> Path:
        return self._get(version)

    def any(self) -> Path:
        """A signed release for deliveries that are never installed (uploads cut and deleted, impostors)."""
        return self._get(self.versions[0])

    def join(self) -> None:
        self._thread.join()


async def push_release(base_url: str, tls, release: Path, state: PushState | None = None, progress=None,
                       until=("good",)) -> dict:
    """The console's push (resumable tus upload, install, follow) of `release` to one device."""
    async with aiohttp.ClientSession() as session:
        return await push(session, base_url, tls, release, state=state or PushState(),
                          on_progress=progress or (lambda p: None), until=until)


async def upload_only(base_url: str, tls, release: Path, state: PushState) -> str:
    """The console's resumable upload alone (the install is not asked for): returns the upload id."""
    async with aiohttp.ClientSession() as session:
        return await _upload(session, base_url, tls, release, state, lambda s: None, lambda p: None)


async def delete_upload(base_url: str, tls, upload_id: str) -> int:
    async with aiohttp.ClientSession() as session, \
            session.delete(f"{base_url}/v1/uploads/{upload_id}", ssl=tls, headers=TUS) as r:
        return r.status


async def create_upload(base_url: str, tls, length: int) -> tuple[int, str, dict]:
    """A tus upload announced and never sent: (status, its id or "", the refusal's JSON)."""
    async with aiohttp.ClientSession() as session, \
            session.post(f"{base_url}/v1/uploads", ssl=tls, headers={**TUS, "Upload-Length": str(length)}) as r:
        body = {} if r.status == 201 else await r.json(content_type=None)
        return r.status, r.headers.get("Location", "").rsplit("/", 1)[-1], body


async def get_json(base_url: str, tls, path: str, timeout: float = 10.0):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
            session.get(base_url + path, ssl=tls) as r:
        return r.status, await r.json(content_type=None)


async def post_json(base_url: str, tls, path: str, body: dict, timeout: float = 30.0):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
            session.post(base_url + path, ssl=tls, json=body) as r:
        try:
            return r.status, await r.json(content_type=None)
        except (ValueError, aiohttp.ContentTypeError):
            return r.status, {"text": (await r.text())[:200]}


def part_file(device, upload_url: str) -> Path:
    return device.state / "uploads" / f"{upload_url.rsplit('/', 1)[1]}.part"


def upload_meta(device, upload_url: str) -> dict | None:
    path = device.state / "uploads" / f"{upload_url.rsplit('/', 1)[1]}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def wait_for(predicate, timeout: float, interval: float = 0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None

