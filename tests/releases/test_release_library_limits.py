"""Issue 21, items 9 and 11, on the console: its release library's import (through the real `edge-console release`
command) under the limits a device keeps, and a push that signs above what a device holds (a signer's clock ran
ahead), against a real agent with TLS and pairing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_console.bundle.authority import ReleaseAuthority, public_key_from_json
from edge_console.bundle.demo import golden_frames
from edge_console.client.releases.delivery import delivery_public_key
from edge_console.core.paths import demo_model
from tests.support.agent_harness import ROOT, pairing_code
from tests.support.updates import (
    TrustingDevice,
    build,
    clock_ahead,
    edge_bundle,
    release_from,
    release_members,
    rewrite_bundle,
    sign_unchecked,
    version_of,
)

pytestmark = pytest.mark.timeout(600)


def console(data: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_console.client.releases.cli", "--data-dir", str(data), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    base = tmp_path_factory.mktemp("library-kit")
    good = build(demo_model("parts-v2"), "parts", "2.0.0", golden_frames(base / "golden", count=3), base)
    return {"base": base, "good": good}


def _library_files(data: Path) -> dict[str, int]:
    """Every file the library holds, and its size on disk (a sparse copy would count only what was written)."""
    folder = data / "releases"
    return {p.relative_to(folder).as_posix(): p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file()}


def test_the_library_refuses_hostile_release_files_before_copying_them_and_keeps_nothing_of_them(tmp_path, kit):
    authority = ReleaseAuthority.create(tmp_path / "authority")
    data = tmp_path / "console"
    root = tmp_path / "root.json"
    root.write_bytes(authority.root_json())
    assert console(data, "release", "trust", str(root)).returncode == 0
    good = authority.sign(version_of(kit, "2.0.0", tmp_path), tmp_path / "good.edgerelease")
    members = release_members(good)
    many = release_from({**{f"metadata/x{i}.json": b"{}" for i in range(20_000)}, **members},
                        tmp_path / "many.edgerelease")
    trailing = tmp_path / "trailing.edgerelease"
    trailing.write_bytes(good.read_bytes())
    os.truncate(trailing, trailing.stat().st_size + 2 * 2**30)  # 2 GiB after the tar's end (sparse: no real disk)
    huge = tmp_path / "huge.edgerelease"
    huge.write_bytes(good.read_bytes())
    os.truncate(huge, 5 * 2**30)
    text_model = rewrite_bundle(kit["good"], tmp_path / "text.edgebundle", replace={"model.onnx": b"weights\n" * 64},
                                manifest_edit=lambda m: m.update(version="2.0.1"))
    not_onnx = sign_unchecked(authority, text_model, tmp_path / "not-onnx.edgerelease")
    cases = {many: "more metadata than a release needs", trailing: "goes on after its end",
             huge: "a release is at most 4 GiB", not_onnx: "model.onnx of parts 2.0.1 is not an ONNX model"}
    for path, why in cases.items():
        imported = console(data, "release", "import", str(path), "--json")
        assert imported.returncode == 1, imported.stderr
        entry = json.loads(imported.stdout)
        assert not entry["verified"] and why in entry["problem"], entry
        assert "Traceback" not in imported.stderr
        # Listed with its reason, and nothing else: no copy, no unpacked bundle, no import folder left behind.
        files = _library_files(data)
        assert all(name.endswith("/entry.json") for name in files), files
        assert sum(files.values()) < 2**20, files
    listed = json.loads(console(data, "release", "list", "--json").stdout)
    assert len(listed) == len(cases) and not any(e["verified"] for e in listed)
    # The release these were made from imports as verified, and is the only one that keeps its bytes.
    imported = console(data, "release", "import", str(good), "--json")
    assert imported.returncode == 0 and json.loads(imported.stdout)["verified"], imported.stdout
    kept = [name for name in _library_files(data) if not name.endswith("/entry.json")]
    assert kept and all(name.startswith("parts-2.0.0-") for name in kept)


def test_a_console_push_is_signed_above_the_version_a_device_holds(tmp_path, kit):
    """A release signed with a clock a month ahead reached the device by another way (a USB stick); this console
    never saw it. Its push asks the device what it holds and signs above it, and the device takes it."""
    data = tmp_path / "console"
    key_file = tmp_path / "console-delivery.pub"
    key_file.write_bytes(delivery_public_key(data))
    authority = ReleaseAuthority.create(tmp_path / "authority",
                                        extra_delivery_keys=[public_key_from_json(key_file.read_bytes())])
    device = TrustingDevice(tmp_path / "device", authority)
    try:
        address = device.url.split("://", 1)[1]
        paired = console(data, "pair", address, "--code", pairing_code(device.state, "operator"))
        assert paired.returncode == 0, paired.stderr
        root = tmp_path / "root.json"
        root.write_bytes(authority.root_json())
        assert console(data, "release", "trust", str(root)).returncode == 0
        with clock_ahead(days=30):
            fast = authority.sign(version_of(kit, "2.0.0", tmp_path), tmp_path / "fast.edgerelease")
        assert device.deliver(fast)["state"] == "good"
        held = device.release_trust()["held"]["timestamp"]
        assert held > (time.time() + 29 * 86400) * 1000
        # Signed later on another machine (its own process, no memory of the fast version); the console's library
        # takes it (it never saw the fast one), and would deliver it below what the device holds.
        (authority.folder / "delivery-version.json").unlink()
        release = tmp_path / "parts-2.1.0.edgerelease"
        assert edge_bundle("sign", str(version_of(kit, "2.1.0", tmp_path)), "--dir", str(authority.folder),
                           "--out", str(release)).returncode == 0
        imported = console(data, "release", "import", str(release), "--json")
        assert imported.returncode == 0 and json.loads(imported.stdout)["verified"], imported.stdout
        pushed = console(data, "push", "--release", "parts:2.1.0", "--devices", address, "--json")
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        rollout = json.loads(pushed.stdout.splitlines()[-1])
        assert rollout["status"] == "done" and rollout["steps"][0]["phase"] == "good", rollout
        signed = json.loads((data / "delivery-version.json").read_text())["last_version"]
        assert signed > held and device.release_trust()["held"]["timestamp"] == signed
        assert device.model()["version"] == "2.0.0"
    finally:
        device.stop()
