"""Issue 12 on the device: signed releases delivered to a real agent over its real TLS API, and every way one
must be refused. Each case ends with the device serving a verified model and an audit entry saying what happened.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.core.paths import demo_model
from edge_console.core.protocol import UPDATE_FINAL
from tests.support.agent_harness import agent_cli
from tests.support.updates import (
    TrustingDevice,
    build,
    flip_bundle_byte,
    install,
    rewrite_bundle,
    signed_release,
    upload,
    wait_state,
)


@pytest.fixture
def device(tmp_path, update_kit):
    """A real agent on 127.0.0.1 running parts-v1, trusting the kit's authority, with an operator console."""
    made = TrustingDevice(tmp_path, update_kit["authority"], probation_s=3.0, role="operator", fps=15)
    yield made
    made.stop()


def test_a_signed_release_is_verified_checked_activated_and_marked_good(device, update_kit):
    kit = update_kit
    record = device.deliver(signed_release(kit["authority"], kit["good"], kit["base"] / "good.edgerelease"))
    assert record["state"] == "good", record
    states = [s["state"] for s in record["steps"]]
    assert states == ["staged", "verified", "checked", "active", "good"]
    golden = record["figures"]["golden"]
    assert golden["passed"] and golden["f1"] >= 0.95 and golden["frames"] == 8
    # Unpacked, hashed and signature-checked while it arrived (agent/updates/_follower.py), and nothing of that left.
    assert record["figures"]["verify_ms"]["staged_as_received"] is True
    assert record["figures"]["verify_ms"]["signatures_checked_as_received"] is True
    assert not list((device.state / "uploads").glob(".*")), list((device.state / "uploads").iterdir())
    assert device.model()["version"] == "2.0.0"
    events = [e["event"] for e in device.audit()]
    for expected in ("release received", "release verified", "release checked", "model activated", "model good"):
        assert expected in events
    verify = agent_cli("audit", "verify", "--state-dir", str(device.state))
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"]


