"""Unpacking and checking a release file in one pass over its bytes, while they are still arriving.

A release file (see release_trust.py) is read as a stream: its TUF metadata is set aside, and its bundle is
hashed as a whole (for TUF's target check) while its own members are unpacked and checked against its manifest
(every size and sha256, nothing extra, nothing missing): one read of the file, one write of what it holds.
`ReleaseStager` is pushed the bytes (a device feeds it an upload as it arrives: agent/updates/_follower.py);
`stage_release` feeds it a file. Both walk the tars with core/releases/tar_stream.py, which hands the bytes on without
copying them: hashing and writing them is all the work there is.

Nothing unpacked here is trusted yet: `verify_staged` runs TUF's client workflow over the metadata and compares
the target's signed length and hash with the ones computed here, before anything reaches a model store.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from edge_console.core import bounded_json
from edge_console.core.detection.onnx_shape import not_onnx_message, onnx_file_problem
from edge_console.core.releases.file_format import (
    _MEMBER_NAME,
    MANIFEST,
    MAX_MEMBERS,
    SUFFIX,
    BundleError,
    BundleManifest,
    manifest_size_problem,
)
from edge_console.core.releases.preverify import PreVerified, commit
from edge_console.core.releases.tar_stream import BLOCK, MemberSink, TarFormatError, TarWalker
from edge_console.core.releases.trust import MAX_METADATA_BYTES, ReleaseTrustError, VerifiedTarget, verify_target

MAX_RELEASE_BYTES = 4 * 1024 ** 3
# A delivery's metadata: four files and the root chain (TUF follows at most 256 rotations in one go).
MAX_METADATA_MEMBERS = 300
MAX_METADATA_TOTAL = 32 * 1024 * 1024
# After the end-of-archive marker a tar writer pads to its record size (tarfile and GNU tar: 20 blocks, 10 KiB);
# much more than that is not padding but something carried along, and nothing of a release may go unread.
MAX_TRAILING_BYTES = 64 * BLOCK
STREAM_BUFFER = 1 << 20


@dataclass(frozen=True)
class StagedRelease:
    folder: Path  # metadata/ (as delivered) and bundle/ (unpacked, every member checked against the manifest)
    bundle_name: str
    bundle_length: int
    bundle_sha256: str
    manifest: BundleManifest | None
    problem: str = ""  # what the bundle's own checks found; reported after TUF has had its say
    preverified: PreVerified | None = None  # its signatures, checked as it arrived (release_preverify.py)

    @property
    def bundle_dir(self) -> Path:
        return self.folder / "bundle"


class _Collected:
    """A small member kept in memory until it is complete (metadata, the manifest)."""

    def __init__(self, done) -> None:
        self.data = bytearray()
        self._done = done

    def write(self, data: memoryview) -> None:
        self.data += data

    def close(self) -> None:
        self._done(bytes(self.data))


class _CheckedFile:
    """A bundle member written to its file while its sha256 is computed; checked against the manifest at its end."""

    def __init__(self, target: Path, name: str, expected: dict) -> None:
        self.name, self.expected = name, expected
        self.digest = hashlib.sha256()
        self.out = open(target, "wb", buffering=0)  # noqa: SIM115 - closed at the member's end (or abort)

    def write(self, data: memoryview) -> None:
        self.digest.update(data)
        self.out.write(data)

    def close(self) -> None:
        self.out.close()
        if self.digest.hexdigest() != self.expected["sha256"]:
            raise BundleError(f"{self.name} does not match its sha256 in the manifest: the bundle was altered")

    def abort(self) -> None:
        self.out.close()


class _BundleReader:
    """The bundle member of a release: hashed whole, and unpacked with every member checked. A problem with its
    own content is noted, not raised: whether these bytes are the signed bundle at all decides what to report."""

    def __init__(self, name: str, dest: Path) -> None:
        self.name, self.dest = name, dest
        self.digest = hashlib.sha256()
        self.length = 0
        self.manifest: BundleManifest | None = None
        self.problem = ""
        self._seen: set[str] = set()
        self._open: _CheckedFile | None = None
        self._walker = TarWalker(self._member)
        dest.mkdir(parents=True)

    def write(self, data: memoryview) -> None:
        self.digest.update(data)
        self.length += len(data)
        if not self.problem:
            self._guarded(self._walker.feed, data)

    def close(self) -> None:
        if not self.problem:
            self._guarded(self._finish)

    def _guarded(self, step, *args) -> None:
        try:
            step(*args)
        except TarFormatError as exc:
            self._fail(f"not a readable bundle: {exc}")
        except (BundleError, ValueError) as exc:
            self._fail(str(exc))

    def _fail(self, problem: str) -> None:
        self.problem = problem
        if self._open is not None:
            self._open.abort()

    def _member(self, name: str, size: int) -> MemberSink:
        if len(self._seen) > MAX_MEMBERS:
            raise BundleError(f"the bundle holds more than {MAX_MEMBERS} members")
        if name in self._seen:
            raise BundleError(f"the bundle holds {name!r} twice")
        self._seen.add(name)
        if self.manifest is None:
            if name != MANIFEST:
                raise BundleError(f"the bundle does not start with its manifest.json (it starts with {name[:80]!r})")
            if problem := manifest_size_problem(size):
                raise BundleError(problem)
            return _Collected(self._take_manifest)
        expected = self.manifest.members.get(name)
        if expected is None or not _MEMBER_NAME.match(name):
            raise BundleError(f"the bundle holds {name!r}, which its manifest does not list")
        if size != expected["size"]:
            raise BundleError(f"{name} is {size} bytes; the manifest says {expected['size']}")
        target = self.dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        self._open = _CheckedFile(target, name, expected)
        return self._open

    def _take_manifest(self, data: bytes) -> None:
        self.manifest = BundleManifest.from_dict(bounded_json.loads(data))
        (self.dest / MANIFEST).write_text(json.dumps(self.manifest.to_dict()))  # no indent: json's fast encoder

    def _finish(self) -> None:
        self._walker.finish()
        if self.manifest is None:
            raise BundleError("the bundle is empty")
        missing = set(self.manifest.members) - self._seen
        if missing:
            raise BundleError(f"the bundle lacks members its manifest lists: {sorted(missing)[:3]}")
        if problem := onnx_file_problem(self.dest / "model.onnx"):
            raise BundleError(not_onnx_message(f"model.onnx of {self.manifest.label}", problem))


class ReleaseStager:
    """One release file, pushed in order (`feed`) into `folder`; `finish` at its end gives the StagedRelease.
    ReleaseTrustError says what is wrong with the release itself."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "metadata").mkdir(parents=True)
        self._total = 0
        self._fed = 0
        self._metadata_members = 0
        self._metadata_total = 0
        self._bundle: _BundleReader | None = None
        self._walker = TarWalker(self._member)

    def feed(self, data: bytes | memoryview) -> None:
        self._fed += len(data)
        try:
            self._walker.feed(data)
        except TarFormatError as exc:
            raise ReleaseTrustError(f"not a readable release file: {exc}") from None
        if self._walker.ended and self._fed - self._walker.consumed > MAX_TRAILING_BYTES:
            raise ReleaseTrustError(f"the release file goes on after its end (more than {MAX_TRAILING_BYTES} bytes "
                                    "follow the tar's end marker): it is not a release file as edge-bundle writes "
                                    "it, or something was appended to it")

    def finish(self) -> StagedRelease:
        try:
            self._walker.finish()
        except TarFormatError as exc:
            raise ReleaseTrustError(f"not a readable release file: {exc}") from None
        bundle = self._bundle
        if bundle is None:
            raise ReleaseTrustError("the release file holds no bundle")
        return StagedRelease(self.folder, bundle.name, bundle.length, bundle.digest.hexdigest(), bundle.manifest,
                             bundle.problem or ("" if bundle.manifest else "the bundle has no manifest"))

    def _member(self, name: str, size: int) -> MemberSink:
        parts = Path(name).parts
        if not (len(parts) == 2 and parts[0] in ("metadata", "targets") and not parts[1].startswith(".")
                and len(parts[1]) <= 120 and "/".join(parts) == name):
            raise ReleaseTrustError(f"the release file holds {name!r}, which a release may not hold")
        self._total += size
        if self._total > MAX_RELEASE_BYTES:
            raise ReleaseTrustError(f"the release file is larger than {MAX_RELEASE_BYTES // 2**20} MB")
        if parts[0] == "metadata":
            if size > MAX_METADATA_BYTES:
                raise ReleaseTrustError(f"{name} is {size} bytes: far too large for metadata")
            self._metadata_members += 1
            self._metadata_total += size
            if self._metadata_members > MAX_METADATA_MEMBERS or self._metadata_total > MAX_METADATA_TOTAL:
                raise ReleaseTrustError(f"the release file holds more metadata than a release needs (over "
                                        f"{MAX_METADATA_MEMBERS} files or {MAX_METADATA_TOTAL // 2**20} MB)")
            return _Collected((self.folder / name).write_bytes)
        if self._bundle is not None or not parts[1].endswith(SUFFIX):
            raise ReleaseTrustError("a release file holds exactly one bundle (targets/*.edgebundle)")
        self._bundle = _BundleReader(parts[1], self.folder / "bundle")
        return self._bundle


def stage_release(source: BinaryIO, folder: Path, copy: BinaryIO | None = None) -> StagedRelease:
    """Read a release file from `source` (sequentially, once) into `folder`, and into `copy` as read when given;
    ReleaseTrustError/BundleError say what is wrong with it (as soon as it is seen: nothing more is read)."""
    stager = ReleaseStager(folder)
    while chunk := source.read(STREAM_BUFFER):
        stager.feed(chunk)
        if copy is not None:
            copy.write(chunk)
    return stager.finish()


def verify_staged(trust_dir: Path, staged: StagedRelease, holder: str = "this device") -> VerifiedTarget:
    """TUF's workflow over the staged metadata; the bundle's signed length and sha256 must be the ones read.
    A signed bundle whose own manifest does not hold (a bad build that was signed) fails after that."""
    verified = commit(trust_dir, staged.preverified, staged.bundle_dir) or verify_target(
        trust_dir, staged.folder, staged.bundle_name, staged.bundle_length, staged.bundle_sha256, holder)
    if staged.problem or staged.manifest is None:
        raise BundleError(staged.problem or "the bundle has no manifest")
    return verified
