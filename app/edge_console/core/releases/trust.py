"""Release trust with TUF (python-tuf): who may sign what, and checking a delivered release against it.

Roles, as TUF defines them:
    root       offline, with whoever releases models (`edge-bundle`): names the keys of every role
    targets    offline, with whoever releases models: signs which bundles exist (name, length, sha256)
    snapshot,  the "delivery" keys: one with the release tooling (for a USB stick), one per console that
    timestamp  delivers releases; they say which targets metadata is current, and until when

A delivery (what a device receives, and what a release file holds) is a folder or a tar of it:
    metadata/root.json, metadata/<N>.root.json   the root and its rotations (each signed by the one before)
    metadata/targets.json, snapshot.json, timestamp.json
    targets/<line>-<version>.edgebundle
The device verifies it with TUF's own client workflow (`tuf.ngclient.Updater`) through a fetcher that reads the
staged folder instead of a network: signatures and thresholds, expiry, version rollback (replayed or frozen
metadata), mix-and-match, key rotation and revocation through root, the target's length and hashes.

Snapshot and timestamp list the length and sha256 of the metadata they vouch for, and a device refuses them
without (release_checks.py): otherwise a device still on an old root could be given the real, current snapshot and
timestamp beside a targets.json signed by a revoked key. Their versions are the signing time in milliseconds, kept
above whatever the signer signed before and above what a device reports it holds (release_versions.py: a fast
clock must not freeze a fleet). A root that lists one public key under two key ids is refused everywhere: one key
would count twice towards a threshold.
"""

from __future__ import annotations

import datetime
import hashlib
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization import DeserializationError
from tuf.api.serialization.json import JSONSerializer
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from edge_console.core.atomic_files import interrupted, recover_folder, replace_folder, replacing
from edge_console.core.errors import EdgeConsoleError
from edge_console.core.file_lock import exclusive
from edge_console.core.releases.checks import delivery_problem, explain, held_versions, root_key_problem
from edge_console.core.releases.metadata_versions import VersionMark

EXPIRY_DAYS = {"root": 730, "targets": 365, "snapshot": 45, "timestamp": 45}  # sites are visited monthly
MAX_METADATA_BYTES = 1024 * 1024
_SERIALIZER = JSONSerializer(compact=False)


class ReleaseTrustError(EdgeConsoleError):
    """A release failed its signature checks; the message says which check and what it means."""


def _expiry(role: str, days: int | None = None) -> datetime.datetime:
    return (datetime.datetime.now(datetime.UTC).replace(microsecond=0)
            + datetime.timedelta(days=days or EXPIRY_DAYS[role]))


# -- keys ----------------------------------------------------------------------------------------------------------


@dataclass
class SigningKey:
    signer: CryptoSigner

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(CryptoSigner.generate_ed25519())

    @property
    def public(self) -> SSlibKey:
        return self.signer.public_key

    @property
    def keyid(self) -> str:
        return self.public.keyid

    def private_pem(self, passphrase: bytes | None = None) -> bytes:
        if passphrase is None:
            return self.signer.private_bytes
        key = serialization.load_pem_private_key(self.signer.private_bytes, None)
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.BestAvailableEncryption(passphrase))

    @classmethod
    def from_pem(cls, pem: bytes, passphrase: bytes | None = None) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(pem, passphrase)
        except (ValueError, TypeError) as exc:
            raise ReleaseTrustError(f"cannot read the signing key: {exc} (a wrong or missing passphrase?)") from None
        return cls(CryptoSigner(key))


# -- the repository side (edge-bundle, the console) -------------------------------------------------------------


def new_root(root: list[SigningKey], targets: list[SigningKey], delivery: list[SigningKey],
             threshold: int = 1, expiry_days: int | None = None) -> Metadata[Root]:
    """Root metadata version 1, signed by the root keys."""
    md = Metadata(Root(expires=_expiry("root", expiry_days), consistent_snapshot=False))
    for role, keys in (("root", root), ("targets", targets), ("snapshot", delivery), ("timestamp", delivery)):
        for key in keys:
            md.signed.add_key(key.public, role)
        md.signed.roles[role].threshold = threshold if role in ("root", "targets") else 1
    for key in root:
        md.sign(key.signer, append=True)
    return md


def rotate_root(current: Metadata[Root], old_root_keys: list[SigningKey], changes, new_root_keys: list[SigningKey],
                expiry_days: int | None = None) -> Metadata[Root]:
    """The next root version: `changes(root)` edits it (add or revoke keys); signed by the old and the new root
    keys, as TUF requires for a client to accept it."""
    md = Metadata.from_bytes(current.to_bytes())
    md.signed.version += 1
    md.signed.expires = _expiry("root", expiry_days)
    changes(md.signed)
    md.signatures.clear()
    for key in {k.keyid: k for k in [*old_root_keys, *new_root_keys]}.values():
        md.sign(key.signer, append=True)
    return md


