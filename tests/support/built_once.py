"""What the tests build once per run (once per xdist worker that needs it) and only read afterwards: session-scoped
fixtures, made available to every test folder by tests/conftest.py.

- `update_kit`: a release authority, eight golden frames and a good parts 2.0.0 bundle, for the device-side update
  tests (tests/agent/test_update*.py). Tests sign their own releases with it; each signing only moves the
  authority's metadata versions on, which each fresh device sees from where they are.
- `wheel`: edge-console built as a wheel, offline, from this checkout (the packaging tests install it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_console.bundle.authority import ReleaseAuthority
from edge_console.bundle.demo import golden_frames
from edge_console.core.paths import demo_model
from tests.support.agent_harness import ROOT
from tests.support.updates import build


@pytest.fixture(scope="session")
def update_kit(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("release-kit")
    authority = ReleaseAuthority.create(base / "authority")
    golden = golden_frames(base / "golden", count=8)
    good = build(demo_model("parts-v2"), "parts", "2.0.0", golden, base)
    return {"base": base, "authority": authority, "golden": golden, "good": good}


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(out), str(ROOT)], check=True, capture_output=True, timeout=300)
    return next(out.glob("edge_console-*.whl"))
