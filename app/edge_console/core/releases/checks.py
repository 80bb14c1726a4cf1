"""What TUF's client workflow does not check by itself, and what a refusal means in words.

python-tuf verifies what metadata says; three things it leaves to the repository are checked here, before its
workflow runs on a delivery:
- a root that lists one public key under two key ids: python-tuf counts key ids, so one key's signature, given
  twice under two ids, meets a threshold of 2;
- snapshot and timestamp metadata that list no length and sha256 of what they vouch for: python-tuf checks them
  when present, and without them a targets.json signed by a revoked key can sit beside the real, current
  snapshot and timestamp for a device still on an old root (given a delivery without the newer roots);
- which versions a trust folder holds, so a refusal as "replayed" can say which and what to do (a signer whose
  clock ran fast, see release_versions.py).
Pure functions returning problems as text; release_trust.py raises them.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from securesystemslib.signer import Key, SSlibKey
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root
from tuf.api.serialization import DeserializationError

CLOCK_SANE_AFTER = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)  # earlier than the product: a wrong clock
_UNREADABLE = (OSError, DeserializationError, ValueError, TypeError, KeyError, AttributeError)


# -- roots ---------------------------------------------------------------------------------------------------------


def _crypto_key(key: Key):
    """The key as `cryptography` reads it; ValueError (or one of _KEY_ERRORS) when it cannot be read."""
    public = key.keyval["public"]
    if key.keytype == "ed25519":
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(public))
    return serialization.load_pem_public_key(public.encode())


_KEY_ERRORS = (KeyError, TypeError, ValueError, AttributeError, UnsupportedAlgorithm)


def _key_material(key: Key) -> bytes:
    """The public key itself, however the metadata spells it (hex or PEM, upper or lower case, line breaks)."""
    try:
        return _crypto_key(key).public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    except _KEY_ERRORS:
        return json.dumps([key.keytype, key.keyval], sort_keys=True, default=str).encode()


def canonical_keyid(key: Key) -> str | None:
    """The id TUF's tooling gives this key (a hash of its content); None when the key cannot be read."""
    try:
        return SSlibKey.from_crypto(_crypto_key(key), scheme=key.scheme).keyid
    except _KEY_ERRORS:
        return None


def root_key_problem(root: Root) -> str | None:
    """None, or why this root must not be trusted: one public key listed under two key ids."""
    seen: dict[bytes, str] = {}
    for keyid, key in root.keys.items():
        material = _key_material(key)
        if material in seen:
            return (f"root version {root.version} lists one public key under two key ids ({seen[material][:16]}... "
                    f"and {keyid[:16]}...), so that key would count twice towards a signature threshold. Refused: "
                    "the release authority must list each key once (and sign a corrected root)")
        seen[material] = keyid
    return None


# -- a delivery's metadata, before TUF's workflow runs on it ----------------------------------------------------------


def _read(path: Path) -> Metadata | None:
    try:
        return Metadata.from_bytes(path.read_bytes())
    except _UNREADABLE:
        return None  # missing or unreadable: TUF's workflow refuses it, with its own reason


def delivery_problem(trusted: Root | None, metadata: Path) -> str | None:
    """None, or why the delivery in `metadata` is refused before its signatures are even checked. Only files
    TUF's workflow would read count (newer roots than the trusted one): older copies change nothing."""
    if trusted is not None:
        if problem := root_key_problem(trusted):
            return f"the trusted {problem}"
        for path in sorted(metadata.glob("*.root.json")):
            version = path.name.split(".")[0]
            if not version.isdigit() or int(version) <= trusted.version:
                continue
            md = _read(path)
            if md is not None and md.signed.type == Root.type and (problem := root_key_problem(md.signed)):
                return f"the delivery's {problem}"
    for name, role, vouches_for in (("timestamp.json", "timestamp", "snapshot"),
                                    ("snapshot.json", "snapshot", "targets")):
        md = _read(metadata / name)
        if md is None or md.signed.type != role:
            continue
        meta = md.signed.snapshot_meta if role == "timestamp" else md.signed.meta.get("targets.json")
        if meta is not None and (meta.length is None or "sha256" not in (meta.hashes or {})):
            return (f"its {role} metadata does not list the length and sha256 of the {vouches_for} metadata it "
                    "vouches for (signed by release tooling older than this software, or altered): without them a "
                    "targets.json signed by a revoked key could be slipped in beside it. The release authority "
                    "must sign the release again with this version of `edge-bundle sign`")
    return None


