"""Helpers for update tests: releases signed by a real authority, a tus upload client, waiting on update states."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import time
from pathlib import Path

import aiohttp

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.build import build_bundle
from edge_console.core.release_format import MANIFEST, sha256_bytes
from edge_console.core.release_trust import delivery_metadata, pack, write_delivery

TUS = {"Tus-Resumable": "1.0.0"}


def rewrite_bundle(bundle: Path, out: Path, *, replace: dict[str, bytes] | None = None,
                   manifest_edit=None, rehash: bool = True) -> Path:
    """A copy of `bundle` with members replaced and/or the manifest edited (hashes recomputed unless told not)."""
    with tarfile.open(bundle) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    manifest = json.loads(files.pop(MANIFEST))
    files.update(replace or {})
    if rehash:
        manifest["members"] = {n: {"sha256": sha256_bytes(d), "size": len(d)} for n, d in files.items()}
    if manifest_edit:
        manifest_edit(manifest)
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [(MANIFEST, json.dumps(manifest).encode()), *files.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def flip_bundle_byte(release: bytes) -> bytes:
    """A release file with one byte in the middle of its bundle flipped: altered after signing."""
    with tarfile.open(fileobj=io.BytesIO(release)) as tar:
        bundle = next(m for m in tar.getmembers() if m.name.startswith("targets/"))
        at = bundle.offset_data + bundle.size // 2
    return release[:at] + bytes([release[at] ^ 0xFF]) + release[at + 1:]


def signed_release(authority: ReleaseAuthority, bundle: Path, out: Path, *, expiry_days: int | None = None) -> Path:
    """Sign like `edge-bundle sign`, optionally with delivery metadata that expires `expiry_days` from now."""
    if expiry_days is None:
        return authority.sign(bundle, out)
    release = authority.sign(bundle, out.with_suffix(".tmp"))
    targets = authority.targets()
    snapshot, timestamp = delivery_metadata(targets, authority.key("delivery"), expiry_days=expiry_days)
    folder = out.parent / (out.stem + "-folder")
    write_delivery(folder, authority.roots(), targets, snapshot, timestamp, [])
    with tarfile.open(release) as tar:
        member = next(m for m in tar.getmembers() if m.name.startswith("targets/"))
        (folder / member.name).write_bytes(tar.extractfile(member).read())
    release.unlink()
    return pack(folder, out)


def build(model: Path, line: str, version: str, golden: Path, out_dir: Path, **options) -> Path:
    return build_bundle(model, line, version, golden, out_dir / f"{line}-{version}-{time.monotonic_ns()}.edgebundle",
                        **options)


async def upload(session: aiohttp.ClientSession, base: str, release: Path, *, cut_after: int | None = None,
                 chunk: int = 256 * 1024) -> str:
    """tus: create, then PATCH chunks. With `cut_after`, stop after that many bytes (as a cut link would)."""
    data = release.read_bytes()
    async with session.post(base + "/v1/uploads", headers={**TUS, "Upload-Length": str(len(data))}) as r:
        assert r.status == 201, await r.text()
        upload_id = r.headers["Location"].rsplit("/", 1)[1]
    await send_from(session, base, upload_id, data, 0, cut_after, chunk)
    return upload_id


async def offset_of(session: aiohttp.ClientSession, base: str, upload_id: str) -> int:
    async with session.head(f"{base}/v1/uploads/{upload_id}", headers=TUS) as r:
        assert r.status == 200
        return int(r.headers["Upload-Offset"])


async def send_from(session: aiohttp.ClientSession, base: str, upload_id: str, data: bytes, offset: int,
                    stop_at: int | None = None, chunk: int = 256 * 1024) -> int:
    end = len(data) if stop_at is None else min(stop_at, len(data))
    while offset < end:
        piece = data[offset:min(offset + chunk, end)]
        async with session.patch(f"{base}/v1/uploads/{upload_id}", data=piece, headers={
                **TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}) as r:
            assert r.status == 204, (r.status, await r.text())
            offset = int(r.headers["Upload-Offset"])
    return offset


async def install(session: aiohttp.ClientSession, base: str, upload_id: str) -> str:
    async with session.post(base + "/v1/updates", json={"upload": upload_id}) as r:
        body = await r.json()
        assert r.status == 202, body
        return body["id"]


async def wait_state(session: aiohttp.ClientSession, base: str, update_id: str, states: tuple[str, ...],
                     timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with session.get(f"{base}/v1/updates/{update_id}") as r:
            record = await r.json()
        if record["state"] in states:
            return record
        await asyncio.sleep(0.2)
    raise AssertionError(f"update {update_id} stuck in {record['state']}: {record}")


async def info(session: aiohttp.ClientSession, base: str) -> dict:
    async with session.get(base + "/v1/info") as r:
        return await r.json()
