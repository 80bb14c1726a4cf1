"""Issue 21, item 9, for `edge-bundle` itself (the real command, in its own process): `build` never writes a
bundle that `sign` refuses, and a model that is not ONNX or a manifest that is too large gets a clear error that
names it, from every command, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.demo import golden_frames
from edge_console.core.paths import demo_model
from edge_console.core.releases.file_format import MAX_MANIFEST_BYTES
from tests.support.agent_harness import ROOT
from tests.support.onnx_factory import constant_output_model, ultralytics_metadata
from tests.support.updates import build, rewrite_bundle, sign_unchecked

pytestmark = pytest.mark.timeout(600)
NAMES = ["bolt", "nut", "washer"]


def edge_bundle(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_console.bundle.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def crowded_model(path: Path, per_frame: int) -> Path:
    """A real ONNX model (a YOLOv8 head) that finds `per_frame` separate parts in every frame: a busy golden set."""
    head = np.zeros((1, 4 + len(NAMES), 8400), np.float32)
    for i in range(per_frame):
        row, col = divmod(i, 30)
        head[0, :4, i] = (12 + 21 * col, 100 + 21 * row, 15.3, 14.7)  # inside a 640x480 frame, letterboxed
        head[0, 4 + i % len(NAMES), i] = 0.51 + (i % 47) / 100
    return constant_output_model(path, {"output0": head}, input_shape=(1, 3, 640, 640),
                                 metadata=ultralytics_metadata(NAMES, imgsz=(640, 640)))


def plain_frames(folder: Path, count: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), rng.integers(0, 255, (480, 640, 3), np.uint8))
    return folder


def manifest_of(bundle: Path) -> bytes:
    with tarfile.open(bundle) as tar:
        return tar.extractfile("manifest.json").read()


def test_build_writes_what_sign_accepts_and_refuses_what_it_would_not(tmp_path):
    """150 golden frames of 140 detections each: the manifest as build used to write it (indented, unrounded) was
    well over the 2 MiB a device reads; now it is well under, signs, and its golden set still passes. Twice as many
    detections do not fit at all: build says so, how many frames would, and writes nothing."""
    authority = ReleaseAuthority.create(tmp_path / "authority")
    frames = plain_frames(tmp_path / "frames", 150)
    busy = crowded_model(tmp_path / "busy.onnx", 140)
    out = tmp_path / "busy-1.0.0.edgebundle"
    built = edge_bundle("build", str(busy), "--line", "busy", "--version", "1.0.0", "--golden", str(frames),
                        "--out", str(out))
    assert built.returncode == 0, built.stderr
    manifest = manifest_of(out)
    detections = sum(len(f["detections"]) for f in json.loads(manifest)["golden"]["frames"])
    assert detections == 150 * 140
    assert len(json.dumps(json.loads(manifest), indent=1)) > MAX_MANIFEST_BYTES > len(manifest)
    signed = edge_bundle("sign", str(out), "--dir", str(authority.folder), "--out", str(tmp_path / "b.edgerelease"))
    assert signed.returncode == 0, signed.stderr
    verified = edge_bundle("verify", str(tmp_path / "b.edgerelease"), "--root",
                           str(authority.metadata_dir / "1.root.json"), "--check", "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["golden"]["f1"] == 1.0  # rounded detections still match the model's
    crowded = crowded_model(tmp_path / "crowded.onnx", 300)
    refused = edge_bundle("build", str(crowded), "--line", "busy", "--version", "1.0.1", "--golden", str(frames),
                          "--out", str(tmp_path / "crowded.edgebundle"))
    assert refused.returncode == 2, refused.stderr
    assert "150 golden frames with 45000 detections" in refused.stderr and "frames like these fit" in refused.stderr
    fit = int(refused.stderr.split("about ")[1].split(" frames")[0])
    assert 50 < fit < 150
    assert not (tmp_path / "crowded.edgebundle").exists() and "Traceback" not in refused.stderr


def test_a_model_that_is_not_onnx_is_named_by_build_sign_and_verify(tmp_path):
    authority = ReleaseAuthority.create(tmp_path / "authority")
    golden = golden_frames(tmp_path / "golden", count=2)
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"PK\x03\x04" + bytes(2000))  # what torch.save writes: a zip
    built = edge_bundle("build", str(checkpoint), "--line", "parts", "--version", "2.0.0", "--golden", str(golden),
                        "--out", str(tmp_path / "x.edgebundle"))
    assert built.returncode == 2 and f"{checkpoint} is not an ONNX model" in built.stderr, built.stderr
    assert not (tmp_path / "x.edgebundle").exists()
    good = build(demo_model("parts-v2"), "parts", "2.0.0", golden, tmp_path)
    text = rewrite_bundle(good, tmp_path / "text.edgebundle", replace={"model.onnx": b"not a model\n"},
                          manifest_edit=lambda m: m.update(version="2.0.1"))
    signed = edge_bundle("sign", str(text), "--dir", str(authority.folder))
    assert signed.returncode == 2 and "model.onnx of text.edgebundle is not an ONNX model" in signed.stderr
    assert authority.targets() is None  # nothing was signed
    release = sign_unchecked(authority, text, tmp_path / "text.edgerelease")  # as older tooling would have
    verified = edge_bundle("verify", str(release), "--root", str(authority.metadata_dir / "1.root.json"))
    assert verified.returncode == 2 and "model.onnx of parts 2.0.1 is not an ONNX model" in verified.stderr
    assert "Traceback" not in built.stderr + signed.stderr + verified.stderr


def test_a_manifest_too_large_is_reported_with_its_size_and_the_limit(tmp_path):
    from tests.support.updates import Signer

    authority = ReleaseAuthority.create(tmp_path / "authority")
    good = build(demo_model("parts-v2"), "parts", "2.0.0", golden_frames(tmp_path / "golden", count=2), tmp_path)
    big = rewrite_bundle(good, tmp_path / "big.edgebundle",
                         manifest_edit=lambda m: m.update(description="x" * (3 * 2**20)))
    signed = edge_bundle("sign", str(big), "--dir", str(authority.folder))
    assert signed.returncode == 2 and "manifest.json is too large" in signed.stderr
    assert "2,097,152 bytes" in signed.stderr and "does not start with" not in signed.stderr
    signer = Signer(authority, tmp_path)  # someone signing it anyway, without edge-bundle's checks
    release = tmp_path / "big.edgerelease"
    release.write_bytes(signer.delivery(signer.targets(None, big, [authority.key("targets")]),
                                        authority.key("delivery"), big))
    verified = edge_bundle("verify", str(release), "--root", str(authority.metadata_dir / "1.root.json"))
    assert verified.returncode == 2 and "manifest.json is too large: 3,14" in verified.stderr, verified.stderr
    assert "Traceback" not in signed.stderr + verified.stderr
