"""The broken-release corpus, and a device's own update path to throw it at.

Every member of a release that a device reads is bit-flipped at several offsets (the release's own metadata and
bundle, and each member inside the bundle: manifest, model, card, golden frames, and tar headers); the release is
truncated at many lengths; members are swapped with other releases'; it is signed by an untrusted authority, by
revoked keys, with expired and with replayed metadata; it holds an older version or an oversized manifest or
metadata; it carries links, traversing names, duplicates, no bundle or two. And what issue 21 found accepted: a
targets.json signed by a revoked key beside the real snapshot and timestamp of a later release (for a device still
on the old root), snapshot and timestamp that bind no hashes, a root listing one key under two key ids, 20,000
metadata members, data after the tar's end, a signed model that is not ONNX. Each case must be rejected, and the
device's model store must be exactly as it was (byte for byte) with nothing activated.

The device is `agent/updates/_service.py`'s UpdateManager (what `edge-agent run` uses), in-process, on a real state folder
with a real model loader; only the switch of a running pipeline is replaced by a recorder. It first installs
parts 2.0.0 (so it has TUF state, a highest version and a store to protect). The target of the corpus is parts
3.0.0, signed last: delivered intact at the end, it must be accepted (the control).

Not in the corpus: flips in `metadata/root.json` and `metadata/1.root.json` of a delivery. A device that already
trusts root version 1 reads only newer roots (`2.root.json`, ...) from a delivery; those two copies are never read,
so changing them changes nothing (the corpus's deliveries carry root v2 and v3, which are flipped).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from securesystemslib.signer import Signature, SSlibKey
from tuf.api.metadata import Metadata, Targets

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.build import build_bundle
from edge_console.bundle.demo import golden_frames
from edge_console.core.paths import demo_model
from edge_console.core.releases.trust import SigningKey, rotate_root
from edge_console.core.trust.tls_identity import write_private
from tests.support.updates import Signer, rewrite_bundle

from .corpus_parts import (
    CorpusDevice,
    bundle_member,
    flip,
    make_tar,
    members,
    read_members,
    replace_members,
    same_meaning,
)

# -- the corpus ------------------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One broken release; flips and cuts of the target release are kept as a recipe (a corpus of a thousand
    3 MB releases is not held in memory at once)."""

    category: str
    name: str
    raw: bytes | None = None
    base: bytes | None = None
    flip_at: tuple[int, int] | None = None  # (offset, mask)
    cut_at: int | None = None

    @property
    def data(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.flip_at is not None:
            return flip(self.base, *self.flip_at)
        return self.base[: self.cut_at]


def _releases(base: Path):
    """Authority, rotations and the releases every case is made from, in signing order."""
    golden = golden_frames(base / "golden", count=2)
    authority = ReleaseAuthority.create(base / "authority")
    signer = Signer(authority, base)
    root_v1 = authority.root_json()
    b200 = build_bundle(demo_model("parts-v2"), "parts", "2.0.0", golden, base / "parts-2.0.0.edgebundle")
    other = build_bundle(demo_model("parts-v1"), "parts", "3.0.0", golden, base / "other-3.0.0.edgebundle")

    def version(v: str, src: Path = b200, **edit) -> Path:
        return rewrite_bundle(src, base / f"parts-{v}-{time.monotonic_ns()}.edgebundle",
                              manifest_edit=lambda m: m.update(version=v, **edit))

    keys = {"targets": authority.key("targets"), "delivery": authority.key("delivery")}
    t = None

    def signed(bundle: Path, targets_keys=None, delivery_key=None, **kw) -> tuple[bytes, Metadata[Targets]]:
        nonlocal t
        t = signer.targets(t, bundle, targets_keys or [keys["targets"]])
        return signer.delivery(t, delivery_key or keys["delivery"], bundle, **kw), t

    r_old350, _ = signed(version("3.5.0"))  # signed before 2.0.0: later a replay of older metadata
    r200, t_200 = signed(b200)  # what the device installs first, under root v1
    # Root v2 revokes the first targets key, v3 the first delivery key; every later delivery carries both, so a
    # device that trusts v1 reads 2.root.json and 3.root.json from each of them.
    k1, d1 = keys["targets"], keys["delivery"]
    roots_v1 = authority.roots()
    keys["targets"] = authority.replace_targets_key()
    # Signed under root v2 (k1 revoked, d1 still the delivery key): its real snapshot and timestamp are reused
    # later beside a targets.json that k1 signs, for a device still on root v1 (issue 21).
    b250 = version("2.5.0")
    t = t_250 = signer.targets(t, b250, [keys["targets"]])
    meta_250 = signer.delivery_metadata(t_250, keys["delivery"])
    r250 = signer.delivery(t_250, None, b250, reuse=meta_250)
    d2 = SigningKey.generate()

    def swap_delivery(root):
        for role in ("snapshot", "timestamp"):
            root.revoke_key(d1.keyid, role)
            root.add_key(d2.public, role)

    authority.rotate(swap_delivery)
    write_private(authority.keys_dir / "delivery.key", d2.private_pem())
    keys["delivery"] = d2
    b150 = version("1.5.0")
    r150, _ = signed(b150)
    r200_again, _ = signed(version("2.0.0", description="signed again"))
    b300 = version("3.0.0")
    r300, t_300 = signed(b300)  # the target of the corpus
    b301 = version("3.0.1")
    r301, _ = signed(b301)
    return locals()


def build_corpus(base: Path, mode: str, seed: int) -> tuple[dict, list[Case]]:
    rng = random.Random(seed)
    g = _releases(base)
    signer, keys, r300, t_300 = g["signer"], g["keys"], g["r300"], g["t_300"]
    cases: list[Case] = []
    n_random = 2 if mode == "short" else 24

    benign: list[str] = []

    def add(category: str, name: str, data: bytes) -> None:
        cases.append(Case(category, name, raw=data))

    def add_flip(category: str, name: str, offset: int, mask: int) -> None:
        case = Case(category, name, base=r300, flip_at=(offset, mask))
        if same_meaning(case.data, r300):
            benign.append(f"{category}: {name}")
        else:
            cases.append(case)

    # 1. flips in every member a device reads, at several offsets, and in tar headers
    outer = members(r300)
    bundle_name, bundle = bundle_member(r300)
    bundle_offset = next(o for n, _, o, _ in outer if n == bundle_name)
    read_by_device = [m for m in outer if m[0] not in ("metadata/root.json", "metadata/1.root.json")]
    for name, header, start, size in read_by_device:
        offsets = sorted({0, 1, size // 2, size - 1, *(rng.randrange(size) for _ in range(n_random))})
        for off in offsets:
            add_flip("flip_outer_member", f"{name}@{off}", start + off, 1 << rng.randrange(8))
        for field_off, what in ((0, "name"), (124, "size"), (148, "checksum")):
            add_flip("flip_outer_header", f"{name}:{what}", header + field_off, 1 << rng.randrange(8))
    for name, header, start, size in members(bundle):
        offsets = sorted({0, size // 2, size - 1, *(rng.randrange(size) for _ in range(n_random))}) if size else []
        for off in offsets:
            add_flip("flip_bundle_member", f"{name}@{off}", bundle_offset + start + off, 1 << rng.randrange(8))
        for field_off, what in ((0, "name"), (124, "size"), (136, "mtime")):
            add_flip("flip_bundle_header", f"{name}:{what}", bundle_offset + header + field_off, 0x20)
    # 2. truncated at many lengths (below the end of the last member's data: beyond it, nothing is missing)
    content_end = max(start + size for _, _, start, size in outer)
    lengths = {0, 1, 100, 511, 512, 513, 1024, content_end - 1,
               *(o for _, h, s, _ in outer for o in (h, h + 1, s, s + 1, s - 1) if 0 < o < content_end),
               *(rng.randrange(content_end) for _ in range(4 * n_random))}
    for length in sorted(lengths):
        cases.append(Case("truncated", f"at {length}", base=r300, cut_at=length))
    # 3. members swapped between releases
    other_bundle = g["other"].read_bytes()
    inner_other = dict(read_members(other_bundle))
    for name, data in read_members(bundle):
        if name in inner_other and inner_other[name] != data:
            add("swapped_bundle_member", f"{name} from another build",
                replace_members(r300, {bundle_name: replace_members(bundle, {name: inner_other[name]})}))
    add("swapped_bundle", "the bundle of another build under this name", replace_members(r300, {bundle_name:
                                                                                             other_bundle}))
    add("swapped_bundle", "the 2.0.0 bundle under this name",
        replace_members(r300, {bundle_name: bundle_member(g["r200"])[1]}))
    for donor_name, donor in (("2.0.0", g["r200"]), ("3.0.1", g["r301"])):
        donor_meta = dict(read_members(donor))
        for meta in ("metadata/targets.json", "metadata/snapshot.json", "metadata/timestamp.json"):
            add("swapped_metadata", f"{meta} from {donor_name}", replace_members(r300, {meta: donor_meta[meta]}))
    # 4. signatures: an untrusted authority, untrusted keys, revoked keys (with and without the newer roots)
    stranger = ReleaseAuthority.create(base / "stranger")
    add("untrusted", "signed by another authority", stranger.sign(g["b300"], base / "stranger.edgerelease")
        .read_bytes())
    rogue_key = SigningKey.generate()
    add("untrusted", "targets signed by an unknown key",
        signer.delivery(signer.targets(t_300, g["b300"], [rogue_key]), keys["delivery"], g["b300"]))
    add("untrusted", "snapshot and timestamp signed by an unknown key",
        signer.delivery(t_300, rogue_key, g["b300"]))
    add("revoked", "targets signed by the revoked targets key",
        signer.delivery(signer.targets(t_300, g["b300"], [g["k1"]]), keys["delivery"], g["b300"]))
    add("revoked", "snapshot and timestamp by the revoked delivery key",
        signer.delivery(t_300, g["d1"], g["b300"]))
    # 5. expired and replayed metadata
    add("expired", "timestamp expired", signer.delivery(t_300, keys["delivery"], g["b300"], timestamp_days=-1))
    add("expired", "snapshot expired", signer.delivery(t_300, keys["delivery"], g["b300"], snapshot_days=-1))
    add("expired", "targets expired", signer.delivery(signer.targets(t_300, g["b300"], [keys["targets"]], -1),
                                                      keys["delivery"], g["b300"]))
    add("replayed", "3.5.0 signed before the installed 2.0.0 (older metadata)", g["r_old350"])
    add("replayed", "the installed 2.0.0 release again", g["r200"])
    add("replayed", "3.0.0's targets and bundle under the 2.0.0 delivery's snapshot and timestamp",
        replace_members(r300, {m: dict(read_members(g["r200"]))[m] for m in ("metadata/snapshot.json",
                                                                            "metadata/timestamp.json")}))
    # 6. older and equal versions, properly signed
    add("older_version", "1.5.0 after 2.0.0", g["r150"])
    add("older_version", "2.0.0 signed again", g["r200_again"])
    # 7. oversized
    big = rewrite_bundle(g["b300"], base / "big.edgebundle",
                         manifest_edit=lambda m: m.update(version="3.0.2", description="x" * (3 * 2**20)))
    add("oversized", "a 3 MB manifest, signed", signer.delivery(signer.targets(t_300, big, [keys["targets"]]),
                                                                keys["delivery"], big))
    padded = dict(read_members(r300))
    padded_ts = padded["metadata/timestamp.json"] + b" " * (1100 * 1024)
    add("oversized", "a 1.1 MB timestamp.json (valid signature, padded)",
        replace_members(r300, {"metadata/timestamp.json": padded_ts}))
    add("oversized", "a 60 KB timestamp.json (valid signature, padded)",
        replace_members(r300, {"metadata/timestamp.json": padded["metadata/timestamp.json"] + b" " * 60_000}))
    # 8. structure: links, traversal, duplicates, no bundle, two bundles, wrong order
    link = tarfile.TarInfo("metadata/timestamp.json")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    add("structure", "a symlink member", replace_members(r300, drop=("metadata/timestamp.json",), add=[link]))
    hard = tarfile.TarInfo("targets/x.edgebundle")
    hard.type, hard.linkname = tarfile.LNKTYPE, "metadata/root.json"
    add("structure", "a hard link bundle", replace_members(r300, drop=(bundle_name,), add=[hard]))
    add("structure", "a traversing name", replace_members(r300, add=[("metadata/../../../evil.json", b"{}")]))
    add("structure", "an absolute name", replace_members(r300, add=[("/tmp/evil.json", b"{}")]))
    add("structure", "no bundle", replace_members(r300, drop=(bundle_name,)))
    add("structure", "two bundles", replace_members(r300, add=[("targets/parts-3.0.1.edgebundle", bundle)]))
    add("structure", "a duplicated, older timestamp after the real one",
        replace_members(r300, add=[("metadata/timestamp.json", dict(read_members(g["r200"]))
                                    ["metadata/timestamp.json"])]))
    add("structure", "bundle with a traversing member",
        replace_members(r300, {bundle_name: replace_members(bundle, add=[("../../evil.txt", b"x")])}))
    add("structure", "bundle with an extra member",
        replace_members(r300, {bundle_name: replace_members(bundle, add=[("golden/9999.png", b"x")])}))
    add("structure", "bundle without its manifest first",
        replace_members(r300, {bundle_name: replace_members(bundle, order=lambda items: items[1:] + items[:1])}))
    add("structure", "empty file", b"")
    add("structure", "random bytes", rng.randbytes(len(r300)))
    _issue_21_cases(g, add, rng)
    g["benign"] = benign
    if mode == "short":  # every category, a sample of the large ones
        by_category: dict[str, list[Case]] = {}
        for case in cases:
            by_category.setdefault(case.category, []).append(case)
        cases = [c for group in by_category.values() for c in (rng.sample(group, 6) if len(group) > 6 else group)]
    return g, cases


def _issue_21_cases(g: dict, add, rng: random.Random) -> None:
    """What an attacker and an independent TUF review found accepted (issue 21, items 9 and 11)."""
    signer, keys, r300, t_300, b300 = g["signer"], g["keys"], g["r300"], g["t_300"], g["b300"]
    authority = g["authority"]
    # A targets.json signed by the revoked key k1, versioned as the real one signed under root v2, beside that
    # delivery's real snapshot and timestamp (d1, still trusted by root v1), without the newer roots: a device on
    # root v1 took it while snapshot and timestamp bound no hashes.
    forged = signer.targets(g["t_200"], b300, [g["k1"]])
    assert forged.signed.version == g["t_250"].signed.version
    add("reused_metadata", "the real snapshot and timestamp of a post-rotation release, beside a targets.json "
        "signed by the revoked targets key, without the newer roots",
        signer.delivery(forged, None, b300, roots=g["roots_v1"], reuse=g["meta_250"]))
    add("unbound_metadata", "snapshot and timestamp that list no length or sha256 (older tooling)",
        signer.delivery(t_300, keys["delivery"], b300, hashes=False))
    # A root that lists the targets key under a second key id, with a targets threshold of 2, and targets metadata
    # signed once but listed under both ids.
    alias_id = hashlib.sha256(b"the same key, again").hexdigest()
    public = keys["targets"].public

    def list_twice(root) -> None:
        root.add_key(SSlibKey(alias_id, public.keytype, public.scheme, dict(public.keyval)), "targets")
        root.roles["targets"].threshold = 2

    root_key = authority.key("root")
    twice = rotate_root(authority.roots()[-1], [root_key], list_twice, [root_key])
    doubled = signer.targets(t_300, g["b301"], [keys["targets"]])
    doubled.signatures[alias_id] = Signature(alias_id, doubled.signatures[keys["targets"].keyid].signature)
    add("duplicate_keyids", "root v4 lists the targets key twice (threshold 2), targets signed once under both ids",
        signer.delivery(doubled, keys["delivery"], g["b301"], roots=[*authority.roots(), twice]))
    many = make_tar(list(read_members(r300)) + [(f"metadata/x{i}.json", b"") for i in range(20_000)])
    add("member_count", "20,000 metadata members", many)
    add("trailing_data", "1 MiB after the tar's end", r300 + rng.randbytes(1 << 20))
    text = rewrite_bundle(b300, g["signer"].folder / "not-onnx.edgebundle", replace={"model.onnx": b"not a model\n"},
                          manifest_edit=lambda m: m.update(version="3.0.3"))
    add("not_onnx", "a signed bundle whose model.onnx is text",
        signer.delivery(signer.targets(t_300, text, [keys["targets"]]), keys["delivery"], text))


@contextlib.contextmanager
def quiet(*loggers: str):
    """Each rejection is a warning in the agent's log: expected here, hundreds of times."""
    import logging

    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in loggers]
    for logger, _ in saved:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


def run_corpus(mode: str = "short", seed: int = 1) -> dict:
    with quiet("edge_console.agent.updates._service", "edge_console.core.audit.log"):
        return _run_corpus(mode, seed)


def _run_corpus(mode: str, seed: int) -> dict:
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="edge-corpus-") as tmp:
        base_dir = Path(tmp)
        g, cases = build_corpus(base_dir, mode, seed)
        state = base_dir / "device" / "state"
        device = CorpusDevice(state, g["root_v1"])
        try:
            first = device.deliver(g["r200"], "parts-2.0.0.edgerelease")
            assert first["state"] == "active", first
            device.mark_good()
            pristine_trust = base_dir / "pristine-trust"
            shutil.copytree(state / "release-trust", pristine_trust)
            store_before = device.store_snapshot()
            outside_before = sorted(str(p.relative_to(base_dir)) for p in base_dir.rglob("*")
                                    if "device" not in p.parts)
            activations = len(device.activated)
            rejected, wrong, store_touched = 0, [], []
            by_category: dict[str, list[int]] = {}
            reasons: dict[str, int] = {}
            pristine_state = base_dir / "pristine-state"
            shutil.copytree(state, pristine_state)
            for case in cases:
                shutil.rmtree(state / "release-trust")
                shutil.copytree(pristine_trust, state / "release-trust")
                record = device.deliver(case.data)
                counts = by_category.setdefault(case.category, [0, 0])
                counts[0] += 1
                ok = record["state"] == "rejected"
                counts[1] += ok
                rejected += ok
                why = record["reason"].split(":")[0][:60]
                reasons[why] = reasons.get(why, 0) + 1
                if not ok:
                    wrong.append(f"{case.category}: {case.name}: {record['state']}")
                if device.store_snapshot() != store_before or len(device.activated) != activations:
                    store_touched.append(f"{case.category}: {case.name}")
                if not ok or store_touched and store_touched[-1].endswith(case.name):
                    device.close()  # the next case starts from the device as it was before the corpus
                    shutil.rmtree(state)
                    shutil.copytree(pristine_state, state)
                    device.activated.clear()
                    device._open()
                    store_before, activations = device.store_snapshot(), 0
            outside_after = sorted(str(p.relative_to(base_dir)) for p in base_dir.rglob("*")
                                   if "device" not in p.parts and not p.relative_to(base_dir).parts[0]
                                   .startswith("pristine-"))
            outside_before = [p for p in outside_before if not p.startswith("pristine-")]
            # The control: the same release, intact, is accepted (so each case was refused for its damage).
            shutil.rmtree(state / "release-trust")
            shutil.copytree(pristine_trust, state / "release-trust")
            control = device.deliver(g["r300"], "parts-3.0.0.edgerelease")
        finally:
            device.close()
    return {"cases": len(cases), "rejected": rejected, "wrongly_accepted": len(wrong),
            "store_untouched": not store_touched, **({"store_touched": store_touched[:10]} if store_touched else {}), "nothing_written_outside": outside_before == outside_after,
            "control_accepted": control["state"] == "active", "benign_mutations_left_out": g["benign"][:10],
            "by_category": {k: {"cases": v[0], "rejected": v[1]} for k, v in sorted(by_category.items())},
            "reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])[:12]),
            **({"wrong": wrong[:10]} if wrong else {}), "seconds": round(time.monotonic() - t0, 1)}


def run_console_corpus(mode: str = "short", seed: int = 1) -> dict:
    """The same cases imported into the console's release library (which verifies as a device would): none may
    crash the import, and none may be called verified unless its bundle is one the authority signed (the library
    accepts an older release file whose bundle the newest trusted targets still list: by design)."""
    import hashlib

    from edge_console.client.releases.library import ReleaseLibrary

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="edge-corpus-console-") as tmp:
        base_dir = Path(tmp)
        g, cases = build_corpus(base_dir, mode, seed)
        signed = {hashlib.sha256(bundle_member(g[name])[1]).hexdigest()
                  for name in ("r200", "r150", "r200_again", "r300", "r301", "r_old350")}
        library = ReleaseLibrary(base_dir / "console")
        library.trust(g["root_v1"])
        first = base_dir / "parts-2.0.0.edgerelease"
        first.write_bytes(g["r200"])
        assert library.import_release(first).verified
        crashes, wrong, verified = [], [], 0
        for i, case in enumerate(cases):
            path = base_dir / f"case-{i}.edgerelease"
            path.write_bytes(case.data)
            try:
                entry = library.import_release(path)
            except Exception as exc:  # noqa: BLE001 - a crash of the import is what is counted
                crashes.append(f"{case.category}: {case.name}: {type(exc).__name__}: {exc!s:.100}")
                continue
            finally:
                path.unlink()
            if entry.verified:
                verified += 1
                if entry.sha256 not in signed:
                    wrong.append(f"{case.category}: {case.name}")
    return {"cases": len(cases), "crashes": len(crashes), "verified_signed_bundle": verified,
            "wrongly_verified": len(wrong), **({"wrong": wrong[:10]} if wrong else {}),
            **({"crash_examples": crashes[:5]} if crashes else {}), "seconds": round(time.monotonic() - t0, 1)}


if __name__ == "__main__":
    import sys

    print(json.dumps(run_corpus(sys.argv[1] if len(sys.argv) > 1 else "short")))
    print(json.dumps(run_console_corpus(sys.argv[1] if len(sys.argv) > 1 else "short")))
