"""Resumable uploads of release files: the tus 1.0.0 protocol (core, creation, expiration and termination), so a
standard client (the console's, or `tuspy`) can resume after a cut link from the offset the device confirms.

    <state>/uploads/<id>.part   the bytes received so far
    <state>/uploads/<id>.json   {length, offset, created, filename}: the offset is what is durably on disk

Bounded: at most MAX_UPLOAD_BYTES per upload and MAX_UPLOADS kept at once (unfinished, or finished and not yet
installed). Every upload reserves the disk space it declared: a new one starts only if the disk has room for it
and for everything the others still need (the bytes yet to arrive, and room to unpack each), with SPACE_MARGIN
to spare; 507 otherwise, and again if the disk fills mid-way (what arrived stays, to resume). Uploads not
finished within EXPIRY_S, or finished and not installed within FINISHED_EXPIRY_S, are deleted. `GET /v1/uploads`
lists them; a deletion is written in the audit log.

A connection can die without a FIN or a reset (a cut link, a laptop that moved): its PATCH would then wait for
its body forever while holding the upload's lock, and the client's resumed PATCH, on a new connection, behind
it. So a newer PATCH for an upload supersedes an older one (the older stops; what it received since the last
offset the device confirmed is dropped, since the client resumes from that offset anyway), and a body that
sends nothing for READ_TIMEOUT_S ends its request, keeping what arrived.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import errno
import json
import logging
import os
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from edge_console.agent.api.access import actor, add_routes
from edge_console.agent.api.json_answers import json_error
from edge_console.agent.api.tls_gate import tls_layer_of
from edge_console.agent.updates._follower import UploadFollower
from edge_console.core.atomic_files import write_atomic
from edge_console.core.disk_reserve import RESERVE_BYTES, essential

log = logging.getLogger(__name__)
TUS_VERSION = "1.0.0"
MAX_UPLOAD_BYTES = 2 * 1024 ** 3
MAX_UPLOADS = 4
EXPIRY_S = 24 * 3600.0
FINISHED_EXPIRY_S = 3600.0  # a finished upload is installed within seconds by a console; one left is litter
SPACE_MARGIN = 64 * 2**20
CHUNK = 1 << 20
UPLOAD_TLS_READ = 256 * 1024  # asyncio's default: 4x fewer reads than tls_gate.TLS_READ_BUFFER, a third less CPU
READ_TIMEOUT_S = 20.0  # longer than TCP's retransmissions across a link flap of several seconds


def tus_headers(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, **extra}


def tus_error(status: int, error: str, detail: str, **headers: str) -> web.Response:
    return json_error(status, error, detail, headers=tus_headers(**headers))


class UploadStore:
    def __init__(self, state_dir: Path, trust_dir: Path | None = None) -> None:
        self.folder = Path(state_dir) / "uploads"
        self.trust_dir = trust_dir  # where release trust is kept: followers check signatures against a copy
        self.folder.mkdir(parents=True, exist_ok=True)
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="uploads")  # disk writes off the loop
        self._locks: dict[str, asyncio.Lock] = {}
        self._generation: dict[str, int] = {}  # upload id -> number of the newest PATCH for it
        self._writers: dict[str, asyncio.Task] = {}  # upload id -> the PATCH writing it now
        self._followers: dict[str, UploadFollower] = {}  # upload id -> its release, staged as it arrives
        for stale in self.folder.glob(".staging-*"):  # followers do not outlive the agent
            shutil.rmtree(stale, ignore_errors=True)

    def _meta_path(self, upload_id: str) -> Path:
        return self.folder / f"{_checked(upload_id)}.json"

    def part_path(self, upload_id: str) -> Path:
        return self.folder / f"{_checked(upload_id)}.part"

    def meta(self, upload_id: str) -> dict | None:
        if not _is_upload_id(upload_id):
            return None
        try:
            meta = json.loads(self._meta_path(upload_id).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return meta if isinstance(meta, dict) and {"length", "offset", "created"} <= set(meta) else None

    def _save(self, upload_id: str, meta: dict) -> None:
        essential(lambda: write_atomic(self._meta_path(upload_id), json.dumps(meta).encode()))

    def all(self) -> dict[str, dict]:
        """Every upload kept here, unfinished or finished and not yet installed: id -> meta."""
        return {p.stem: m for p in self.folder.glob("*.json") if (m := self.meta(p.stem)) is not None}

    def reserved_bytes(self) -> int:
        """Disk space the uploads kept here will still take: bytes yet to arrive, and room to unpack each."""
        return sum(m["length"] - m["offset"] + m["length"] for m in self.all().values())

    def create(self, length: int, filename: str) -> tuple[str, dict]:
        upload_id = uuid.uuid4().hex
        self.part_path(upload_id).touch()
        meta = {"length": length, "offset": 0, "created": time.time(), "filename": filename}
        self._save(upload_id, meta)
        return upload_id, meta

    def complete(self, upload_id: str) -> tuple[Path, UploadFollower | None] | None:
        """The finished upload's file, taken out of the upload store (the caller now owns it), and the follower
        that staged it as it arrived, if one did (upload_follower.py)."""
        meta = self.meta(upload_id)
        if meta is None or meta["offset"] != meta["length"]:
            return None
        target = self.folder / f".taken-{upload_id}-{meta['filename'] or 'release'}"
        self.part_path(upload_id).replace(target)
        self._meta_path(upload_id).unlink(missing_ok=True)
        follower = self._followers.pop(upload_id, None)
        self._forget(upload_id)
        return target, follower

    def delete(self, upload_id: str) -> bool:
        """Remove an upload; True if there was one."""
        existed = self._meta_path(upload_id).exists() or self.part_path(upload_id).exists()
        self.part_path(upload_id).unlink(missing_ok=True)
        self._meta_path(upload_id).unlink(missing_ok=True)
        self._forget(upload_id)
        return existed

    def _forget(self, upload_id: str) -> None:
        # The upload is gone: a PATCH still waiting for its lock finds no meta and answers 404.
        self._locks.pop(upload_id, None)
        self._generation.pop(upload_id, None)
        if (follower := self._followers.pop(upload_id, None)) is not None:
            follower.abandon()

    def _follower_for(self, upload_id: str, meta: dict, offset: int) -> UploadFollower | None:
        """The follower of an upload that starts (a new one) or continues where its follower is."""
        follower = self._followers.get(upload_id)
        if offset == 0 and (follower is None or follower.fed != 0):
            if follower is not None:
                follower.abandon()
            folder = self.folder / f".staging-{upload_id}-{uuid.uuid4().hex[:8]}"
            follower = self._followers[upload_id] = UploadFollower(folder, meta["length"], self.trust_dir)
        return follower

    def expire(self) -> int:
        now, gone = time.time(), 0
        for path in self.folder.glob("*.json"):
            meta = self.meta(path.stem)
            finished_at = meta.get("finished_at") if meta else None
            if (meta is None or now - meta["created"] > EXPIRY_S
                    or (finished_at is not None and now - finished_at > FINISHED_EXPIRY_S)):
                if _is_upload_id(path.stem):
                    self.delete(path.stem)
                else:
                    path.unlink(missing_ok=True)  # not a name this store writes
                gone += 1
        for stale in self.folder.glob(".taken-*"):
            if now - stale.stat().st_mtime > EXPIRY_S:
                stale.unlink(missing_ok=True)
        for stale in self.folder.glob(".staging-*"):  # a follower's leftovers (see UploadFollower.abandon)
            if now - stale.stat().st_mtime > EXPIRY_S:
                shutil.rmtree(stale, ignore_errors=True)
        return gone

    def lock(self, upload_id: str) -> asyncio.Lock:
        return self._locks.setdefault(upload_id, asyncio.Lock())

    def supersede(self, upload_id: str) -> int:
        """A new PATCH for `upload_id`: older ones stop (see the module docstring); returns its number."""
        self._generation[upload_id] = generation = self._generation.get(upload_id, 0) + 1
        writer = self._writers.get(upload_id)
        if writer is not None and not writer.done():
            writer.cancel()
        return generation

    def is_current(self, upload_id: str, generation: int) -> bool:
        return self._generation.get(upload_id, generation) == generation

    async def append(self, upload_id: str, meta: dict, body, generation: int = 0) -> tuple[int, OSError | None]:
        """Write the request body at meta['offset'], durably; returns the new offset (and a disk error, if one
        stopped it). A body cut short by the client, or silent for READ_TIMEOUT_S, keeps what arrived; one
        superseded by a newer PATCH keeps nothing beyond meta['offset'] (UploadSuperseded)."""
        loop = asyncio.get_running_loop()
        path = self.part_path(upload_id)
        offset = start = meta["offset"]
        task = asyncio.current_task()
        self._writers[upload_id] = task
        handle = error = None
        follower = self._follower_for(upload_id, meta, offset)
        try:
            handle = await loop.run_in_executor(self._io, _open_at, path, offset)
            while True:
                async with asyncio.timeout(READ_TIMEOUT_S):
                    chunk = await body.read(CHUNK)
                take = chunk[: meta["length"] - offset]
                if not take:
                    break
                await loop.run_in_executor(self._io, _write_and_feed, handle, offset, take, follower)
                offset += len(take)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the link was cut: what arrived is kept, the client resumes from the offset we confirm
        except asyncio.CancelledError:
            if self.is_current(upload_id, generation):
                raise  # not ours (the agent is stopping): the finally below still keeps what arrived
            task.uncancel()
            error = UploadSuperseded()
            offset = start  # the client resumes from the offset confirmed before this request, resending the rest
        except OSError as exc:
            error = exc
        finally:
            if self._writers.get(upload_id) is task:
                del self._writers[upload_id]
            try:
                if handle is not None:
                    await loop.run_in_executor(self._io, _sync_close, handle)
            except OSError as exc:
                error = error or exc
                offset = meta["offset"]  # nothing of this request is known to be on disk
            saved = meta["offset"]
            meta["offset"] = offset
            if offset == meta["length"] and "finished_at" not in meta:
                meta["finished_at"] = time.time()
            try:
                self._save(upload_id, meta)
            except OSError as exc:  # the offset on disk stays the one before this request: the client resumes there
                meta["offset"], offset = saved, saved
                meta.pop("finished_at", None)
                error = error or exc
        return offset, error

    def close(self) -> None:
        for follower in self._followers.values():
            follower.abandon()
        self._io.shutdown(wait=True)


def _is_upload_id(upload_id: str) -> bool:
    return len(upload_id) == 32 and all(c in "0123456789abcdef" for c in upload_id)


def _checked(upload_id: str) -> str:
    """An id as this store makes them (uuid4 hex): never a path, whatever reached a caller (access.ROUTE_ID is
    the first check, for every route; this is the store's own)."""
    if not _is_upload_id(upload_id):
        raise ValueError(f"not an upload id: {upload_id[:40]!r}")
    return upload_id


class UploadSuperseded(OSError):
    """A newer PATCH for the same upload took over from this one."""


def _open_at(path: Path, offset: int):
    handle = open(path, "r+b")  # noqa: SIM115 - closed by _sync_close after the body is written
    handle.truncate(offset)  # bytes beyond the confirmed offset (written before a crash) are not trusted
    handle.seek(offset)
    return handle


def _write_and_feed(handle, offset: int, data: bytes, follower: UploadFollower | None) -> None:
    # An upload never takes the disk's last RESERVE_BYTES, even once the reserve file was given back to
    # essential writes (core/disk_reserve.py): they, not a release, get what is left.
    if shutil.disk_usage(os.path.dirname(handle.name)).free < len(data) + RESERVE_BYTES:
        raise OSError(errno.ENOSPC, "the disk is full (its last megabytes are kept for the device's own records)")
    handle.write(data)
    if follower is not None:
        follower.feed_at(offset, data)


def _sync_close(handle) -> None:
    try:
        handle.flush()
        os.fsync(handle.fileno())
    finally:
        handle.close()


def _filename(metadata_header: str) -> str:
    for item in metadata_header.split(","):
        key, _, value = item.strip().partition(" ")
        if key == "filename" and value:
            try:
                name = base64.b64decode(value, validate=True).decode("utf-8", "replace")
            except ValueError:
                return ""
            return "".join(c for c in Path(name).name if c.isalnum() or c in "._-")[:100]
    return ""


def _expires(meta: dict) -> str:
    finished_at = meta.get("finished_at")
    at = finished_at + FINISHED_EXPIRY_S if finished_at is not None else meta["created"] + EXPIRY_S
    return email.utils.formatdate(at, usegmt=True)


def _check_version(request: web.Request) -> web.Response | None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        return tus_error(412, "unsupported tus version", f"send Tus-Resumable: {TUS_VERSION}",
                         **{"Tus-Version": TUS_VERSION})
    return None


UPLOADS = web.AppKey("uploads", UploadStore)
UPLOADS_AUDIT = web.AppKey("uploads_audit", object)  # the agent's AuditLog (None in tests of the store alone)


async def options(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=tus_headers(**{
        "Tus-Version": TUS_VERSION, "Tus-Max-Size": str(MAX_UPLOAD_BYTES),
        "Tus-Extension": "creation,expiration,termination"}))


async def create(request: web.Request) -> web.Response:
    store = request.app[UPLOADS]
    if (refused := _check_version(request)) is not None:
        return refused
    try:
        length = int(request.headers["Upload-Length"])
        if length < 1:
            raise ValueError
    except (KeyError, ValueError):
        return tus_error(400, "bad upload", "Upload-Length must give the size in bytes")
    if length > MAX_UPLOAD_BYTES:
        return tus_error(413, "upload too large", f"at most {MAX_UPLOAD_BYTES // 2**20} MB")
    if len(store.all()) >= MAX_UPLOADS:
        return tus_error(429, "too many uploads", f"this device keeps at most {MAX_UPLOADS} uploads; install or "
                                                  "delete one first (GET /v1/uploads lists them; unfinished ones "
                                                  "expire in 24 h, finished ones in 1 h)")
    free, reserved = shutil.disk_usage(store.folder).free, store.reserved_bytes()
    if free - reserved < 2 * length + SPACE_MARGIN:  # the upload, then its unpacked copy
        held = f", of which {reserved // 2**20} MB are promised to uploads already started" if reserved else ""
        return tus_error(507, "not enough disk space", f"the release needs about {2 * length // 2**20} MB and this "
                                                       f"device has {free // 2**20} MB free{held}; free some space "
                                                       "first")
    upload_id, meta = store.create(length, _filename(request.headers.get("Upload-Metadata", "")))
    return web.Response(status=201, headers=tus_headers(**{
        "Location": f"/v1/uploads/{upload_id}", "Upload-Expires": _expires(meta)}))


async def head(request: web.Request) -> web.Response:
    meta = request.app[UPLOADS].meta(request.match_info["upload_id"])
    if meta is None:
        return web.Response(status=404, headers=tus_headers(**{"Cache-Control": "no-store"}))
    return web.Response(status=200, headers=tus_headers(**{
        "Upload-Offset": str(meta["offset"]), "Upload-Length": str(meta["length"]), "Cache-Control": "no-store",
        "Upload-Expires": _expires(meta)}))


async def patch(request: web.Request) -> web.Response:
    store = request.app[UPLOADS]
    upload_id = request.match_info["upload_id"]
    if (refused := _check_version(request)) is not None:
        return refused
    if request.content_type != "application/offset+octet-stream":
        return tus_error(415, "bad content type", "send Content-Type: application/offset+octet-stream")
    if store.meta(upload_id) is None:  # before any lock or counter is kept for it: made-up ids leave nothing
        return tus_error(404, "no such upload", "it expired or was never created; start a new one")
    generation = store.supersede(upload_id)
    async with store.lock(upload_id):
        meta = store.meta(upload_id)
        if meta is None:
            return tus_error(404, "no such upload", "it expired or was never created; start a new one")
        if not store.is_current(upload_id, generation):  # a newer PATCH arrived while this one waited
            return _superseded(meta)
        try:
            offset = int(request.headers["Upload-Offset"])
        except (KeyError, ValueError):
            return tus_error(400, "bad upload", "Upload-Offset must give the offset of this chunk")
        if offset != meta["offset"]:
            return tus_error(409, "offset mismatch", f"the device has {meta['offset']} bytes; resume from there",
                             **{"Upload-Offset": str(meta["offset"])})
        with _large_tls_reads(request):
            new_offset, error = await store.append(upload_id, meta, request.content, generation)
    if isinstance(error, UploadSuperseded):
        return _superseded(meta)
    if error is not None:
        if error.errno == errno.ENOSPC:
            log.warning("upload %s: disk full at %d of %d bytes", upload_id, new_offset, meta["length"])
            return tus_error(507, "disk full", f"the device's disk filled at {new_offset} of {meta['length']} "
                                               "bytes; free space and resume", **{"Upload-Offset": str(new_offset)})
        return tus_error(500, "write failed", str(error.strerror or error), **{"Upload-Offset": str(new_offset)})
    return web.Response(status=204, headers=tus_headers(**{"Upload-Offset": str(new_offset),
                                                           "Upload-Expires": _expires(meta)}))


@contextlib.contextmanager
def _large_tls_reads(request: web.Request):
    """Read this connection's TLS records in large pieces while it uploads (see tls_gate.TLS_READ_BUFFER)."""
    protocol = tls_layer_of(request.protocol)
    if protocol is None:  # plain TCP: the insecure lab mode
        yield
        return
    protocol.max_size = UPLOAD_TLS_READ
    try:
        yield
    finally:
        del protocol.max_size  # back to the small default: idle connections stay cheap


def _superseded(meta: dict) -> web.Response:
    return tus_error(409, "superseded", "a newer PATCH for this upload took over; ask for the offset (HEAD) and "
                                        "resume from there", **{"Upload-Offset": str(meta["offset"])})


async def delete(request: web.Request) -> web.Response:
    if (refused := _check_version(request)) is not None:
        return refused
    upload_id = request.match_info["upload_id"]
    if not _is_upload_id(upload_id):
        return tus_error(404, "no such upload", "upload ids are 32 hexadecimal characters (GET /v1/uploads)")
    meta = request.app[UPLOADS].meta(upload_id)
    if not request.app[UPLOADS].delete(upload_id):
        return tus_error(404, "no such upload", "it expired, was installed or was never created")
    audit = request.app[UPLOADS_AUDIT]
    if audit is not None:
        await asyncio.to_thread(audit.append, actor(request), "upload deleted", upload=upload_id,
                                filename=(meta or {}).get("filename", ""), length=(meta or {}).get("length"))
    return web.Response(status=204, headers=tus_headers())


async def listing(request: web.Request) -> web.Response:
    """The uploads kept on the device, and the disk space they still hold: what an operator may delete."""
    store = request.app[UPLOADS]
    uploads = [{"id": upload_id, "filename": m.get("filename", ""), "length": m["length"], "offset": m["offset"],
                "finished": m["offset"] >= m["length"], "created": m["created"], "expires": _expires(m)}
               for upload_id, m in sorted(store.all().items(), key=lambda kv: kv[1]["created"])]
    return web.json_response({"uploads": uploads, "reserved_bytes": store.reserved_bytes(),
                              "free_bytes": shutil.disk_usage(store.folder).free}, headers=tus_headers())


def add_upload_routes(app: web.Application, store: UploadStore, roles: dict[tuple[str, str], str],
                      audit=None) -> None:
    app[UPLOADS] = store
    app[UPLOADS_AUDIT] = audit
    add_routes(app, roles, (("OPTIONS", "/v1/uploads", options, "operator"),
                            ("POST", "/v1/uploads", create, "operator"),
                            ("GET", "/v1/uploads", listing, "operator"),
                            ("HEAD", "/v1/uploads/{upload_id}", head, "operator"),
                            ("PATCH", "/v1/uploads/{upload_id}", patch, "operator"),
                            ("DELETE", "/v1/uploads/{upload_id}", delete, "operator")))