def add_target(targets: Metadata[Targets] | None, bundle: Path, signers: list[SigningKey], custom: dict,
               expiry_days: int | None = None) -> Metadata[Targets]:
    """The next targets metadata: the previous one's targets plus `bundle`, signed by the targets keys."""
    md = Metadata(Targets(expires=_expiry("targets", expiry_days))) if targets is None else \
        Metadata.from_bytes(targets.to_bytes())
    if targets is not None:
        md.signed.version += 1
        md.signed.expires = _expiry("targets", expiry_days)
    info = TargetFile.from_file(bundle.name, str(bundle), ["sha256"])
    info.unrecognized_fields["custom"] = custom
    md.signed.targets[bundle.name] = info
    md.signatures.clear()
    for key in signers:
        md.sign(key.signer, append=True)
    return md


def _metafile(version: int, data: bytes) -> MetaFile:
    return MetaFile(version=version, length=len(data), hashes={"sha256": hashlib.sha256(data).hexdigest()})


def delivery_metadata(targets: Metadata[Targets], signer: SigningKey, expiry_days: int | None = None, *,
                      version: int | None = None) -> tuple[Metadata[Snapshot], Metadata[Timestamp]]:
    """Fresh snapshot and timestamp for `targets`, binding it by length and sha256 (of the bytes write_delivery
    writes), versioned `version` or else by release_versions.VersionMark (the signing time, never repeated)."""
    version = version or VersionMark().next()
    snapshot = Metadata(Snapshot(version=version, expires=_expiry("snapshot", expiry_days)))
    snapshot.signed.meta["targets.json"] = _metafile(targets.signed.version, targets.to_bytes(_SERIALIZER))
    snapshot.sign(signer.signer)
    timestamp = Metadata(Timestamp(version=version, expires=_expiry("timestamp", expiry_days)))
    timestamp.signed.snapshot_meta = _metafile(version, snapshot.to_bytes(_SERIALIZER))
    timestamp.sign(signer.signer)
    return snapshot, timestamp


def write_delivery(folder: Path, roots: list[Metadata[Root]], targets: Metadata[Targets],
                   snapshot: Metadata[Snapshot], timestamp: Metadata[Timestamp], bundles: list[Path]) -> Path:
    """Lay out a delivery folder (see the module docstring)."""
    meta = folder / "metadata"
    (folder / "targets").mkdir(parents=True, exist_ok=True)
    meta.mkdir(parents=True, exist_ok=True)
    for root in roots:
        (meta / f"{root.signed.version}.root.json").write_bytes(root.to_bytes(_SERIALIZER))
    (meta / "root.json").write_bytes(roots[-1].to_bytes(_SERIALIZER))
    for name, md in (("targets", targets), ("snapshot", snapshot), ("timestamp", timestamp)):
        (meta / f"{name}.json").write_bytes(md.to_bytes(_SERIALIZER))
    for bundle in bundles:
        shutil.copyfile(bundle, folder / "targets" / bundle.name)
    return folder


def pack(folder: Path, out: Path) -> Path:
    """A delivery folder as one tar file (a release file), written atomically."""
    with replacing(out) as f, tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return out


# -- the verifying side (the device, the console on import) ---------------------------------------------------------


