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
from edge_console.core.releases.file_format import MANIFEST, read_manifest, sha256_bytes
from edge_console.core.releases.trust import SigningKey, add_target, delivery_metadata, pack, write_delivery

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


def sign_unchecked(authority: ReleaseAuthority, bundle: Path, out: Path, *, targets_key: SigningKey | None = None,
                   targets_expiry_days: int | None = None) -> Path:
    """Sign as `edge-bundle sign` does, without its checks of the bundle (as older tooling, or someone holding the
    keys, could): a model that is not ONNX, targets metadata that expires `targets_expiry_days` from now."""
    manifest = read_manifest(bundle)
    folder = out.parent / f"{out.stem}-unchecked"
    named = folder / "named" / f"{manifest.model_line}-{manifest.version}.edgebundle"
    named.parent.mkdir(parents=True)
    named.symlink_to(bundle.resolve())
    targets = add_target(authority.targets(), named, [targets_key or authority.key("targets")],
                         {"model_line": manifest.model_line, "version": manifest.version}, targets_expiry_days)
    (authority.metadata_dir / "targets.json").write_bytes(targets.to_bytes())
    snapshot, timestamp = delivery_metadata(targets, authority.key("delivery"),
                                            version=authority.versions.next())
    write_delivery(folder / "release", authority.roots(), targets, snapshot, timestamp, [named])
    return pack(folder / "release", out)


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


def release_members(release: Path) -> dict[str, bytes]:
    with tarfile.open(release) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def release_from(members: dict[str, bytes], out: Path) -> Path:
    """A release file holding exactly `members` (name -> bytes), as an attacker would assemble one."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


class TrustingDevice:
    """A real agent on 127.0.0.1 (TLS and pairing on) running parts-v1 and trusting `authority`'s root, with a
    console enrolled as admin (it may install release trust as well as deliver)."""

    def __init__(self, folder: Path, authority: ReleaseAuthority, probation_s: float = 1.0) -> None:
        from edge_console.core.paths import demo_model
        from edge_console.core.releases.trust import install_root
        from tests.support.agents import AgentProcess, agent_args
        from tests.support.trust import console_identity, enrol

        self.state = folder / "state"
        install_root(self.state / "release-trust", authority.root_json())
        self.console = console_identity(folder / "console")
        enrol(self.state, self.console, "admin")
        config = folder / "agent.toml"
        config.write_text(f"probation_s = {probation_s}\n")
        self.proc = AgentProcess(agent_args(demo_model("parts-v1"), self.state, "--config", str(config),
                                            "--no-advertise", "--fps", "10", secure=True))
        self.url = self.proc.url

    def run(self, scenario):
        from tests.support.trust import device_certificate, pinned_session

        async def go():
            async with pinned_session(self.console, device_certificate(self.state)) as s:
                return await scenario(s, self.url)
        return asyncio.run(go())

    def deliver(self, release: Path) -> dict:
        async def scenario(s, url):
            return await wait_state(s, url, await install(s, url, await upload(s, url, release)),
                                    ("good", "rejected", "interrupted", "rolled_back"))
        return self.run(scenario)

    def release_trust(self) -> dict:
        async def scenario(s, url):
            async with s.get(url + "/v1/release-trust") as r:
                assert r.status == 200
                return await r.json()
        return self.run(scenario)

    def put_root(self, root_json: bytes) -> tuple[int, dict]:
        async def scenario(s, url):
            async with s.put(url + "/v1/release-trust/root", data=root_json) as r:
                return r.status, await r.json()
        return self.run(scenario)

    def model(self) -> dict:
        return self.run(lambda s, url: info(s, url))["model"]

    def stop(self) -> None:
        self.proc.stop()
