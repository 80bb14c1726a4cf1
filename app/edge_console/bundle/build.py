"""`edge-bundle build`: a model, its golden frames and its model card -> one bundle file.

The golden frames are run through the model here, on the signing machine, and the detections it makes are
recorded in the manifest: on a device, the same model must produce them again (within the bundle's F1 minimum)
before it is switched on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2

from edge_console.core.detector import Detector
from edge_console.core.errors import EdgeConsoleError
from edge_console.core.release_format import SUFFIX, BundleError, GoldenFrame, manifest_for, write_bundle
from edge_console.core.versions import parse_version

GOLDEN_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_GOLDEN = 200
MIN_GOLDEN = 1


def _golden_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise BundleError(f"golden set folder not found: {folder}")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in GOLDEN_SUFFIXES and p.is_file())
    if not MIN_GOLDEN <= len(images) <= MAX_GOLDEN:
        raise BundleError(f"{folder} holds {len(images)} images (.png/.jpg); a golden set needs "
                          f"{MIN_GOLDEN} to {MAX_GOLDEN} (a few dozen frames from the real camera are right)")
    return images


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
                 progress: Callable[[int, int], None] | None = None) -> Path:
    try:
        parse_version(version)
    except ValueError as exc:
        raise BundleError(str(exc)) from None
    images = _golden_images(golden)
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
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise BundleError(f"golden image {path.name} cannot be decoded")
        name = f"golden/{i:04d}{path.suffix.lower()}"
        files[name] = path.read_bytes()
        frames.append(GoldenFrame(name, detector.detect(image).detections))
        if progress:
            progress(i + 1, len(images))
    model_info = {"name": spec.name, "model_version": spec.version, "sha256": spec.sha256,
                  "classes": list(spec.class_names), "input": {"width": spec.input_width, "height": spec.input_height},
                  "layout": detector.layout}
    manifest = manifest_for(line, version, model_info, files, frames, min_f1=min_f1, iou=iou,
                            architectures=architectures or [], min_agent_version=min_agent_version,
                            required_providers=required_providers or [],
                            latency_budget_p95_ms=latency_budget_p95_ms, description=description)
    out = out or Path.cwd() / f"{line}-{version}{SUFFIX}"
    return write_bundle(out, manifest, files)