class _StagedFetcher(FetcherInterface):
    """TUF's downloads, served from a staged delivery folder: `staged:///metadata/x.json` -> <folder>/metadata/x.json."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()

    def _fetch(self, url: str) -> Iterator[bytes]:
        relative = url.removeprefix("staged:///")
        path = (self.folder / relative).resolve()
        if self.folder not in path.parents or not path.is_file():
            raise tuf_errors.DownloadHTTPError(f"{relative} is not in the delivery", 404)
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                yield chunk


def install_root(trust_dir: Path, root_json: bytes) -> Metadata[Root]:
    """Trust `root_json` from now on (the first root a device or console is given: trust on first install). A new
    trust anchor starts a new history: nothing of the old one is left (TUF's root_history/ included). The folder
    is replaced whole (atomic_files.replace_folder): a crash leaves the old trust or the new one, never a mix."""
    try:
        md = Metadata[Root].from_bytes(root_json)
    except DeserializationError as exc:  # from an admin's request as well as a file: a clear refusal, not a crash
        raise ReleaseTrustError(f"that file is not TUF root metadata ({exc.__cause__ or exc})"[:300]) from None
    if md.signed.type != Root.type:
        raise ReleaseTrustError("that file is not TUF root metadata")
    if problem := root_key_problem(md.signed):
        raise ReleaseTrustError(f"that {problem}")
    try:
        md.verify_delegate(Root.type, md)  # signed by its own keys: at least not damaged
    except tuf_errors.UnsignedMetadataError as exc:
        raise ReleaseTrustError(f"that root.json is not signed by its own root keys ({exc}): damaged or "
                                "altered") from None
    trust_dir = Path(trust_dir)
    trust_dir.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(_install_lock(trust_dir)):  # the agent and its terminal command may install at once
        replace_folder(trust_dir, lambda new: (new / "root.json").write_bytes(root_json))  # synced before use
    return md


def _install_lock(trust_dir: Path) -> Path:
    return trust_dir.with_name(f".{trust_dir.name}.lock")


def recover_trust(trust_dir: Path) -> None:
    """At start-up and before the trust is read: an install a crash cut short is undone (the old trust comes
    back), so the folder is wholly the old trust or wholly the new one. Costs two `stat`s when nothing was cut."""
    trust_dir = Path(trust_dir)
    if interrupted(trust_dir):
        with exclusive(_install_lock(trust_dir)):  # an install running now (another process) finishes first
            recover_folder(trust_dir)


def trusted_root(trust_dir: Path) -> Metadata[Root] | None:
    recover_trust(trust_dir)
    path = trust_dir / "root.json"
    return Metadata[Root].from_bytes(path.read_bytes()) if path.exists() else None


def check_root(root: Metadata[Root]) -> None:
    """ReleaseTrustError for a root that must not be trusted or signed (edge-bundle checks its own with it)."""
    if problem := root_key_problem(root.signed):
        raise ReleaseTrustError(problem)


@dataclass(frozen=True)
class VerifiedTarget:
    name: str
    path: Path  # the unpacked, checked bundle
    length: int
    sha256: str
    custom: dict
    targets_version: int
    checked_on_arrival: bool = False  # by the upload's follower, against a copy of the trust (release_preverify.py)


def verify_target(trust_dir: Path, delivery: Path, target_name: str, length: int, sha256: str,
                  holder: str = "this device") -> VerifiedTarget:
    """Run TUF's client workflow over a staged delivery's metadata (`delivery/metadata`) and check that the target
    `target_name`, already read and hashed by the caller (release_stream.py), has the signed length and sha256.

    `trust_dir` holds the trusted root (and, after a success, the metadata TUF remembers for rollback
    protection). `holder` names whose trust it is, in messages."""
    recover_trust(trust_dir)
    if not (trust_dir / "root.json").exists():
        raise ReleaseTrustError("no release trust is installed on this device: install the release authority's "
                                "root.json first (`edge-agent trust-root root.json` on the device, or from an admin "
                                "console: Fleet versions ▸ Install release trust…, or `edge-console release "
                                "install-trust`)")
    held = held_versions(trust_dir)
    try:
        trusted = trusted_root(trust_dir)
    except (DeserializationError, OSError) as exc:
        raise ReleaseTrustError(f"the trusted root.json cannot be read ({exc}): install it again") from None
    if problem := delivery_problem(trusted.signed if trusted.signed.type == Root.type else None,
                                   delivery / "metadata"):
        raise ReleaseTrustError(problem)
    try:
        updater = Updater(str(trust_dir), "staged:///metadata/", str(delivery), "staged:///targets/",
                          fetcher=_StagedFetcher(delivery), bootstrap=None)
        updater.refresh()
        info = updater.get_targetinfo(target_name)
    except (tuf_errors.RepositoryError, tuf_errors.DownloadError, ValueError) as exc:
        raise ReleaseTrustError(explain(exc, held, held_versions(delivery / "metadata"), holder)) from exc
    if info is None:
        raise ReleaseTrustError(f"{target_name} is not listed in the signed targets metadata")
    if info.length != length or info.hashes.get("sha256") != sha256:
        # The same check as TargetFile.verify_length_and_hashes, on figures computed in one streaming pass.
        raise ReleaseTrustError(
            f"the bundle does not match its signed length or hash ({target_name}: {length} bytes with sha256 "
            f"{sha256[:16]}..., signed as {info.length} bytes with sha256 {str(info.hashes.get('sha256'))[:16]}...):"
            " it was altered or damaged")
    targets = Metadata[Targets].from_bytes((trust_dir / "targets.json").read_bytes())
    return VerifiedTarget(target_name, delivery / "bundle", info.length, sha256,
                          dict(info.unrecognized_fields.get("custom") or {}), targets.signed.version)
