"""Helpers for update tests: releases signed by a real authority (or step by step, or by a machine whose clock runs
ahead), a tus upload client, waiting on update states, and a real device that trusts an authority."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from tuf.api.metadata import Metadata, Targets, Timestamp

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.build import build_bundle
from edge_console.core.protocol import UPDATE_FINAL
from edge_console.core.releases.file_format import MANIFEST, read_manifest, sha256_bytes
from edge_console.core.releases.trust import SigningKey, add_target, delivery_metadata, pack, write_delivery

TUS = {"Tus-Resumable": "1.0.0"}
DAY_S = 86400.0


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
    """A real agent on 127.0.0.1 (TLS and pairing on, tests/support/agent_harness.py) running parts-v1 and trusting
    `authority`'s root, with a console of its own enrolled as `role` (admin: it may install release trust as well as
    deliver). Started when made; `stop()`, `kill()` (a power cut) and `start()` again keep its state folder."""

    def __init__(self, folder: Path, authority: ReleaseAuthority, probation_s: float = 1.0, *, role: str = "admin",
                 fps: float = 10, extra: tuple[str, ...] = (), log_dir: Path | None = None) -> None:
        from edge_console.core.paths import demo_model
        from tests.support.agent_harness import Agent

        self.agent = Agent(folder / "state", model=demo_model("parts-v1"), role=role,
                           release_root=authority.root_json(), settings={"probation_s": probation_s}, fps=fps,
                           extra=extra, log_dir=log_dir)
        self.state = self.agent.state_dir
        self.console = self.agent.console
        self.start()

    def start(self) -> None:
        self.agent.start()
        self.url = self.agent.url  # a new port at each start

    def run(self, scenario):
        async def go():
            async with self.agent.session() as s:
                return await scenario(s, self.url)
        return asyncio.run(go())

    def deliver(self, release: Path, final: tuple[str, ...] = UPDATE_FINAL) -> dict:
        async def scenario(s, url):
            return await wait_state(s, url, await install(s, url, await upload(s, url, release)), final)
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
        """The model it runs now, as its /v1/info says."""
        return self.run(lambda s, url: info(s, url))["model"]

    def audit(self) -> list[dict]:
        async def scenario(s, url):
            async with s.get(url + "/v1/audit") as r:
                return (await r.json())["entries"]
        return self.run(scenario)

    def stop(self) -> None:
        self.agent.stop()

    def kill(self) -> None:
        self.agent.kill()


# -- signing with explicit keys and versions -----------------------------------------------------------------------


@dataclass
class Signer:
    """A release authority, signed step by step (keys and metadata versions chosen by the caller)."""

    authority: ReleaseAuthority
    folder: Path
    version: int = field(default_factory=lambda: int(time.time()))

    def next_version(self) -> int:
        self.version += 1
        return self.version

    def delivery_metadata(self, targets: Metadata[Targets], signer: SigningKey, *,
                          snapshot_days: int | None = None, timestamp_days: int | None = None,
                          version: int | None = None, hashes: bool = True) -> tuple[Metadata, Metadata]:
        """A snapshot and timestamp for `targets` signed by `signer`, with the length and sha256 of what they vouch
        for unless `hashes` is False (as release tooling before issue 21 signed them)."""
        from tuf.api.metadata import MetaFile, Snapshot

        from edge_console.core.releases.trust import _SERIALIZER, _expiry, _metafile

        v = version or self.next_version()

        def meta(version: int, data: bytes) -> MetaFile:
            return _metafile(version, data) if hashes else MetaFile(version=version)

        snapshot = Metadata(Snapshot(version=v, expires=_expiry("snapshot", snapshot_days)))
        snapshot.signed.meta["targets.json"] = meta(targets.signed.version, targets.to_bytes(_SERIALIZER))
        snapshot.sign(signer.signer)
        timestamp = Metadata(Timestamp(version=v, expires=_expiry("timestamp", timestamp_days)))
        timestamp.signed.snapshot_meta = meta(v, snapshot.to_bytes(_SERIALIZER))
        timestamp.sign(signer.signer)
        return snapshot, timestamp

    def delivery(self, targets: Metadata[Targets], signer: SigningKey | None, bundle: Path, *, roots=None,
                 reuse: tuple[Metadata, Metadata] | None = None, **options) -> bytes:
        """A release file: the root chain (`roots`, else the authority's), `targets`, and a snapshot and timestamp
        signed by `signer` (see delivery_metadata for `options`) or `reuse`d from another delivery; the bundle."""
        snapshot, timestamp = reuse or self.delivery_metadata(targets, signer, **options)
        with tempfile.TemporaryDirectory(dir=self.folder) as tmp:
            named = Path(tmp) / "named"
            named.mkdir()
            target = named / targets_name(bundle)
            target.symlink_to(bundle.resolve())
            folder = write_delivery(Path(tmp) / "delivery", roots or self.authority.roots(), targets, snapshot,
                                    timestamp, [target])
            out = pack(folder, Path(tmp) / "release.tar")
            return out.read_bytes()

    def targets(self, previous: Metadata[Targets] | None, bundle: Path, keys: list[SigningKey],
                expiry_days: int | None = None) -> Metadata[Targets]:
        with tempfile.TemporaryDirectory(dir=self.folder) as tmp:
            named = Path(tmp) / targets_name(bundle)
            named.symlink_to(bundle.resolve())
            return add_target(previous, named, keys, {"model_line": "parts"}, expiry_days)


def targets_name(bundle: Path) -> str:
    """The canonical target name, from the manifest as written (even one too large for a device to accept)."""
    with tarfile.open(bundle) as tar:
        manifest = json.loads(tar.extractfile(tar.getmember("manifest.json")).read())
    return f"{manifest['model_line']}-{manifest['version']}.edgebundle"


# -- signing as another machine would -------------------------------------------------------------------------


def version_of(kit: dict, version: str, folder: Path) -> Path:
    """The kit's good bundle as another version (same model and golden set)."""
    return rewrite_bundle(kit["good"], folder / f"parts-{version}.edgebundle",
                          manifest_edit=lambda m: m.update(version=version))


@contextlib.contextmanager
def clock_ahead(days: float):
    """This process's clock runs `days` ahead (the signing machine's, in the attacker's report); afterwards the
    process forgets the versions it handed out meanwhile, as the next test's signing machine would not know them."""
    from edge_console.core.releases import metadata_versions as release_versions

    real, before = time.time, release_versions._last_in_process[0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time", lambda: real() + days * DAY_S)
        yield
    release_versions._last_in_process[0] = before


def edge_bundle(*args: str) -> subprocess.CompletedProcess:
    """`edge-bundle ...` (the signing tool) as typed; the result, whatever its exit status."""
    from tests.support.agent_harness import ROOT

    return subprocess.run([sys.executable, "-m", "edge_console.bundle.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
