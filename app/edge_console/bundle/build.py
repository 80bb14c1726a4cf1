"""`edge-bundle build`: a model, its golden frames and its model card -> one bundle file.

The golden frames are run through the model here, on the signing machine, and the detections it makes are
recorded in the manifest: on a device, the same model must produce them again (within the bundle's F1 minimum)
before it is switched on.

Golden frames are images (.png, .jpg) or frames saved from a device by `edge-console compare --save-frames DIR`
(.edgeframe: the device's very pixels, read with core/frame_file.py), in any mix. A saved frame is stored in the
bundle as a PNG, losslessly; the detections it carries are the device's model's and are not used: the model being
built finds its own on those pixels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edge_console.core.detection.detector import Detector
from edge_console.core.detection.onnx_shape import not_onnx_message, onnx_file_problem
from edge_console.core.detection.record import Detection
from edge_console.core.errors import EdgeConsoleError
from edge_console.core.frame_file import SUFFIX as SAVED_FRAME_SUFFIX
from edge_console.core.frame_file import read_saved_frame
from edge_console.core.protocol import ProtocolError
from edge_console.core.releases.file_format import (
    MAX_MANIFEST_BYTES,
    SUFFIX,
    BundleError,
    BundleManifest,
    GoldenFrame,
    manifest_bytes,
    manifest_for,
    write_bundle,
)
from edge_console.core.versions import parse_version

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
GOLDEN_SUFFIXES = (*IMAGE_SUFFIXES, SAVED_FRAME_SUFFIX)
MAX_GOLDEN = 200
MIN_GOLDEN = 1


def _golden_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise BundleError(f"golden set folder not found: {folder}")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in GOLDEN_SUFFIXES and p.is_file())
    if not MIN_GOLDEN <= len(images) <= MAX_GOLDEN:
        raise BundleError(f"{folder} holds {len(images)} golden frames (.png/.jpg images, or .edgeframe files saved "
                          f"by `edge-console compare --save-frames`); a golden set needs {MIN_GOLDEN} to "
                          f"{MAX_GOLDEN} (a few dozen frames from the real camera are right)")
    return images


def _golden_frame(path: Path) -> tuple[np.ndarray, str, bytes]:
    """The pixels of one golden frame, the suffix it is stored under, and the bytes stored: an image as it is, a
    saved device frame as a PNG of its pixels (lossless)."""
    if path.suffix.lower() == SAVED_FRAME_SUFFIX:
        try:
            _header, image = read_saved_frame(path)
        except (OSError, ProtocolError) as exc:
            raise BundleError(f"golden frame {path.name} is not a frame saved from a device (edge-console compare "
                              f"--save-frames): {exc}. Remove it from {path.parent}, or save it again") from None
        ok, png = cv2.imencode(".png", image)
        if not ok:
            raise BundleError(f"golden frame {path.name} cannot be stored as a PNG")
        return image, ".png", png.tobytes()
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise BundleError(f"golden image {path.name} cannot be decoded: it is not a PNG or JPEG image. Remove it "
                          f"from {path.parent}, or export it again")
    return image, path.suffix.lower(), path.read_bytes()


def _recorded(detection: Detection) -> Detection:
    """A golden detection as the manifest keeps it: boxes to a tenth of a pixel, confidence to a thousandth. Finer
    means nothing to an IoU match, and it is most of the manifest's size (a device reads at most 2 MiB of it)."""
    return dataclasses.replace(detection, x1=round(detection.x1, 1), y1=round(detection.y1, 1),
                               x2=round(detection.x2, 1), y2=round(detection.y2, 1),
                               confidence=round(detection.confidence, 3))


def _check_manifest_size(manifest: BundleManifest) -> None:
    """Refuse here what `sign` and every device would refuse, saying how many golden frames would fit."""
    size = len(manifest_bytes(manifest))
    if size <= MAX_MANIFEST_BYTES:
        return
    frames = len(manifest.golden)
    detections = sum(len(g.detections) for g in manifest.golden)
    base = len(manifest_bytes(dataclasses.replace(manifest, golden=[], members={
        k: v for k, v in manifest.members.items() if not k.startswith("golden/")})))
    per_frame = (size - base) / frames
    fit = max(0, int((MAX_MANIFEST_BYTES - base) // per_frame))
    raise BundleError(
        f"the manifest for {frames} golden frames with {detections} detections would be {size:,} bytes, and a "
        f"device accepts at most {MAX_MANIFEST_BYTES:,} (2 MiB): about {fit} frames like these fit (about "
        f"{fit * detections // frames} detections, {per_frame * frames / max(detections, 1):.0f} bytes each). "
        "Use fewer golden frames, or frames with fewer objects in them")


def _model_card(model: Path, card: Path | None, line: str, version: str) -> bytes:
    if card is not None:
        return card.read_bytes()
    beside = model.with_name("MODEL_CARD.md")
    if beside.exists():
        return beside.read_bytes()
    return (f"# {line} {version}\n\nNo model card was given when this bundle was built "
            "(`edge-bundle build --card MODEL_CARD.md`).\n").encode()


def build_bundle(model: Path, line: str, version: str, golden: Path, out: Path | None = None, *,
                 card: Path | None = None, latency_budget_p95_ms: float | None = None, min_f1: float = 0.95,
                 iou: float = 0.5, architectures: list[str] | None = None, min_agent_version: str = "0",
                 required_providers: list[str] | None = None, description: str = "",
                 progress: Callable[[int, int, str], None] | None = None) -> Path:
    """Write the bundle; `progress(done, total, file name)` after each golden frame."""
    try:
        parse_version(version)
    except ValueError as exc:
        raise BundleError(str(exc)) from None
    images = _golden_images(golden)
    if not Path(model).is_file():
        raise BundleError(f"model file not found: {model}")
    if problem := onnx_file_problem(model):
        raise BundleError(not_onnx_message(str(model), problem))
    try:
        detector = Detector(model)
    except EdgeConsoleError as exc:
        raise BundleError(f"the model cannot be used: {exc}") from None
    spec = detector.spec
    if not spec.class_names:
        raise BundleError(f"{model} has no class names in its metadata; a device could not tell what it detects")
    files: dict[str, bytes] = {"model.onnx": model.read_bytes(),
                               "MODEL_CARD.md": _model_card(model, card, line, version)}
    frames = []
    for i, path in enumerate(images):
        image, suffix, stored = _golden_frame(path)
        name = f"golden/{i:04d}{suffix}"
        files[name] = stored
        frames.append(GoldenFrame(name, [_recorded(d) for d in detector.detect(image).detections]))
        if progress:
            progress(i + 1, len(images), path.name)
    model_info = {"name": spec.name, "model_version": spec.version, "sha256": spec.sha256,
                  "classes": list(spec.class_names), "input": {"width": spec.input_width, "height": spec.input_height},
                  "layout": detector.layout}
    manifest = manifest_for(line, version, model_info, files, frames, min_f1=min_f1, iou=iou,
                            architectures=architectures or [], min_agent_version=min_agent_version,
                            required_providers=required_providers or [],
                            latency_budget_p95_ms=latency_budget_p95_ms, description=description)
    _check_manifest_size(manifest)
    out = out or Path.cwd() / f"{line}-{version}{SUFFIX}"
    return write_bundle(out, manifest, files)
