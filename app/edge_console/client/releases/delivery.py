"""What the console sends a device: a release with fresh snapshot and timestamp metadata, signed by the console's
own delivery key when the release authority's root allows it (`edge-bundle keygen --console-key`), so deliveries
stay valid however long a release file sat on a USB stick. A console whose key is not in the root delivers the
release file as the release tooling signed it (its timestamp must then still be fresh).

The snapshot/timestamp version of a delivery is above everything this console signed before, above what its
library took from the release authority, and above what the devices it goes to say they hold (a signer whose
clock once ran ahead left them a version from the future: core/releases/metadata_versions.py).

    <data>/delivery.key            the console's delivery key (owner-only); `edge-console release-key` exports its
                                   public half
    <data>/delivery-version.json   the highest snapshot/timestamp version this console has signed
"""

from __future__ import annotations

import asyncio
import ssl
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path

import aiohttp
from tuf.api.metadata import Metadata, Root, Targets

from edge_console.bundle.authority import public_key_json
from edge_console.client.net.device_access import ssl_arg
from edge_console.client.net.device_answers import UnreadableAnswer, read_json
from edge_console.client.releases.library import ReleaseEntry, ReleaseLibrary
from edge_console.core.releases.checks import held_versions
from edge_console.core.releases.metadata_versions import VersionMark, reported_version
from edge_console.core.releases.trust import SigningKey, delivery_metadata, pack, write_delivery
from edge_console.core.trust.tls_identity import write_private

ASK_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)


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


async def held_by_devices(session: aiohttp.ClientSession,
                          devices: Iterable[tuple[str, ssl.SSLContext | None]]) -> int:
    """The highest snapshot/timestamp version the devices (base URL, TLS context) say they hold, so a delivery can
    be signed above it. Untrusted answers: a number out of range counts as 0, and so does a device that cannot be
    asked (an older agent, or one offline: the push itself reports that, and its refusal names the recovery)."""

    async def one(base: str, tls: ssl.SSLContext | None) -> int:
        try:
            async with session.get(f"{base}/v1/release-trust", ssl=ssl_arg(tls), timeout=ASK_TIMEOUT) as resp:
                body = await read_json(resp, limit=64 * 1024)
        except (aiohttp.ClientError, OSError, TimeoutError, UnreadableAnswer):
            return 0
        held = body.get("held")
        if resp.status != 200 or not isinstance(held, dict):
            return 0
        return max(reported_version(held.get("timestamp")), reported_version(held.get("snapshot")))

    return max(await asyncio.gather(*(one(base, tls) for base, tls in devices)), default=0)


def make_delivery(library: ReleaseLibrary, entry: ReleaseEntry, data_dir: Path, out_dir: Path,
                  above: int = 0) -> Path:
    """The file to upload to a device for `entry` (verified, or refused here); `above`: the highest version the
    devices it goes to hold (`held_by_devices`)."""
    if not entry.verified:
        raise ValueError(f"{entry.label} cannot be pushed: {entry.problem}")
    key = delivery_key(data_dir)
    if not key_is_trusted(library, key):
        return Path(entry.file)  # as the release tooling signed it
    targets = Metadata[Targets].from_bytes((library.trust_dir / "targets.json").read_bytes())
    taken = held_versions(library.trust_dir)  # what the release authority signed last: devices may hold it too
    version = VersionMark(Path(data_dir) / "delivery-version.json").next(
        above=max(reported_version(v) for v in (above, taken.get("timestamp"), taken.get("snapshot"))))
    snapshot, timestamp = delivery_metadata(targets, key, version=version)
    roots = [Metadata[Root].from_bytes(r) for r in library.roots()]
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        folder = write_delivery(Path(tmp) / "delivery", roots, targets, snapshot, timestamp, [])
        with tarfile.open(entry.file) as tar:
            member = next(m for m in tar.getmembers() if m.name.startswith("targets/"))
            with tar.extractfile(member) as src, open(folder / member.name, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        return pack(folder, Path(out_dir) / f"{entry.line}-{entry.version}-delivery.edgerelease")
