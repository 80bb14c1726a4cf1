"""A throwaway release authority with a parts-v2 release, for the demo and the tests (never for a site).

The golden frames are synthetic conveyor scenes (core/scene/conveyor.py) drawn from a fixed seed, so the release is the
same every time; the keys are new each time, so nothing secret is ever shipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.build import build_bundle
from edge_console.core.paths import demo_model
from edge_console.core.scene.conveyor import render_scene

GOLDEN_SEED = 7000  # apart from the training (1000+), validation (2000+) and evaluation (3000+, 4000+) seeds
GOLDEN_FRAMES = 24


@dataclass(frozen=True)
class DemoRelease:
    authority: ReleaseAuthority
    bundle: Path
    release: Path
    root_json: Path


def golden_frames(folder: Path, count: int = GOLDEN_FRAMES, seed: int = GOLDEN_SEED) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image, _ = render_scene(np.random.default_rng(seed + i), width=640, height=480)
        cv2.imwrite(str(folder / f"scene-{i:03d}.png"), image)
    return folder


def make_demo_release(folder: Path, model: str = "parts-v2", line: str = "parts", version: str = "2.0.0",
                      **build_options) -> DemoRelease:
    authority = ReleaseAuthority.create(folder / "authority")
    golden = golden_frames(folder / "golden")
    bundle = build_bundle(demo_model(model), line, version, golden, folder / f"{line}-{version}.edgebundle",
                          **build_options)
    release = authority.sign(bundle, folder / f"{line}-{version}.edgerelease")
    root = folder / "root.json"
    root.write_bytes(authority.root_json())
    return DemoRelease(authority, bundle, release, root)
