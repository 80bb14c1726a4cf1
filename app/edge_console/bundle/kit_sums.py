"""The offline kit's checksums, signed by the release authority, and their check on the site.

    <kit>/SHA256SUMS        `sha256sum` format: one "<hex>  <path>" line for every file of the kit but these two
    <kit>/SHA256SUMS.sig    JSON: what was signed (kit name, time, the SHA256SUMS file's own sha256) and the
                            signatures over it
    <kit>/trust/            the authority's public root metadata: 1.root.json ... N.root.json and root.json

Which key signs: the authority's **targets** key. It already is the offline key that says which releases exist,
root.json names it (and its threshold), and rotating or revoking it (`edge-bundle rotate --new-targets-key`)
reaches kits exactly as it reaches model releases. A dedicated kit key would need a role that TUF's root does not
have. The signed message starts with a domain string (`DOMAIN`) and TUF signs canonical JSON that starts with `{`,
so a kit signature can never pass for a signature over TUF metadata, nor the other way round.

Trust on the site: the check starts from a root.json the site already trusts (`--root`: the one the devices were
given, or one handed over out of band) and follows the kit's root chain from it, each new root signed by the one
before, as TUF does. Without `--root` the kit's own newest root is used and its key ids are printed so they can be
compared with the ones written down when the authority was made: a kit checked only against itself proves it is
whole, not who made it.

Checking needs only the Python standard library (the Ed25519 verifier below is RFC 8032's), because it runs
before anything is installed: the kit ships this very file as `verify_kit.py`, and the install scripts run it
first. Signing (`sign_kit`) runs on the release machine and uses the product's own keys (`cryptography`).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.sig"
TRUST = "trust"
DOMAIN = b"edge-console offline kit SHA256SUMS v1\n"
SIGNED_TYPE = "edge-kit-sums"
# What a USB stick or a desktop may add to any folder: never listed, never installed from, so never refused.
_OS_LITTER = re.compile(r"^(\.DS_Store|\._.*|Thumbs\.db|desktop\.ini|\.Trashes|\.Spotlight-V100|\.fseventsd|"
                        r"System Volume Information|\$RECYCLE\.BIN)$")
_SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](\S(?:.*\S)?)$")
_MAX_ROOTS = 1000


class KitError(Exception):
    """The kit does not verify; the message says which check failed and what to do."""


# -- Ed25519 verification (RFC 8032, section 6), standard library only -----------------------------------------

_P = 2**255 - 19
_Q = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _add(a, b):
    x = (a[1] - a[0]) * (b[1] - b[0]) % _P
    y = (a[1] + a[0]) * (b[1] + b[0]) % _P
    c = 2 * a[3] * b[3] * _D % _P
    d = 2 * a[2] * b[2] % _P
    e, f, g, h = y - x, d - c, d + c, y + x
    return e * f, g * h, f * g, e * h


def _mul(s: int, point):
    result = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            result = _add(result, point)
        point = _add(point, point)
        s >>= 1
    return result


def _equal(a, b) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P)
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    return _P - x if (x & 1) != sign else x


def _decompress(data: bytes):
    y = int.from_bytes(data, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
_G = (_GX, _GY, 1, _GX * _GY % _P)


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    if len(public) != 32 or len(signature) != 64:
        return False
    a, r = _decompress(public), _decompress(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _Q:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % _Q
    return _equal(_mul(s, _G), _add(r, _mul(h, a)))


# -- canonical JSON (what TUF signs), standard library only ---------------------------------------------------


def canonical_json(value) -> bytes:
    """OLPC canonical JSON, as securesystemslib's encode_canonical writes it: sorted keys, no spaces, only `"` and
    `\\` escaped, no floats."""
    def encode(v) -> str:
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if v is True:
            return "true"
        if v is False:
            return "false"
        if v is None:
            return "null"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, list | tuple):
            return "[" + ",".join(encode(i) for i in v) + "]"
        if isinstance(v, dict):
            return "{" + ",".join(encode(k) + ":" + encode(i) for k, i in sorted(v.items())) + "}"
        raise KitError(f"cannot encode {type(v).__name__} in canonical JSON")
    return encode(value).encode("utf-8")


# -- root metadata: keys and thresholds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Root:
    version: int
    keys: dict  # keyid -> the key's dict (keytype, scheme, keyval)
    roles: dict  # role -> {"keyids": [...], "threshold": n}
    signed_bytes: bytes
    signatures: list

    @classmethod
    def parse(cls, data: bytes, origin: str) -> Root:
        try:
            md = json.loads(data)
            signed = md["signed"]
            if signed["_type"] != "root":
                raise KitError(f"{origin} is not root metadata (its type is {signed['_type']!r})")
            return cls(int(signed["version"]), dict(signed["keys"]), dict(signed["roles"]),
                       canonical_json(signed), list(md["signatures"]))
        except KitError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise KitError(f"{origin} is not readable root metadata: {exc!r:.120}") from None

    def role_keyids(self, role: str) -> list[str]:
        return list(self.roles[role]["keyids"])

    def threshold(self, role: str) -> int:
        return int(self.roles[role]["threshold"])

    def count_valid(self, role: str, message: bytes, signatures: list) -> int:
        """How many distinct keys of `role` (as this root names them) made a valid signature over `message`.
        Counted by the public key itself, not by its id: a root that lists one key under two ids must not let one
        signature count twice towards a threshold (issue 21)."""
        allowed, good = set(self.role_keyids(role)), set()
        for sig in signatures:
            keyid = sig.get("keyid") if isinstance(sig, dict) else None
            if keyid not in allowed:
                continue
            key = self.keys.get(keyid, {})
            if key.get("keytype") != "ed25519" or key.get("scheme") != "ed25519":
                continue  # the authority makes Ed25519 keys only (release_trust.SigningKey.generate)
            try:
                public, signature = bytes.fromhex(key["keyval"]["public"]), bytes.fromhex(sig["sig"])
            except (KeyError, TypeError, ValueError):
                continue
            if public not in good and ed25519_verify(public, message, signature):
                good.add(public)
        return len(good)

    def fingerprint(self) -> str:
        """The root keys' ids, shortened: what an engineer compares with the ids noted when the authority was made."""
        return ", ".join(k[:16] for k in sorted(self.role_keyids("root")))


