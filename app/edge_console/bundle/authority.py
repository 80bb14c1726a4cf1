"""The release authority: the folder on an offline machine that holds the signing keys and the current metadata.

    <folder>/keys/root.key, targets.key, delivery.key   owner-only PEM (encrypted when a passphrase is given)
    <folder>/metadata/<N>.root.json, root.json          every root version (devices need the chain to rotate)
    <folder>/metadata/targets.json                      every bundle released so far, signed by the targets key
    <folder>/delivery-version.json                      the highest snapshot/timestamp version signed here
                                                        (core/releases/metadata_versions.py: never signed below again)

Devices trust `metadata/1.root.json` (or a later root, given the chain). A release file carries the whole chain,
the current targets metadata, a snapshot and timestamp signed by this authority's delivery key, and the bundle.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from securesystemslib.signer import SSlibKey
from tuf.api.metadata import Metadata, Root, Targets

from edge_console.core.atomic_files import write_atomic
from edge_console.core.detection.onnx_shape import not_onnx_message, onnx_problem
from edge_console.core.releases.checks import canonical_keyid
from edge_console.core.releases.file_format import BundleError, read_manifest
from edge_console.core.releases.metadata_versions import VersionError, VersionMark
from edge_console.core.releases.trust import (
    ReleaseTrustError,
    SigningKey,
    add_target,
    check_root,
    delivery_metadata,
    new_root,
    pack,
    rotate_root,
    write_delivery,
)
from edge_console.core.trust.tls_identity import write_private

ROLES = ("root", "targets", "delivery")
RELEASE_SUFFIX = ".edgerelease"


def public_key_json(key: SSlibKey) -> bytes:
    return json.dumps({"keyid": key.keyid, **key.to_dict()}, indent=1).encode()


def public_key_from_json(data: bytes) -> SSlibKey:
    """A console's delivery key file (`edge-console release-key`). Its keyid must be the key's own (the hash TUF
    names keys by): a made-up id would let one key be listed twice, and count twice towards a threshold."""
    try:
        d = json.loads(data)
        key = SSlibKey.from_dict(d.pop("keyid"), d)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReleaseTrustError(f"not a public key file: {exc!r:.120}") from None
    canonical = canonical_keyid(key)
    if canonical is None:
        raise ReleaseTrustError("not a public key file: its key cannot be read")
    if key.keyid != canonical:
        raise ReleaseTrustError(f"the key file names its key {key.keyid[:16]}..., but that key's id is "
                                f"{canonical[:16]}...: export it again with `edge-console release-key`")
    return key


def _check_model(bundle: Path) -> None:
    """A bundle whose model is not ONNX is refused before it is signed (a device would refuse it after)."""
    try:
        with tarfile.open(bundle, "r:") as tar:
            info = tar.getmember("model.onnx")
            with tar.extractfile(info) as model:
                problem = onnx_problem(model, info.size)
    except KeyError:
        raise BundleError(f"{Path(bundle).name} holds no model.onnx") from None
    except tarfile.TarError as exc:
        raise BundleError(f"{Path(bundle).name} is not a readable bundle: {exc}") from None
    if problem:
        raise BundleError(not_onnx_message(f"model.onnx of {Path(bundle).name}", problem))


class ReleaseAuthority:
    def __init__(self, folder: Path, passphrase: bytes | None = None) -> None:
        self.folder = Path(folder)
        self.passphrase = passphrase

    @property
    def keys_dir(self) -> Path:
        return self.folder / "keys"

    @property
    def metadata_dir(self) -> Path:
        return self.folder / "metadata"

    # -- creation ---------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: Path, passphrase: bytes | None = None,
               extra_delivery_keys: list[SSlibKey] | None = None) -> ReleaseAuthority:
        authority = cls(folder, passphrase)
        if (authority.metadata_dir / "root.json").exists():
            raise ReleaseTrustError(f"{folder} already holds a release authority; use it, or choose a new folder")
        keys = {role: SigningKey.generate() for role in ROLES}
        for role, key in keys.items():
            write_private(authority.keys_dir / f"{role}.key", key.private_pem(passphrase))
        root = new_root([keys["root"]], [keys["targets"]], [keys["delivery"]])
        for extra in extra_delivery_keys or []:
            root.signed.add_key(extra, "snapshot")
            root.signed.add_key(extra, "timestamp")
        if extra_delivery_keys:
            root.signatures.clear()
            root.sign(keys["root"].signer)
        authority._save_root(root)
        return authority

    # -- state ----------------------------------------------------------------------------------------------------
    def key(self, role: str) -> SigningKey:
        path = self.keys_dir / f"{role}.key"
        if not path.exists():
            raise ReleaseTrustError(f"{path} is missing: this folder is not a release authority (run keygen)")
        return SigningKey.from_pem(path.read_bytes(), self.passphrase)

    def roots(self) -> list[Metadata[Root]]:
        chain = sorted(self.metadata_dir.glob("*.root.json"), key=lambda p: int(p.name.split(".")[0]))
        if not chain:
            raise ReleaseTrustError(f"{self.folder} holds no root metadata: run `edge-bundle keygen` first")
        return [Metadata[Root].from_bytes(p.read_bytes()) for p in chain]

    def root_json(self) -> bytes:
        """The first root: what a device is given to trust (later roots reach it in every release)."""
        return (self.metadata_dir / "1.root.json").read_bytes()

    @property
    def versions(self) -> VersionMark:
        return VersionMark(self.folder / "delivery-version.json")

    def targets(self) -> Metadata[Targets] | None:
        path = self.metadata_dir / "targets.json"
        return Metadata[Targets].from_bytes(path.read_bytes()) if path.exists() else None

    def _save_root(self, root: Metadata[Root]) -> None:
        check_root(root)  # before it is written: a root devices must refuse is never made
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        data = root.to_bytes()
        # Whole or not at all: a signing machine that loses power mid-write must not be left with a root that is
        # half of one (it signs every later release).
        write_atomic(self.metadata_dir / f"{root.signed.version}.root.json", data)
        write_atomic(self.metadata_dir / "root.json", data)

    # -- signing ---------------------------------------------------------------------------------------------------
    def sign(self, bundle: Path, out: Path | None = None, after_version: int = 0) -> Path:
        """Add `bundle` to the signed targets and write a release file (`<line>-<version>.edgerelease`), its
        snapshot and timestamp versioned above `after_version` (what a device that refused a release as replayed
        says it holds) as well as above everything signed here before."""
        manifest = read_manifest(bundle)
        _check_model(bundle)
        roots = self.roots()
        for root in roots:
            check_root(root)
        expected = f"{manifest.model_line}-{manifest.version}.edgebundle"
        custom = {"model_line": manifest.model_line, "version": manifest.version,
                  "architectures": manifest.architectures, "min_agent_version": manifest.min_agent_version}
        with tempfile.TemporaryDirectory() as tmp:
            named = Path(tmp) / expected  # the target's name in the metadata is the canonical one
            named.symlink_to(Path(bundle).resolve())
            targets = add_target(self.targets(), named, [self.key("targets")], custom)
            try:
                version = self.versions.next(above=after_version)
            except VersionError as exc:
                raise ReleaseTrustError(str(exc)) from None
            snapshot, timestamp = delivery_metadata(targets, self.key("delivery"), version=version)
            write_atomic(self.metadata_dir / "targets.json", targets.to_bytes())
            delivery = write_delivery(Path(tmp) / "release", roots, targets, snapshot, timestamp, [named])
            out = out or Path(bundle).with_name(f"{manifest.model_line}-{manifest.version}{RELEASE_SUFFIX}")
            return pack(delivery, out)

    def rotate(self, change: Callable[[Root], None], new_root_key: bool = False) -> Metadata[Root]:
        """A new root version with `change` applied (keys added or revoked), signed by the old and new root key."""
        old = self.key("root")
        fresh = SigningKey.generate() if new_root_key else old
        if new_root_key:
            def change_and_swap(root: Root, _change=change) -> None:
                root.revoke_key(old.keyid, "root")
                root.add_key(fresh.public, "root")
                _change(root)
        else:
            change_and_swap = change
        root = rotate_root(self.roots()[-1], [old], change_and_swap, [fresh])
        if new_root_key:
            write_private(self.keys_dir / "root.key", fresh.private_pem(self.passphrase))
        self._save_root(root)
        return root

    def replace_targets_key(self) -> SigningKey:
        """Revoke the current targets key (lost, or leaked) and make a new one; releases signed by the old key are
        refused by every device that receives the new root."""
        old, fresh = self.key("targets"), SigningKey.generate()

        def swap(root: Root) -> None:
            root.revoke_key(old.keyid, "targets")
            root.add_key(fresh.public, "targets")

        self.rotate(swap)
        write_private(self.keys_dir / "targets.key", fresh.private_pem(self.passphrase))
        return fresh
