"""The console as a one-folder application (PyInstaller), built as `make console-app` builds it, started from
another folder with a bare environment, offscreen: its demo (whose simulator and agents the frozen program runs
itself, `-m edge_console.agent.cli`) draws a device's picture in the screenshot.

The build venv lives in .cache/console-app (kept between runs) and installs from the offline kit's wheel cache,
so a second run downloads nothing; the PyInstaller build itself takes about a minute on two cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from tests.support.agent_harness import ROOT

BUILD_APP = ROOT / "installers" / "console-app" / "build_app.py"


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("console-app")
    result = subprocess.run([sys.executable, str(BUILD_APP), "--out", str(out), "--prefer-cache", "--no-archive"],
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-4000:]
    return out / "edge-console"


def _bare_env(home: Path, **extra: str) -> dict:
    # no PATH to any Python, no PYTHONPATH, no venv: the program must carry everything itself
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", **extra}


def test_the_folder_holds_the_program_its_package_data_and_desktop_entry(app):
    assert os.access(app / "edge-console", os.X_OK)
    internal = app / "_internal"
    for data in ("edge_console/models/parts-v2.onnx", "edge_console/models/parts-v1.onnx",
                 "edge_console/resources/console.qss", "edge_console/resources/icons/edge-console.svg"):
        assert (internal / data).is_file(), data
    assert "Exec=edge-console" in (app / "edge-console.desktop").read_text()
    assert (app / "edge-console.svg").is_file() and os.access(app / "install-desktop-entry.sh", os.X_OK)
    assert not list(internal.glob("pytest*")) and not (internal / "torch").exists()


def test_the_program_runs_the_agent_modules_and_nothing_else(app, tmp_path):
    agent = subprocess.run([str(app / "edge-console"), "-m", "edge_console.agent.cli", "--help"], cwd=tmp_path,
                           env=_bare_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert agent.returncode == 0 and "simulate" in agent.stdout, agent.stderr
    other = subprocess.run([str(app / "edge-console"), "-m", "http.server"], cwd=tmp_path, env=_bare_env(tmp_path),
                           capture_output=True, text=True, timeout=120)
    assert other.returncode == 2 and "own modules only" in other.stderr


def test_the_built_program_shows_the_demo_offscreen(app, tmp_path):
    shot = tmp_path / "demo.png"
    demo = subprocess.run([str(app / "edge-console"), "--demo", "--demo-count", "1", "--screenshot", str(shot),
                           "--after", "8"], cwd=tmp_path, env=_bare_env(tmp_path, QT_QPA_PLATFORM="offscreen"),
                          capture_output=True, text=True, timeout=240)
    assert demo.returncode == 0, demo.stderr[-3000:]
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (900, 1440)
    assert "Traceback" not in demo.stderr
    # the device's camera picture (a green conveyor) is in the grid: the simulator ran inside the frozen program
    green = (image[:, :, 1].astype(int) - image[:, :, 2].astype(int) > 40) & (image[:, :, 1] > 80)
    assert green.sum() > 20_000, f"only {green.sum()} green pixels: no camera picture in the demo"