def held_versions(metadata: Path) -> dict[str, int]:
    """The version of each top-level metadata file in a folder (a trust folder: what TUF accepted last; or a
    delivery's metadata), read without checking signatures: for messages and for consoles to sign above."""
    held = {}
    for role in ("root", "timestamp", "snapshot", "targets"):
        try:
            version = json.loads((metadata / f"{role}.json").read_bytes())["signed"]["version"]
        except _UNREADABLE:
            continue
        if isinstance(version, int) and not isinstance(version, bool):
            held[role] = version
    return held


# -- refusals in words ---------------------------------------------------------------------------------------------


def clock_problem(now: datetime.datetime | None = None) -> str | None:
    now = now or datetime.datetime.now(datetime.UTC)
    if now < CLOCK_SANE_AFTER:
        return (f"this device's clock says {now:%Y-%m-%d %H:%M} UTC, before this software was made: set the "
                "clock (the console shows each device's clock offset), then try again")
    return None


def _expired(exc: Exception) -> str:
    now = datetime.datetime.now(datetime.UTC)
    what = str(exc)
    if clock := clock_problem(now):
        advice = clock
    elif "targets" in what:
        advice = ("Its targets metadata (signed by the release authority) has expired, which a fresh delivery "
                  "does not renew: the release authority must sign the release again (`edge-bundle sign`).")
    elif "root" in what:
        advice = ("The trusted root has expired: the release authority must sign a new root (`edge-bundle "
                  "rotate`) and sign the release again; the new root reaches devices with it.")
    else:
        advice = ("Deliver it again from a console (fresh timestamp) or ask the release tooling for newly signed "
                  "metadata.")
    return f"release metadata has expired ({exc}); this clock says {now:%Y-%m-%d %H:%M} UTC. {advice}"


def _replayed(exc: Exception, held: dict[str, int], delivered: dict[str, int], holder: str) -> str:
    if delivered.get("targets", 0) < held.get("targets", 0):
        return (f"replayed or old release metadata ({exc}): {holder} has newer signed targets (v{held['targets']}) "
                f"than this release's (v{delivered['targets']}); import the newest release file into the console "
                "and deliver again")
    mark = max(held.get("timestamp", 0), held.get("snapshot", 0))
    return (f"replayed or old release metadata ({exc}): {holder} holds snapshot/timestamp version {mark}, and this "
            f"delivery's is {delivered.get('timestamp', '?')}. An older delivery is refused on purpose (replay "
            "protection). If this release is new, a signer's clock ran ahead once: deliver it from a console whose "
            "delivery key the root lists (it signs above what the device reports), or have the release authority "
            f"sign it again with `edge-bundle sign BUNDLE --after-version {mark}`")


def explain(exc: Exception, held: dict[str, int], delivered: dict[str, int], holder: str = "this device") -> str:
    """A TUF refusal in words: what it means and what to do. `held`: the versions the trust folder held before
    the check; `delivered`: the versions in the delivery."""
    if isinstance(exc, tuf_errors.ExpiredMetadataError):
        return _expired(exc)
    if isinstance(exc, tuf_errors.EqualVersionNumberError | tuf_errors.BadVersionNumberError):
        return _replayed(exc, held, delivered, holder)
    if isinstance(exc, tuf_errors.UnsignedMetadataError):
        return (f"not signed by a trusted key ({exc}): the release was signed by a key this device does not "
                "trust, or by one that was revoked, or it was altered after signing")
    if isinstance(exc, tuf_errors.LengthOrHashMismatchError | tuf_errors.DownloadLengthMismatchError):
        return (f"its metadata is not what was signed for this delivery ({exc}): a metadata file does not match "
                "the length or hash its snapshot or timestamp lists, or is larger than its role allows; it was "
                "replaced (for example by a targets.json signed with a revoked key), padded or altered")
    if isinstance(exc, tuf_errors.DownloadHTTPError):
        return f"the delivery is incomplete: {exc}"
    return f"the release metadata is invalid: {exc}"
