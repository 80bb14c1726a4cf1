"""Issue 22, items 13 and 14, as a user does them, each command in its own process: golden frames saved from a real
device with `edge-console compare --save-frames` go straight into `edge-bundle build --golden` (mixed with images,
stored losslessly, a bad file named); `build` writes one progress line per frame in a log and a rewritten line on a
terminal; `edge-bundle verify` and `edge-agent versions` print a short summary, and their JSON with `--json`."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.demo import golden_frames
from edge_console.core.frame_file import SUFFIX, read_saved_frame
from edge_console.core.paths import demo_model
from tests.support.agent_harness import ROOT, Agent
from tests.support.console_trust import TEST_TRUST, console_agent, with_a_frame
from tests.support.updates import TrustingDevice, build, signed_release

pytestmark = pytest.mark.timeout(600)


def run(module: str, *args: str, **options) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, **options)


def edge_bundle(*args: str) -> subprocess.CompletedProcess:
    return run("edge_console.bundle.cli", *args)


def edge_agent(*args: str) -> subprocess.CompletedProcess:
    return run("edge_console.agent.cli", *args)


def device_with_frames(state: Path) -> Agent:
    """A real paired device (parts-v1, TLS) that has inferred its first frame."""
    return with_a_frame(console_agent("Packing line 2", state, advertise=False, model=demo_model("parts-v1")), 90)


def golden_members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.name.startswith("golden/")}


def test_frames_saved_from_a_device_build_a_bundle_that_verifies(tmp_path):
    agent = device_with_frames(tmp_path / "device")
    frames = tmp_path / "golden-frames"
    try:
        saved = run("edge_console.console.cli", "compare", "--data-dir", str(TEST_TRUST.data_dir), "--device",
                    str(agent.address), "--frames", "3", "--save-frames", str(frames))
    finally:
        agent.stop()
    assert saved.returncode == 0, saved.stderr
    edgeframes = sorted(frames.glob(f"*{SUFFIX}"))
    assert len(edgeframes) == 3
    shutil.copy(sorted(golden_frames(tmp_path / "pictures", count=2).iterdir())[0], frames / "zz-picture.png")

    out = tmp_path / "parts-2.1.0.edgebundle"
    built = edge_bundle("build", str(demo_model("parts-v2")), "--line", "parts", "--version", "2.1.0", "--golden",
                        str(frames), "--out", str(out))
    assert built.returncode == 0, built.stderr
    # Not a terminal: one line per frame, never "golden frame 1/4golden frame 2/4" and never a carriage return.
    assert "\r" not in built.stderr and "Traceback" not in built.stderr
    progress = [line for line in built.stderr.splitlines() if line.startswith("golden frame")]
    assert progress == [f"golden frame {i}/4: {p.name}" for i, p in
                        enumerate([*edgeframes, frames / "zz-picture.png"], 1)], built.stderr
    assert built.stdout.strip() == str(out)

    # Each saved frame is in the bundle as a PNG of exactly the pixels the device inferred on; the picture as it was.
    members = golden_members(out)
    assert sorted(members) == ["golden/0000.png", "golden/0001.png", "golden/0002.png", "golden/0003.png"]
    for i, path in enumerate(edgeframes):
        _header, pixels = read_saved_frame(path)
        stored = cv2.imdecode(np.frombuffer(members[f"golden/{i:04d}.png"], np.uint8), cv2.IMREAD_COLOR)
        assert np.array_equal(stored, pixels), path.name
    assert members["golden/0003.png"] == (frames / "zz-picture.png").read_bytes()

    # Signed, then verified as a device would, with the golden set run here: a summary, then the same as JSON.
    authority = ReleaseAuthority.create(tmp_path / "authority")
    release = authority.sign(out, tmp_path / "parts-2.1.0.edgerelease")
    root = str(authority.metadata_dir / "1.root.json")
    verified = edge_bundle("verify", str(release), "--root", root, "--check")
    assert verified.returncode == 0, verified.stderr
    text = verified.stdout
    assert not text.lstrip().startswith("{"), text
    for expected in ("parts-2.1.0.edgerelease: release parts 2.1.0 (model parts 2.0.0",
                     "Verdict: VERIFIED as a device verifies it: signatures under root version 1",
                     "Golden set: 4 frames", "Golden check on this machine: PASSED, F1 1.000", "--json"):
        assert expected in text, text
    as_json = edge_bundle("verify", str(release), "--root", root, "--check", "--json")
    result = json.loads(as_json.stdout)
    assert result["golden"]["passed"] and result["golden"]["frames"] == 4 and result["manifest"]["golden"] == 4
    assert result["root_version"] == 1 and result["sha256"] in text

    # A refused release: the verdict and why, on one line, and nothing on standard output.
    other = ReleaseAuthority.create(tmp_path / "other")
    refused = edge_bundle("verify", str(release), "--root", str(other.metadata_dir / "1.root.json"))
    assert refused.returncode == 2 and not refused.stdout
    assert refused.stderr.startswith("edge-bundle: error: parts-2.1.0.edgerelease: REFUSED, a device would not "
                                     "install it: "), refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr

    # A saved frame cut short, and a file that only has the name: each is named, and no bundle is written.
    cut = frames / "seq99999998.edgeframe"
    cut.write_bytes(edgeframes[0].read_bytes()[:5000])
    for bad, why in ((cut, "its image is cut short"), (frames / "seq99999999.edgeframe", "3 bytes are too few")):
        if bad != cut:
            cut.unlink()
            bad.write_bytes(b"abc")
        refused_build = edge_bundle("build", str(demo_model("parts-v2")), "--line", "parts", "--version", "2.1.1",
                                    "--golden", str(frames), "--out", str(tmp_path / "bad.edgebundle"))
        assert refused_build.returncode == 2, refused_build.stderr
        assert f"golden frame {bad.name} is not a frame saved from a device" in refused_build.stderr
        assert why in refused_build.stderr and "Traceback" not in refused_build.stderr
        assert "imdecode" not in refused_build.stderr, "named by us, not by the decoder"
        assert not (tmp_path / "bad.edgebundle").exists()


def test_build_rewrites_one_progress_line_on_a_terminal_and_ends_it(tmp_path):
    frames = golden_frames(tmp_path / "frames", count=3)
    primary, replica = pty.openpty()
    try:
        built = subprocess.run([sys.executable, "-m", "edge_console.bundle.cli", "build", str(demo_model("parts-v2")),
                                "--line", "parts", "--version", "2.0.0", "--golden", str(frames), "--out",
                                str(tmp_path / "b.edgebundle")], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=replica, timeout=300)
        os.close(replica)
        replica = -1
        terminal = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the other end is closed and everything was read
                break
            if not chunk:
                break
            terminal += chunk
    finally:
        os.close(primary)
        if replica >= 0:
            os.close(replica)
    assert built.returncode == 0, terminal
    text = terminal.decode().replace("\r\n", "\n")  # the terminal's own newline translation
    progress, rest = text.split("\n", 1)
    assert progress.count("\r") == 3 and progress.endswith("golden frame 3/3: scene-002.png\x1b[K"), progress
    assert rest.startswith("Bundle written: "), text  # the progress line was ended before anything else


def test_agent_versions_says_what_runs_and_what_a_rollback_returns_to(tmp_path):
    authority = ReleaseAuthority.create(tmp_path / "authority")
    bundle = build(demo_model("parts-v2"), "parts", "2.0.0", golden_frames(tmp_path / "golden", count=2), tmp_path)
    stick = tmp_path / "usb"
    stick.mkdir()
    signed_release(authority, bundle, stick / "parts-2.0.0.edgerelease")
    device = TrustingDevice(tmp_path / "device", authority, probation_s=600)
    state = str(device.state)
    try:
        before = edge_agent("versions", "--state-dir", state)
        assert before.returncode == 0, before.stderr
        assert before.stdout.startswith("Running: the model the agent was started with (--model)"), before.stdout
        installed = edge_agent("install", str(stick), "--state-dir", state)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        shown = edge_agent("versions", "--state-dir", state)
        lines = shown.stdout.splitlines()
        assert lines[0].startswith("Running: parts 2.0.0, ON PROBATION (") and " s left" in lines[0], lines
        assert lines[1] == "Previous: parts 1.0.0 (factory) (`edge-agent rollback` returns to it)", lines
        assert lines[2].startswith("Retained: parts 2.0.0, and the factory model"), lines
        assert lines[3].startswith("Last update: parts 2.0.0 from parts-2.0.0.edgerelease (usb, "), lines
        assert not shown.stdout.lstrip().startswith("{") and "Traceback" not in shown.stderr
        as_json = json.loads(edge_agent("versions", "--json", "--state-dir", state).stdout)
        assert as_json["state"] == "probation" and as_json["active"]["version"] == "2.0.0"
        assert as_json["previous"]["factory"]
    finally:
        device.stop()
