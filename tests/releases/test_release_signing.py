"""Issue 21, item 9, on the device: what an attacker and an independent TUF review got a real agent (TLS, pairing,
roles) to accept or to refuse for ever, delivered the way they did it. Each test ends with what the device runs and
what it says, and with a correctly signed release still going through."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import time

import pytest
from securesystemslib.signer import Signature, SSlibKey
from tuf.api.metadata import Metadata, Targets

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.demo import golden_frames
from edge_console.core.paths import demo_model
from edge_console.core.releases.trust import add_target, new_root, rotate_root
from tests.support.agent_harness import ROOT
from tests.support.updates import (
    DAY_S,
    TrustingDevice,
    build,
    clock_ahead,
    edge_bundle,
    release_from,
    release_members,
    rewrite_bundle,
    sign_unchecked,
    signed_release,
    version_of,
)

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    base = tmp_path_factory.mktemp("signing-kit")
    good = build(demo_model("parts-v2"), "parts", "2.0.0", golden_frames(base / "golden", count=3), base)
    return {"base": base, "good": good}


def test_a_signer_whose_clock_ran_a_month_ahead_does_not_freeze_the_device(tmp_path, kit):
    authority = ReleaseAuthority.create(tmp_path / "authority")
    device = TrustingDevice(tmp_path / "device", authority)
    try:
        with clock_ahead(days=30):
            fast = authority.sign(version_of(kit, "2.0.0", tmp_path), tmp_path / "fast.edgerelease")
        assert device.deliver(fast)["state"] == "good"
        held = device.release_trust()["held"]
        assert held["timestamp"] > (time.time() + 29 * DAY_S) * 1000  # the device holds a version from the future
        # The same authority, its clock set right (`edge-bundle` run again): it remembers what it signed, and goes on
        # above it.
        correct = tmp_path / "correct.edgerelease"
        signed = edge_bundle("sign", str(version_of(kit, "2.1.0", tmp_path)), "--dir", str(authority.folder),
                             "--out", str(correct))
        assert signed.returncode == 0, signed.stderr
        assert device.deliver(correct)["state"] == "good"
        # An authority that lost that memory (restored from a backup, a new machine) is refused as a replay; the
        # refusal names the version the device holds and the way on.
        (authority.folder / "delivery-version.json").unlink()
        bundle = version_of(kit, "2.2.0", tmp_path)
        lost = edge_bundle("sign", str(bundle), "--dir", str(authority.folder), "--out", str(tmp_path / "lost.r"))
        assert lost.returncode == 0, lost.stderr
        refused = device.deliver(tmp_path / "lost.r")
        assert refused["state"] == "rejected" and "replayed or old release metadata" in refused["reason"]
        holds = int(re.search(r"holds snapshot/timestamp version (\d+)", refused["reason"]).group(1))
        assert holds == device.release_trust()["held"]["timestamp"]
        assert f"edge-bundle sign BUNDLE --after-version {holds}" in refused["reason"]
        again = edge_bundle("sign", str(bundle), "--dir", str(authority.folder), "--after-version", str(holds),
                            "--out", str(tmp_path / "after.edgerelease"))
        assert again.returncode == 0, again.stderr
        record = device.deliver(tmp_path / "after.edgerelease")
        assert record["state"] == "good" and record["version"] == "2.2.0"
        # Replay protection holds: a delivery signed before is still refused.
        replayed = device.deliver(correct)
        assert replayed["state"] == "rejected" and "replayed or old release metadata" in replayed["reason"]
        assert device.model()["version"] == "2.0.0"
        assert "Traceback" not in "".join(device.agent.stderr_lines())
    finally:
        device.stop()


def test_a_reused_real_snapshot_and_timestamp_cannot_carry_targets_signed_by_a_revoked_key(tmp_path, kit):
    """The device still trusts root v1; root v2 revoked targets key k1. The attacker holds k1, signs a targets.json
    numbered like the real one, and delivers it beside the real release's snapshot and timestamp, without root v2."""
    authority = ReleaseAuthority.create(tmp_path / "authority")
    device = TrustingDevice(tmp_path / "device", authority)
    try:
        revoked = authority.key("targets")
        authority.replace_targets_key()  # root v2
        real = authority.sign(version_of(kit, "2.0.0", tmp_path), tmp_path / "real.edgerelease")
        evil = version_of(kit, "3.0.0", tmp_path)  # any bundle the attacker likes; this one would pass its checks
        named = tmp_path / "named" / "parts-3.0.0.edgebundle"
        named.parent.mkdir()
        named.symlink_to(evil.resolve())
        forged = add_target(None, named, [revoked], {"model_line": "parts", "version": "3.0.0"})
        members = release_members(real)
        assert Metadata[Targets].from_bytes(members["metadata/targets.json"]).signed.version == forged.signed.version
        attack = release_from({"metadata/1.root.json": authority.root_json(), "metadata/root.json":
                               authority.root_json(), "metadata/targets.json": forged.to_bytes(),
                               "metadata/snapshot.json": members["metadata/snapshot.json"],
                               "metadata/timestamp.json": members["metadata/timestamp.json"],
                               "targets/parts-3.0.0.edgebundle": evil.read_bytes()}, tmp_path / "attack.edgerelease")
        record = device.deliver(attack)
        assert record["state"] == "rejected", record
        assert "not what was signed for this delivery" in record["reason"] and "hash" in record["reason"]
        assert device.model()["version"] == "1.0.0"
        assert device.deliver(real)["state"] == "good"  # the real release, with its root v2, goes through
        assert device.model()["version"] == "2.0.0" and device.release_trust()["root_version"] == 2
    finally:
        device.stop()


