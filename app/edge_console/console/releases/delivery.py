"""What the console sends a device: a release with fresh snapshot and timestamp metadata, signed by the console's
own delivery key when the release authority's root allows it (`edge-bundle keygen --console-key`), so deliveries
stay valid however long a release file sat on a USB stick. A console whose key is not in the root delivers the
release file as the release tooling signed it (its timestamp must then still be fresh).

    <data>/delivery.key   the console's delivery key (owner-only); `edge-console release-key` exports its public half
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

from tuf.api.metadata import Metadata, Root, Targets

from edge_console.bundle.authority import public_key_json
from edge_console.core.release_trust import SigningKey, delivery_metadata, pack, write_delivery
from edge_console.core.tls_identity import write_private

from .library import ReleaseEntry, ReleaseLibrary


def delivery_key(data_dir: Path) -> SigningKey:
    path = Path(data_dir) / "delivery.key"
    if not path.exists():
        write_private(path, SigningKey.generate().private_pem())
    return SigningKey.from_pem(path.read_bytes())


def delivery_public_key(data_dir: Path) -> bytes:
    """The JSON `edge-bundle keygen --console-key FILE` (or `rotate --add-console-key`) takes."""
    return public_key_json(delivery_key(data_dir).public)


def key_is_trusted(library: ReleaseLibrary, key: SigningKey) -> bool:
    path = library.trust_dir / "root.json"
    if not path.exists():
        return False
    root = Metadata[Root].from_bytes(path.read_bytes()).signed
    return key.keyid in root.roles["timestamp"].keyids and key.keyid in root.roles["snapshot"].keyids


def make_delivery(library: ReleaseLibrary, entry: ReleaseEntry, data_dir: Path, out_dir: Path) -> Path:
    """The file to upload to a device for `entry` (verified, or refused here)."""
    if not entry.verified:
        raise ValueError(f"{entry.label} cannot be pushed: {entry.problem}")
    key = delivery_key(data_dir)
    if not key_is_trusted(library, key):
        return Path(entry.file)  # as the release tooling signed it
    targets = Metadata[Targets].from_bytes((library.trust_dir / "targets.json").read_bytes())
    snapshot, timestamp = delivery_metadata(targets, key)
    roots = [Metadata[Root].from_bytes(r) for r in library.roots()]
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        folder = write_delivery(Path(tmp) / "delivery", roots, targets, snapshot, timestamp, [])
        with tarfile.open(entry.file) as tar:
            member = next(m for m in tar.getmembers() if m.name.startswith("targets/"))
            with tar.extractfile(member) as src, open(folder / member.name, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        return pack(folder, Path(out_dir) / f"{entry.line}-{entry.version}-delivery.edgerelease")
