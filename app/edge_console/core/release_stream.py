"""Unpacking and checking a release file in one pass over its bytes, while they are still arriving.

A release file (see release_trust.py) is read as a stream: its TUF metadata is set aside, and its bundle is
hashed as a whole (for TUF's target check) while its own members are unpacked and checked against its manifest
(every size and sha256, nothing extra, nothing missing): one read of the file, one write of what it holds.
(Following an upload as it arrives, in a thread of its own, was measured and dropped: on a 2-core device the
follower's Python work contends with the upload's for the interpreter and made the upload twice as slow.)

Nothing unpacked here is trusted yet: `verify_staged` runs TUF's client workflow over the metadata and compares
the target's signed length and hash with the ones computed here, before anything reaches a model store.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from . import bounded_json
from .release_format import _MEMBER_NAME, MANIFEST, MAX_MANIFEST_BYTES, SUFFIX, BundleError, BundleManifest
from .release_trust import MAX_METADATA_BYTES, ReleaseTrustError, VerifiedTarget, verify_target

MAX_RELEASE_BYTES = 4 * 1024 ** 3
STREAM_BUFFER = 1 << 20  # tar reads 10 KB at a time by default: a thousand Python-level reads per 10 MB


@dataclass(frozen=True)
class StagedRelease:
    folder: Path  # metadata/ (as delivered) and bundle/ (unpacked, every member checked against the manifest)
    bundle_name: str
    bundle_length: int
    bundle_sha256: str
    manifest: BundleManifest | None
    problem: str = ""  # what the bundle's own checks found; reported after TUF has had its say


    @property
    def bundle_dir(self) -> Path:
        return self.folder / "bundle"


class _Hashing:
    """A read-only stream that hashes and counts what is read through it."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.length = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.digest.update(data)
        self.length += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def _copy_checked(src, target: Path, expected: dict, name: str) -> None:
    digest, size = hashlib.sha256(), 0
    with open(target, "wb") as out:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if size != expected["size"]:
        raise BundleError(f"{name} is {size} bytes; the manifest says {expected['size']}")
    if digest.hexdigest() != expected["sha256"]:
        raise BundleError(f"{name} does not match its sha256 in the manifest: the bundle was altered")


def _unpack_bundle(stream: _Hashing, dest: Path) -> BundleManifest:
    dest.mkdir(parents=True)
    seen: set[str] = set()
    manifest: BundleManifest | None = None
    with tarfile.open(fileobj=stream, mode="r|", bufsize=STREAM_BUFFER) as inner:
        for info in inner:
            if not info.isfile() or info.name in seen:
                raise BundleError(f"the bundle holds {info.name!r}, which is not a plain file of a bundle")
            seen.add(info.name)
            src = inner.extractfile(info)
            if manifest is None:
                if info.name != MANIFEST or info.size > MAX_MANIFEST_BYTES:
                    raise BundleError("the bundle does not start with its manifest.json")
                manifest = BundleManifest.from_dict(bounded_json.loads(src.read()))
                (dest / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=1))
                continue
            expected = manifest.members.get(info.name)
            if expected is None or not _MEMBER_NAME.match(info.name):
                raise BundleError(f"the bundle holds {info.name!r}, which its manifest does not list")
            target = dest / info.name
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy_checked(src, target, expected, info.name)
    stream.drain()  # the tar's end blocks belong to the bundle's bytes (and its hash) too
    if manifest is None:
        raise BundleError("the bundle is empty")
    missing = set(manifest.members) - seen
    if missing:
        raise BundleError(f"the bundle lacks members its manifest lists: {sorted(missing)[:3]}")
    return manifest


def stage_release(source: BinaryIO, folder: Path) -> StagedRelease:
    """Read a release file from `source` (sequentially, once) into `folder`; ReleaseTrustError/BundleError say
    what is wrong with it."""
    bundle: tuple[str, int, str, BundleManifest] | None = None
    total = 0
    (folder / "metadata").mkdir(parents=True)
    try:
        with tarfile.open(fileobj=source, mode="r|", bufsize=STREAM_BUFFER) as outer:
            for info in outer:
                parts = Path(info.name).parts
                if not (info.isfile() and len(parts) == 2 and parts[0] in ("metadata", "targets")
                        and not parts[1].startswith(".") and len(parts[1]) <= 120):
                    raise ReleaseTrustError(f"the release file holds {info.name!r}, which a release may not hold")
                total += info.size
                if total > MAX_RELEASE_BYTES:
                    raise ReleaseTrustError(f"the release file is larger than {MAX_RELEASE_BYTES // 2**20} MB")
                src = outer.extractfile(info)
                if parts[0] == "metadata":
                    if info.size > MAX_METADATA_BYTES:
                        raise ReleaseTrustError(f"{info.name} is {info.size} bytes: far too large for metadata")
                    (folder / info.name).write_bytes(src.read())
                    continue
                if bundle is not None or not parts[1].endswith(SUFFIX):
                    raise ReleaseTrustError("a release file holds exactly one bundle (targets/*.edgebundle)")
                hashing = _Hashing(src)
                try:
                    manifest, problem = _unpack_bundle(hashing, folder / "bundle"), ""
                except (BundleError, tarfile.TarError, ValueError) as exc:
                    # Keep reading: whether these bytes are the signed bundle at all decides what to report.
                    manifest, problem = None, str(exc)
                    hashing.drain()
                bundle = (parts[1], hashing.length, hashing.digest.hexdigest(), manifest, problem)
    except tarfile.TarError as exc:
        raise ReleaseTrustError(f"not a readable release file: {exc}") from None
    if bundle is None:
        raise ReleaseTrustError("the release file holds no bundle")
    return StagedRelease(folder, *bundle)


def verify_staged(trust_dir: Path, staged: StagedRelease) -> VerifiedTarget:
    """TUF's workflow over the staged metadata; the bundle's signed length and sha256 must be the ones read.
    A signed bundle whose own manifest does not hold (a bad build that was signed) fails after that."""
    verified = verify_target(trust_dir, staged.folder, staged.bundle_name, staged.bundle_length, staged.bundle_sha256)
    if staged.problem or staged.manifest is None:
        raise BundleError(staged.problem or "the bundle has no manifest")
    return verified
