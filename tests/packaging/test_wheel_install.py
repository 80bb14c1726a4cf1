"""The built wheel, installed for real (not editable), finds its models and resources from outside the checkout:
once into a fresh virtual environment, once with `pip install --user` into a temporary user base.

Why the dependencies come from this test run's own environment: installing numpy, onnxruntime, OpenCV and Qt
again would download hundreds of MB per run. The fresh environment gets only the edge-console wheel; a `.pth`
file (or PYTHONPATH for --user) makes the third-party packages of the running environment importable after it.
That environment has edge_console only as an editable finder, which a plain path entry does not activate, so
every `edge_console` import below comes from the installed wheel (the tests check `__file__`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import urllib.request
from pathlib import Path

import cv2
import pytest

from tests.support.agent_harness import Agent

DEPENDENCIES = sysconfig.get_paths()["purelib"]  # the running environment's site-packages


def _pip_install(python: str, *args: str, env: dict | None = None) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
                    "--no-index", *args], check=True, capture_output=True, timeout=300, env=env)


def _fresh_venv(tmp_path: Path, wheel: Path) -> tuple[Path, str, dict]:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    _pip_install(str(python), str(wheel))
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "zz-test-dependencies.pth").write_text(DEPENDENCIES + "\n")
    return venv / "bin", str(python), {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _user_install(tmp_path: Path, wheel: Path) -> tuple[Path, str, dict]:
    base_python = getattr(sys, "_base_executable", sys.executable)  # --user is refused inside a venv
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONNOUSERSITE")}
    env.update(PYTHONUSERBASE=str(tmp_path / "userbase"), PYTHONPATH=DEPENDENCIES)
    _pip_install(base_python, "--user", "--no-warn-script-location", str(wheel), env=env)
    return tmp_path / "userbase" / "bin", base_python, env


@pytest.mark.parametrize("install", [_fresh_venv, _user_install], ids=["venv", "user"])
def test_installed_wheel_runs_the_agent_and_the_demo_from_outside_the_checkout(wheel, tmp_path, install,
                                                                               parts_v2):
    bin_dir, python, env = install(tmp_path, wheel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(bin_dir / "edge-agent"), "--help"], cwd=elsewhere, env=env, capture_output=True,
                           text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    origin = subprocess.run([python, "-c", "import edge_console.core.paths as p; print(p.__file__); "
                             "print(p.demo_model('parts-v2'))"], cwd=elsewhere, env=env, capture_output=True,
                            text=True, timeout=60)
    module_file, model_file = origin.stdout.split()
    assert module_file.startswith(str(tmp_path)), f"edge_console imported from {module_file}, not the wheel"
    assert model_file.startswith(str(tmp_path)) and Path(model_file).read_bytes() == parts_v2.read_bytes()

    # Lab mode: this checks the installed files and the model by name; trust is tested in tests/agent/test_trust.py.
    agent = Agent.from_args(["run", "--model", "parts-v2", "--port", "0", "--interface", "127.0.0.1",
                             "--no-advertise", "--threads", "1", "--state-dir", str(tmp_path / "state"),
                             "--insecure-lab-mode"], tmp_path / "agent-logs",
                            command=[str(bin_dir / "edge-agent")], cwd=elsewhere, env=env).start()
    try:
        with urllib.request.urlopen(agent.url + "/v1/info", timeout=10) as r:
            info = json.load(r)
    finally:
        agent.stop()
    assert info["model"]["version"] == "2.0.0" and info["model"]["file"] == "parts-v2.onnx"
    assert info["agent_version"] == "0.1.0"

    shot = tmp_path / "demo.png"
    demo = subprocess.run([str(bin_dir / "edge-console"), "--demo", "--demo-count", "1", "--screenshot", str(shot),
                           "--after", "8"], cwd=elsewhere, env={**env, "QT_QPA_PLATFORM": "offscreen"},
                          capture_output=True, text=True, timeout=180)
    assert demo.returncode == 0, demo.stderr[-2000:]
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[1] >= 1000
    assert "fleet stopped" not in demo.stderr and "Traceback" not in demo.stderr