def follow_root_chain(trusted: Root, trust_dir: Path) -> Root:
    """From a trusted root to the newest root in `trust_dir` (`<N>.root.json`), each one signed by a threshold of
    the previous root's root keys and of its own (TUF's rule for root rotation)."""
    current = trusted
    for _ in range(_MAX_ROOTS):
        path = trust_dir / f"{current.version + 1}.root.json"
        if not path.is_file():
            return current
        new = Root.parse(path.read_bytes(), f"{TRUST}/{path.name}")
        if new.version != current.version + 1:
            raise KitError(f"{TRUST}/{path.name} says it is root version {new.version}")
        for signer, what in ((current, f"the root keys of version {current.version}"), (new, "its own root keys")):
            if signer.count_valid("root", new.signed_bytes, new.signatures) < signer.threshold("root"):
                raise KitError(f"{TRUST}/{path.name} is not signed by {what}: the kit's root chain is broken or "
                               "forged; do not install from this kit")
        current = new
    raise KitError(f"the kit's root chain is longer than {_MAX_ROOTS} versions")


# -- checksums -----------------------------------------------------------------------------------------------------


def _is_litter(relative: str) -> bool:
    return any(_OS_LITTER.match(part) for part in relative.split("/"))


def kit_files(kit: Path) -> list[str]:
    """Every file of the kit (relative, '/'-separated, sorted), except the sums, their signature and OS litter."""
    found = []
    for dirpath, dirnames, filenames in os.walk(kit):
        dirnames[:] = [d for d in dirnames if not _OS_LITTER.match(d)]
        for name in filenames:
            relative = Path(dirpath, name).relative_to(kit).as_posix()
            if relative not in (SUMS, SIGNATURE) and not _is_litter(relative):
                found.append(relative)
    return sorted(found)


