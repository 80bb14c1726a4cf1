"""Updates from the device's own terminal (a USB stick), a full disk, the audit chain's tamper evidence, and the
probation watchdog's rules."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from edge_console.agent.updates._lifecycle import MAX_PROBATION_RESTARTS, ModelLifecycle, factory_entry
from edge_console.agent.updates._model_store import ModelStore, StoredModel
from edge_console.core.audit.log import AuditLog
from tests.support.agent_harness import agent_cli
from tests.support.updates import TrustingDevice, signed_release


def _cli(*args: str) -> subprocess.CompletedProcess:
    return agent_cli(*args, timeout=120)


def test_install_from_a_usb_folder_then_versions_and_rollback_on_the_device(tmp_path, update_kit):
    kit = update_kit
    device = TrustingDevice(tmp_path, kit["authority"], probation_s=2.0, role="operator", fps=15)
    stick = tmp_path / "usb"
    stick.mkdir()
    signed_release(kit["authority"], kit["good"], stick / "parts-2.0.0.edgerelease")
    try:
        done = _cli("install", str(stick), "--state-dir", str(device.state))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "checked" in done.stdout and "active" in done.stdout
        assert device.model()["version"] == "2.0.0"
        time.sleep(3)  # probation passes
        versions = json.loads(_cli("versions", "--json", "--state-dir", str(device.state)).stdout)
        assert versions["active"]["version"] == "2.0.0" and versions["state"] == "good"
        assert versions["previous"]["factory"]
        assert _cli("rollback", "--state-dir", str(device.state)).returncode == 0
        deadline = time.monotonic() + 20
        while device.model()["version"] != "1.0.0" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert device.model()["version"] == "1.0.0"
        refused = _cli("rollback", "7.7.7", "--state-dir", str(device.state))
        assert refused.returncode == 0  # handed over; the agent refuses it and says why in its events
    finally:
        device.stop()
    rollbacks = [e for e in AuditLog(device.state / "audit.log").entries() if e["event"] == "rollback"]
    assert rollbacks and rollbacks[-1]["actor"] == "device terminal"


def test_a_full_disk_rejects_the_update_and_keeps_the_model_store(tmp_path, update_kit):
    kit = update_kit
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(small)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.decode().strip()}")
    try:
        device = TrustingDevice(small, kit["authority"], probation_s=3.0, role="operator", fps=15,
                                log_dir=tmp_path / "agent-logs")  # its logs off the small disk
        try:
            ballast = small / "ballast"
            free = __import__("shutil").disk_usage(small).free
            release = signed_release(kit["authority"], kit["good"], tmp_path / "r.edgerelease")
            # Leave room for the upload itself, not for unpacking and storing it.
            ballast.write_bytes(b"\0" * max(0, free - int(release.stat().st_size * 1.4)))

            async def attempt(s, url):
                size = release.stat().st_size
                async with s.post(url + "/v1/uploads", headers={"Tus-Resumable": "1.0.0",
                                                                "Upload-Length": str(size)}) as r:
                    return r.status, await r.json()

            status, body = device.run(attempt)
            assert status == 507 and "disk space" in body["error"], body
            assert device.model()["version"] == "1.0.0"
            assert not list((small / "state" / "models" / "store").iterdir())
        finally:
            device.stop()
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def test_the_audit_chain_reveals_edited_and_deleted_entries(tmp_path):
    log = AuditLog(tmp_path / "audit.log")
    for i in range(5):
        log.append("device", "event", n=i)
    assert log.verify().ok
    lines = (tmp_path / "audit.log").read_text().splitlines()
    edited = json.loads(lines[2])
    edited["details"]["n"] = 99
    (tmp_path / "edited.log").write_text("\n".join([*lines[:2], json.dumps(edited), *lines[3:]]) + "\n")
    report = AuditLog(tmp_path / "edited.log").verify()
    assert not report.ok and report.first_bad_seq == 3 and "edited" in report.problem
    (tmp_path / "deleted.log").write_text("\n".join([*lines[:1], *lines[2:]]) + "\n")
    report = AuditLog(tmp_path / "deleted.log").verify()
    assert not report.ok and report.first_bad_seq == 2 and "deleted" in report.problem
    cut = AuditLog(tmp_path / "audit.log").verify(expect_head=json.loads(lines[-1])["hash"])
    assert cut.ok
    (tmp_path / "cut.log").write_text("\n".join(lines[:3]) + "\n")
    report = AuditLog(tmp_path / "cut.log").verify(expect_head=json.loads(lines[-1])["hash"])
    assert not report.ok and "cut short" in report.problem
    # A torn last line (power cut mid-write) is set aside and the chain goes on.
    with open(tmp_path / "audit.log", "a") as f:
        f.write('{"seq": 6, "at": 1')
    reopened = AuditLog(tmp_path / "audit.log")
    reopened.append("device", "after the cut")
    assert reopened.verify().ok and (tmp_path / "audit.log.torn").exists()


def _lifecycle(tmp_path, probation_s: float = 60.0) -> ModelLifecycle:
    model = tmp_path / "factory.onnx"
    model.write_bytes(b"factory")
    factory = factory_entry(str(model), "parts-v1", "1.0.0", "f" * 64)
    return ModelLifecycle(ModelStore(tmp_path / "state"), AuditLog(tmp_path / "audit.log"), factory, probation_s)


def test_the_probation_watchdog_rolls_back_on_errors_and_collapse_and_passes_a_healthy_model(tmp_path):
    lifecycle = _lifecycle(tmp_path)
    new = StoredModel("parts", "2.0.0", str(tmp_path / "m.onnx"), "a" * 64)
    lifecycle.begin_probation(new, lifecycle.factory, baseline_fps=15.0, model_errors=4)
    assert lifecycle.probation_verdict(14.0, 5, False, True) is None  # one error, a little slower: keep watching
    action, reason = lifecycle.probation_verdict(14.0, 7, False, True)
    assert action == "rollback" and "failed on 3 frames" in reason
    action, reason = lifecycle.probation_verdict(6.0, 4, False, True)
    assert action == "rollback" and "collapsed" in reason and "6.0 fps against 15.0" in reason
    assert lifecycle.probation_verdict(6.0, 4, False, source_ok=False) is None  # the camera's fault, not the model's
    lifecycle.state.probation_until = time.time() - 1
    assert lifecycle.probation_verdict(14.0, 4, False, True) == ("good", "")
    # Persisted before it takes effect: a fresh reader sees the probation, the baseline and the highest version.
    again = ModelStore(tmp_path / "state").load()
    assert again.state == "probation" and again.baseline_fps == 15.0 and again.highest == {"parts": "2.0.0"}
    assert MAX_PROBATION_RESTARTS == 2