def test_snapshot_and_timestamp_that_bind_no_hashes_are_refused_with_the_way_on(tmp_path, kit):
    """What release tooling signed before issue 21: refused (the device cannot tell the targets.json beside such a
    snapshot from one slipped in), saying how to get an acceptable release; signed again, it goes through."""
    from tests.support.updates import Signer

    authority = ReleaseAuthority.create(tmp_path / "authority")
    device = TrustingDevice(tmp_path / "device", authority)
    try:
        bundle = version_of(kit, "2.0.0", tmp_path)
        release = authority.sign(bundle, tmp_path / "new.edgerelease")
        targets = Metadata[Targets].from_bytes(release_members(release)["metadata/targets.json"])
        old_style = Signer(authority, tmp_path).delivery(targets, authority.key("delivery"), bundle, hashes=False,
                                                         version=authority.versions.next())
        (tmp_path / "old.edgerelease").write_bytes(old_style)
        record = device.deliver(tmp_path / "old.edgerelease")
        assert record["state"] == "rejected"
        assert "does not list the length and sha256" in record["reason"] and "edge-bundle sign" in record["reason"]
        assert device.deliver(authority.sign(bundle, tmp_path / "again.edgerelease"))["state"] == "good"
    finally:
        device.stop()


def _listing_the_targets_key_twice(authority: ReleaseAuthority):
    """Root v2 of `authority` with its targets key listed again under a made-up id and a targets threshold of 2."""
    alias = hashlib.sha256(b"alias").hexdigest()
    public = authority.key("targets").public

    def twice(root) -> None:
        root.add_key(SSlibKey(alias, public.keytype, public.scheme, dict(public.keyval)), "targets")
        root.roles["targets"].threshold = 2

    root_key = authority.key("root")
    return rotate_root(authority.roots()[-1], [root_key], twice, [root_key]), alias