def _cases(kit: dict) -> dict:
    """Each bad release, made fresh (signing changes the authority's targets version)."""
    base, authority, golden = kit["base"], kit["authority"], kit["golden"]
    v1 = demo_model("parts-v1")

    def altered_after_signing():
        altered = base / "a2.tar"
        altered.write_bytes(flip_bundle_byte(signed_release(authority, kit["good"], base / "a.edgerelease").read_bytes()))
        return altered

    def manifest_lies():  # a bundle built wrong (or edited) and then signed: its own hashes must still hold
        model = bytearray(demo_model("parts-v2").read_bytes())
        model[len(model) // 2] ^= 0x01
        bad = rewrite_bundle(kit["good"], base / "lies.edgebundle", replace={"model.onnx": bytes(model)},
                             rehash=False)
        return signed_release(authority, bad, base / "lies.edgerelease")

    def untrusted_key():
        stranger = ReleaseAuthority.create(base / f"stranger-{len(list(base.iterdir()))}")
        return signed_release(stranger, kit["good"], base / "stranger.edgerelease")

    def expired():
        return signed_release(authority, kit["good"], base / "expired.edgerelease", expiry_days=-1)

    def incompatible():
        bundle = build(demo_model("parts-v2"), "parts", "2.0.1", golden, base, architectures=["armv7l"])
        return signed_release(authority, bundle, base / "arm.edgerelease")

    def fails_golden():  # parts-v1 cannot reproduce what parts-v2 found on the golden frames
        bundle = rewrite_bundle(kit["good"], base / "weak.edgebundle", replace={"model.onnx": v1.read_bytes()},
                                manifest_edit=lambda m: m.update(version="2.0.2"))
        return signed_release(authority, bundle, base / "weak.edgerelease")

    def blows_latency_budget():
        bundle = build(demo_model("parts-v2"), "parts", "2.0.3", golden, base, latency_budget_p95_ms=0.001)
        return signed_release(authority, bundle, base / "slow.edgerelease")

    return {"altered after signing": (altered_after_signing, "does not match its signed length or hash"),
            "manifest lies": (manifest_lies, "does not match its sha256 in the manifest"),
            "untrusted key": (untrusted_key, "not signed by a trusted key"),
            "expired metadata": (expired, "release metadata has expired"),
            "incompatible arch": (incompatible, "incompatible: built for armv7l"),
            "failed golden set": (fails_golden, "failed its check on this device: golden set F1"),
            "blown latency budget": (blows_latency_budget, "exceeds the latency budget")}


CASES = ("altered after signing", "manifest lies", "untrusted key", "expired metadata", "incompatible arch",
         "failed golden set", "blown latency budget")


@pytest.mark.parametrize("case", CASES)
def test_bad_releases_are_rejected_and_change_nothing(device, update_kit, case):
    make, reason = _cases(update_kit)[case]
    store_before = sorted(p.relative_to(device.state) for p in (device.state / "models").rglob("*"))
    record = device.deliver(make())
    assert record["state"] == "rejected" and reason in record["reason"], record
    assert device.model()["version"] == "1.0.0"  # still the verified factory model
    assert sorted(p.relative_to(device.state) for p in (device.state / "models").rglob("*")) == store_before
    rejected = [e for e in device.audit() if e["event"] == "update rejected"]
    assert rejected and reason in rejected[-1]["details"]["reason"]


def test_older_versions_and_replayed_metadata_are_refused_rollback_is_not(device, update_kit):
    authority, base = update_kit["authority"], update_kit["base"]
    first = signed_release(authority, update_kit["good"], base / "first.edgerelease")  # kept: replayed later
    newer = build(demo_model("parts-v2"), "parts", "2.1.0", update_kit["golden"], base)
    assert device.deliver(signed_release(authority, newer, base / "newer.edgerelease"))["state"] == "good"
    older = build(demo_model("parts-v2"), "parts", "2.0.5", update_kit["golden"], base)
    record = device.deliver(signed_release(authority, older, base / "older.edgerelease"))
    assert record["state"] == "rejected" and "older than installed" in record["reason"]
    record = device.deliver(first)  # its timestamp and snapshot are older than what the device has seen
    assert record["state"] == "rejected" and "replayed or old release metadata" in record["reason"]
    assert device.model()["version"] == "2.0.0" and device.model()["version"] == "2.0.0"

    async def rollback(s, url):
        async with s.post(url + "/v1/models/rollback", json={}) as r:
            return r.status, await r.json()

    status, body = device.run(rollback)
    assert status == 200 and body["running"]["factory"]  # back to what ran before: parts-v1
    assert device.model()["version"] == "1.0.0"
    assert any(e["event"] == "rollback" and not e["details"]["automatic"] for e in device.audit())


def test_a_revoked_targets_key_is_refused_after_the_new_root_arrives(tmp_path, update_kit):
    authority = ReleaseAuthority.create(tmp_path / "authority")
    device = TrustingDevice(tmp_path / "device", authority, probation_s=3.0, role="operator", fps=15)
    try:
        old_key = authority.key("targets")
        authority.replace_targets_key()  # root v2: the old targets key is revoked
        bundle = build(demo_model("parts-v2"), "parts", "2.0.0", update_kit["golden"], tmp_path)
        assert device.deliver(signed_release(authority, bundle, tmp_path / "v2root.edgerelease"))["state"] == "good"
        # Someone still holding the revoked key signs a "newer" release with it.
        (authority.keys_dir / "targets.key").write_bytes(old_key.private_pem())
        forged = build(demo_model("parts-v1"), "parts", "3.0.0", update_kit["golden"], tmp_path)
        record = device.deliver(signed_release(authority, forged, tmp_path / "forged.edgerelease"))
        assert record["state"] == "rejected" and "not signed by a trusted key" in record["reason"]
        assert device.model()["version"] == "2.0.0"
    finally:
        device.stop()


def test_an_upload_cut_mid_way_resumes_from_the_confirmed_offset(device, update_kit):
    release = signed_release(update_kit["authority"], update_kit["good"], update_kit["base"] / "resume.edgerelease")
    data = release.read_bytes()

    async def scenario(s, url):
        from tests.support.updates import offset_of, send_from

        upload_id = await upload(s, url, release, cut_after=len(data) // 3)
        confirmed = await offset_of(s, url, upload_id)
        # A request cut in the middle of its body: the device keeps what arrived.
        try:
            async with s.patch(f"{url}/v1/uploads/{upload_id}", data=_cut_body(data[confirmed:]), headers={
                    "Tus-Resumable": "1.0.0", "Upload-Offset": str(confirmed),
                    "Content-Type": "application/offset+octet-stream"}):
                pass
        except Exception:  # noqa: BLE001 - the cut is the point
            pass
        await asyncio.sleep(0.5)
        after_cut = await offset_of(s, url, upload_id)
        await send_from(s, url, upload_id, data, after_cut)
        record = await wait_state(s, url, await install(s, url, upload_id), UPDATE_FINAL)
        return confirmed, after_cut, record

    confirmed, after_cut, record = device.run(scenario)
    assert confirmed == len(data) // 3 and confirmed < after_cut < len(data)
    assert record["state"] == "good"
    # Across three requests and a cut, the follower saw every byte in order: it staged the release as it came.
    assert record["figures"]["verify_ms"]["staged_as_received"] is True


async def _cut_body(data: bytes):
    """Half of `data`, then an error: the client side of a link that drops mid-request."""
    yield data[: len(data) // 2]
    await asyncio.sleep(0.2)
    raise ConnectionResetError("link cut")