def file_sha256(path: Path) -> str:
    """core/atomic_files.py's, written again here: this file runs alone on the site, before anything is installed
    (the install scripts check for Python 3.11, which has hashlib.file_digest, before they run it)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sums_text(kit: Path) -> bytes:
    return "".join(f"{file_sha256(kit / rel)}  {rel}\n" for rel in kit_files(kit)).encode()


def parse_sums(data: bytes) -> dict[str, str]:
    """`SHA256SUMS` -> {relative path: sha256}; KitError on any line that is not a safe, plain entry."""
    entries: dict[str, str] = {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KitError(f"{SUMS} is not text") from None
    for number, line in enumerate(text.splitlines(), 1):
        match = _SUM_LINE.match(line)
        if not match:
            raise KitError(f"{SUMS} line {number} is not '<sha256>  <path>': {line[:80]!r}")
        digest, relative = match.groups()
        parts = relative.split("/")
        if relative.startswith("/") or "\\" in relative or any(p in ("", ".", "..") for p in parts):
            raise KitError(f"{SUMS} line {number} names an unsafe path: {relative!r}")
        if relative in entries:
            raise KitError(f"{SUMS} lists {relative} twice")
        entries[relative] = digest
    if not entries:
        raise KitError(f"{SUMS} lists no files")
    return entries


# -- signing (the release machine) ---------------------------------------------------------------------------------


def _message(signed: dict) -> bytes:
    return DOMAIN + canonical_json(signed)


def sign_kit(kit: Path, authority, kit_name: str | None = None) -> dict:
    """Copy the authority's public root chain into `<kit>/trust/`, write `SHA256SUMS` over every file of the kit
    and `SHA256SUMS.sig`, signed with the authority's targets key. Returns the signed part."""
    # Imported here, not at the top: signing runs on the release machine, where the product is installed; the
    # site's copy of this file (verify_kit.py) must import nothing but the standard library.
    from edge_console.core.atomic_files import write_atomic

    kit = Path(kit)
    trust = kit / TRUST
    trust.mkdir(parents=True, exist_ok=True)
    roots = authority.roots()
    for stale in trust.glob("*.json"):
        stale.unlink()
    for root in roots:  # the authority's own files, byte for byte
        name = f"{root.signed.version}.root.json"
        (trust / name).write_bytes((authority.metadata_dir / name).read_bytes())
    (trust / "root.json").write_bytes((authority.metadata_dir / f"{roots[-1].signed.version}.root.json").read_bytes())
    key = authority.key("targets")
    if key.keyid not in roots[-1].signed.roles["targets"].keyids:
        raise KitError("the authority's targets key is not the one its newest root names: finish the rotation first")
    (kit / SIGNATURE).unlink(missing_ok=True)
    sums = sums_text(kit)
    write_atomic(kit / SUMS, sums)
    signed = {"_type": SIGNED_TYPE, "kit": kit_name or kit.name,
              "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "sha256sums": hashlib.sha256(sums).hexdigest(), "root_version": roots[-1].signed.version}
    signature = key.signer.sign(_message(signed))
    document = {"signed": signed, "signatures": [{"keyid": signature.keyid, "sig": signature.signature}]}
    write_atomic(kit / SIGNATURE, (json.dumps(document, indent=1) + "\n").encode())
    return signed


# -- verifying (the site) ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KitReport:
    kit: str
    created: str
    files: int
    bytes: int
    root_version: int
    root_fingerprint: str
    pinned: bool  # checked from a root the site already trusted, not only from the kit's own
    unlisted_litter: list[str]

    def summary(self) -> str:
        trust = ("from the root you gave" if self.pinned else
                 f"against the kit's own root; compare its root key ids with the ones you noted: {self.root_fingerprint}")
        return (f"kit {self.kit} (made {self.created}) verifies: {self.files} files, {self.bytes / 2**20:.1f} MB, "
                f"SHA256SUMS signed by the release authority's targets key (root version {self.root_version}), "
                f"checked {trust}")


def verify_signature(kit: Path, trusted_root: bytes | None = None) -> tuple[dict, Root, bool]:
    """Check `SHA256SUMS.sig` and that it covers `SHA256SUMS`; returns (signed part, the root used, pinned)."""
    trust = kit / TRUST
    for needed in (kit / SUMS, kit / SIGNATURE):
        if not needed.is_file():
            raise KitError(f"{needed.name} is missing: this is not a complete offline kit; do not install from it")
    if trusted_root is None:
        newest = trust / "root.json"
        if not newest.is_file():
            raise KitError(f"{TRUST}/root.json is missing: the kit cannot be checked; do not install from it")
        start = Root.parse(newest.read_bytes(), f"{TRUST}/root.json")
        if start.count_valid("root", start.signed_bytes, start.signatures) < start.threshold("root"):
            raise KitError(f"{TRUST}/root.json is not signed by its own root keys: it was altered")
    else:
        start = Root.parse(trusted_root, "the trusted root.json")
    root = follow_root_chain(start, trust)
    try:
        document = json.loads((kit / SIGNATURE).read_bytes())
        signed, signatures = document["signed"], document["signatures"]
        if not isinstance(signed, dict) or not isinstance(signatures, list) or signed.get("_type") != SIGNED_TYPE:
            raise ValueError("not a kit signature")
    except (ValueError, KeyError, TypeError) as exc:
        raise KitError(f"{SIGNATURE} is not a kit signature: {exc!r:.100}") from None
    valid = root.count_valid("targets", _message(signed), signatures)
    if valid < root.threshold("targets"):
        ids = ", ".join(str(s.get("keyid", "?"))[:16] for s in signatures if isinstance(s, dict)) or "none"
        raise KitError(f"{SIGNATURE} is not a valid signature by the release authority's targets key (root version "
                       f"{root.version} names {', '.join(k[:16] for k in root.role_keyids('targets'))}; the kit was "
                       f"signed by {ids}): the kit was altered after signing, or signed by another authority or a "
                       "revoked key. Do not install from it.")
    if hashlib.sha256((kit / SUMS).read_bytes()).hexdigest() != signed.get("sha256sums"):
        raise KitError(f"{SUMS} is not the file that was signed: it was altered after signing. Do not install "
                       "from this kit.")
    return signed, root, trusted_root is not None


def verify_kit(kit: Path, trusted_root: bytes | None = None) -> KitReport:
    """The signature first, then every file against `SHA256SUMS`, then nothing unlisted (an extra wheel in
    wheels/ would be installed by pip as readily as a listed one). KitError at the first failure."""
    kit = Path(kit)
    signed, root, pinned = verify_signature(kit, trusted_root)
    listed = parse_sums((kit / SUMS).read_bytes())
    total, damaged, missing = 0, [], []
    for relative, digest in listed.items():
        path = kit / relative
        if not path.is_file() or path.is_symlink():
            missing.append(relative)
            continue
        if file_sha256(path) != digest:
            damaged.append(relative)
        total += path.stat().st_size
    if missing:
        raise KitError(f"{len(missing)} file(s) of the kit are missing: {', '.join(missing[:5])}. Copy the whole kit "
                       "again.")
    if damaged:
        raise KitError(f"{len(damaged)} file(s) do not match {SUMS}: {', '.join(damaged[:5])}. They were damaged "
                       "in copying or altered: copy the kit again from the original, and do not install from this one.")
    extra = [rel for rel in kit_files(kit) if rel not in listed]
    if extra:
        raise KitError(f"the kit holds file(s) that {SUMS} does not list: {', '.join(extra[:5])}. Something was added "
                       "to the kit after it was signed; remove them or copy the kit again.")
    litter = []
    for dirpath, dirnames, filenames in os.walk(kit):
        litter += [Path(dirpath, n).relative_to(kit).as_posix() for n in dirnames + filenames if _OS_LITTER.match(n)]
    return KitReport(str(signed.get("kit", kit.name)), str(signed.get("created", "?")), len(listed), total,
                     root.version, root.fingerprint(), pinned, sorted(litter))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="verify_kit.py", description="Check an Edge Console offline kit before "
                                     "installing anything from it: the release authority's signature on SHA256SUMS, "
                                     "then every file.")
    parser.add_argument("kit", nargs="?", type=Path, default=Path(__file__).resolve().parent,
                        help="the kit folder (default: the folder this script is in)")
    parser.add_argument("--root", type=Path, help="a root.json this site already trusts (the one its devices were "
                        "given); default: the kit's own, whose key ids are printed to compare")
    args = parser.parse_args(argv)
    try:
        pinned = args.root.read_bytes() if args.root else None
        report = verify_kit(args.kit, pinned)
    except (KitError, OSError) as exc:
        print(f"KIT REFUSED: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