def test_a_root_listing_one_key_under_two_ids_is_refused_by_device_console_and_tooling(tmp_path, kit):
    authority = ReleaseAuthority.create(tmp_path / "authority")
    device = TrustingDevice(tmp_path / "device", authority)
    try:
        # Installed as trust by an admin: refused, and the trust is what it was.
        from edge_console.core.releases.trust import SigningKey

        key = SigningKey.generate()
        doubled_root = new_root([key], [key], [key], threshold=1)
        alias = hashlib.sha256(b"root alias").hexdigest()
        doubled_root.signed.add_key(SSlibKey(alias, key.public.keytype, key.public.scheme, dict(key.public.keyval)),
                                    "root")
        doubled_root.signed.roles["root"].threshold = 2
        doubled_root.signatures.clear()
        doubled_root.sign(key.signer)
        doubled_root.signatures[alias] = Signature(alias, doubled_root.signatures[key.keyid].signature)
        status, body = device.put_root(doubled_root.to_bytes())
        assert status == 400 and "one public key under two key ids" in body["detail"], body
        assert device.release_trust()["keys"] == sorted(k[:16] for k in authority.roots()[0].signed.keys)
        # Reached through a delivery's root rotation: refused before anything is taken from it.
        rotated, target_alias = _listing_the_targets_key_twice(authority)
        bundle = version_of(kit, "2.0.0", tmp_path)
        release = authority.sign(bundle, tmp_path / "r.edgerelease")
        members = release_members(release)
        targets = Metadata[Targets].from_bytes(members["metadata/targets.json"])
        targets.signatures[target_alias] = Signature(target_alias,
                                                     targets.signatures[authority.key("targets").keyid].signature)
        attack = release_from({**members, "metadata/2.root.json": rotated.to_bytes(),
                               "metadata/root.json": rotated.to_bytes(), "metadata/targets.json": targets.to_bytes()},
                              tmp_path / "attack.edgerelease")
        record = device.deliver(attack)
        assert record["state"] == "rejected" and "one public key under two key ids" in record["reason"], record
        assert device.model()["version"] == "1.0.0" and device.release_trust()["root_version"] == 1
    finally:
        device.stop()
    root_file = tmp_path / "doubled-root.json"
    root_file.write_bytes(doubled_root.to_bytes())
    console = subprocess.run([sys.executable, "-m", "edge_console.client.releases.cli", "--data-dir",
                              str(tmp_path / "console-data"), "release", "trust", str(root_file)], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert console.returncode != 0 and "one public key under two key ids" in console.stderr, console.stderr
    verified = edge_bundle("verify", str(release), "--root", str(root_file))
    assert verified.returncode == 2 and "one public key under two key ids" in verified.stderr
    made_up = tmp_path / "console.pub"
    made_up.write_text(f'{{"keyid": "{alias}", "keytype": "ed25519", "scheme": "ed25519", "keyval": '
                       f'{{"public": "{authority.key("delivery").public.keyval["public"]}"}}}}')
    rotated_cli = edge_bundle("rotate", "--dir", str(authority.folder), "--add-console-key", str(made_up))
    assert rotated_cli.returncode == 2 and "that key's id is" in rotated_cli.stderr, rotated_cli.stderr
    assert "Traceback" not in console.stderr + verified.stderr + rotated_cli.stderr


def test_replacing_the_trust_root_leaves_nothing_of_the_old_trust(tmp_path, kit):
    first = ReleaseAuthority.create(tmp_path / "first")
    device = TrustingDevice(tmp_path / "device", first)
    trust = device.state / "release-trust"
    try:
        first.replace_targets_key()  # root v2, reaching the device with the next release
        assert device.deliver(first.sign(version_of(kit, "2.0.0", tmp_path), tmp_path / "a.edgerelease"))[
            "state"] == "good"
        assert {p.name for p in (trust / "root_history").iterdir()} == {"1.root.json", "2.root.json"}
        second = ReleaseAuthority.create(tmp_path / "second")
        status, body = device.put_root(second.root_json())
        assert status == 200 and body["root_version"] == 1, body
        assert [p.name for p in trust.iterdir()] == ["root.json"]  # no history, no metadata of the old authority
        assert not (trust / "root.json").is_symlink() and (trust / "root.json").read_bytes() == second.root_json()
        record = device.deliver(second.sign(version_of(kit, "2.1.0", tmp_path), tmp_path / "b.edgerelease"))
        assert record["state"] == "good", record
        assert {p.name for p in (trust / "root_history").iterdir()} == {"1.root.json"}
        assert (trust / "root_history" / "1.root.json").read_bytes() == second.root_json()
        old = device.deliver(first.sign(version_of(kit, "2.2.0", tmp_path), tmp_path / "c.edgerelease"))
        assert old["state"] == "rejected" and "not signed by a trusted key" in old["reason"]
    finally:
        device.stop()


def test_expired_targets_ask_for_a_re_sign_and_a_signed_model_that_is_not_onnx_is_named(tmp_path, kit):
    authority = ReleaseAuthority.create(tmp_path / "authority")
    device = TrustingDevice(tmp_path / "device", authority)
    try:
        stale = sign_unchecked(authority, version_of(kit, "2.0.0", tmp_path), tmp_path / "stale.edgerelease",
                               targets_expiry_days=-1)
        record = device.deliver(stale)
        assert record["state"] == "rejected" and "release authority must sign the release again" in record["reason"]
        assert "fresh timestamp" not in record["reason"]
        late = signed_release(authority, version_of(kit, "2.0.1", tmp_path), tmp_path / "late.edgerelease",
                              expiry_days=-1)
        record = device.deliver(late)
        assert record["state"] == "rejected" and "Deliver it again from a console (fresh timestamp)" in record["reason"]
        checkpoint = rewrite_bundle(kit["good"], tmp_path / "pt.edgebundle",
                                    replace={"model.onnx": b"PK\x03\x04" + bytes(4000)},  # a PyTorch checkpoint
                                    manifest_edit=lambda m: m.update(version="2.0.2"))
        record = device.deliver(sign_unchecked(authority, checkpoint, tmp_path / "pt.edgerelease"))
        assert record["state"] == "rejected", record
        assert record["reason"].startswith("model.onnx of parts 2.0.2 is not an ONNX model"), record["reason"]
        unloadable = rewrite_bundle(kit["good"], tmp_path / "op.edgebundle",
                                    replace={"model.onnx": _model_with_an_unknown_operator()},
                                    manifest_edit=lambda m: m.update(version="2.0.3"))
        record = device.deliver(sign_unchecked(authority, unloadable, tmp_path / "op.edgerelease"))
        assert record["state"] == "rejected", record
        assert record["reason"].startswith("model.onnx of parts 2.0.3 cannot be run on this device"), record["reason"]
        assert "unexpected error" not in record["reason"] and str(device.state) not in record["reason"]
        assert "Traceback" not in "".join(device.agent.stderr_lines())
        assert device.model()["version"] == "1.0.0"
        assert device.deliver(authority.sign(version_of(kit, "2.1.0", tmp_path), tmp_path / "ok.edgerelease"))[
            "state"] == "good"
    finally:
        device.stop()


def _model_with_an_unknown_operator() -> bytes:
    """A well-formed ONNX file that onnxruntime cannot load (an operator nobody implements)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("NoSuchOperator", ["images"], ["out"], domain="example.invalid")],
                              "unknown", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 7, 84])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("example.invalid", 1)])
    return model.SerializeToString()
