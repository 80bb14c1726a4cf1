"""The offline kit, end to end on this machine: built for this platform, unpacked from its tarball, checked, the
agent and the console installed from it into fresh venvs with no index reachable, the agent started from its
venv, the console's demo screenshot taken from its venv; and a kit that was tampered with is refused before
anything is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import urllib.request
import zipfile
from pathlib import Path

import cv2
import pytest

from tests.support.agent_harness import Agent
from tests.support.installing import base_python, clean_env


def test_the_kit_holds_binary_wheels_for_every_program_and_the_install_scripts(host_kit, kit_info):
    names = {p.name for p in (host_kit / "wheels").iterdir()}
    assert all(n.endswith(".whl") for n in names), "only wheels: nothing is built on the site"
    for needed in ("edge_console-", "onnxruntime-", "numpy-", "opencv_python_headless-", "aiohttp-", "zeroconf-",
                   "pyside6_essentials-", "pip-"):
        assert any(n.startswith(needed) for n in names), f"no {needed} wheel in the kit"
    assert not any(n.startswith(("opencv_python-", "pytest-", "onnx-", "torch-")) for n in names)
    with zipfile.ZipFile(next((host_kit / "wheels").glob("edge_console-*.whl"))) as wheel:
        members = wheel.namelist()
    assert "edge_console/models/parts-v2.onnx" in members and "edge_console/resources/edge-console.desktop" in members
    for script in ("install-agent.sh", "install-console.sh", "install-console.ps1"):
        path = host_kit / script
        assert os.access(path, os.X_OK) and "@VERSION@" not in path.read_text()
    assert b"\r\n" in (host_kit / "install-console.ps1").read_bytes()  # Windows PowerShell 5.1 reads CRLF best
    for script in ("install-agent.sh", "install-console.sh"):
        assert subprocess.run(["sh", "-n", str(host_kit / script)]).returncode == 0
    assert sorted(p.name for p in (host_kit / "demo").iterdir()) == ["demo-root.json", "parts-2.0.0.edgerelease"]
    assert not list(host_kit.rglob("*.key")), "no private key may ever reach a kit"
    assert kit_info["agent"] == kit_info["console"] and len(kit_info["agent"]) == 1
    assert kit_info["deb"] and (host_kit / "deb" / kit_info["deb"][0]).is_file()
    readme = (host_kit / "README.md").read_text()
    assert "install-agent.sh" in readme and "--root" in readme and "@VERSION@" not in readme


def test_the_demo_release_verifies_with_its_root(host_kit):
    from edge_console.bundle.cli import main as edge_bundle

    assert edge_bundle(["verify", str(host_kit / "demo" / "parts-2.0.0.edgerelease"),
                        "--root", str(host_kit / "demo" / "demo-root.json")]) == 0


@pytest.fixture(scope="module")
def unpacked_kit(host_kit, tmp_path_factory) -> Path:
    """The kit as a site gets it: the tarball, unpacked somewhere else (a path with a space, as USB sticks have)."""
    tar = host_kit.parent / f"{host_kit.name}.tar"
    dest = tmp_path_factory.mktemp("site") / "USB STICK"
    with tarfile.open(tar) as archive:
        archive.extractall(dest, filter="data")
    return dest / host_kit.name


def test_the_agent_installs_from_the_kit_and_serves(unpacked_kit, tmp_path):
    prefix = tmp_path / "opt edge-agent"
    install = subprocess.run(["sh", str(unpacked_kit / "install-agent.sh"), "--prefix", str(prefix)],
                             env=clean_env(PYTHON=base_python()), capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    assert "verifies" in install.stdout and "Installed:" in install.stdout
    venv = prefix / "venv"
    # the venv has the product from the kit's wheel, with the agent's dependencies and none of the console's
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
                            capture_output=True, text=True, check=True).stdout
    installed = {d["name"].lower(): d["version"] for d in json.loads(listed)}
    assert installed["edge-console"] == "0.1.0" and "onnxruntime" in installed
    assert "pyside6-essentials" not in installed and "pyqtgraph" not in installed

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    agent = Agent.from_args(["run", "--model", "parts-v2", "--source", "synthetic", "--port", "0", "--interface",
                             "127.0.0.1", "--no-advertise", "--insecure-lab-mode", "--threads", "1",
                             "--state-dir", str(tmp_path / "state")], tmp_path / "agent-logs",
                            command=[str(venv / "bin" / "edge-agent")], cwd=elsewhere, env=clean_env()).start()
    try:
        with urllib.request.urlopen(agent.url + "/v1/info", timeout=10) as r:
            info = json.load(r)
    finally:
        agent.stop()
    assert info["model"]["version"] == "2.0.0" and info["agent_version"] == "0.1.0"

    # installing again (an upgrade from a newer kit) replaces the venv and keeps a working agent
    again = subprocess.run(["sh", str(unpacked_kit / "install-agent.sh"), "--prefix", str(prefix)],
                           env=clean_env(PYTHON=base_python()), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert not (prefix / "venv.previous").exists()
    assert subprocess.run([str(venv / "bin" / "edge-agent"), "--help"], capture_output=True).returncode == 0


def test_the_console_installs_from_the_kit_and_shows_the_demo(unpacked_kit, tmp_path):
    home = tmp_path / "home"
    install = subprocess.run(["sh", str(unpacked_kit / "install-console.sh")],
                             env=clean_env(PYTHON=base_python(), HOME=str(home), XDG_DATA_HOME=str(home / "data")),
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    venv = home / "data" / "edge-console" / "venv"
    entry = (home / "data" / "applications" / "edge-console.desktop").read_text()
    assert f"Exec={venv}/bin/edge-console" in entry
    assert (home / "data" / "icons" / "hicolor" / "scalable" / "apps" / "edge-console.svg").is_file()
    assert (home / ".local" / "bin" / "edge-console").resolve() == (venv / "bin" / "edge-console").resolve()

    shot = tmp_path / "demo.png"
    demo = subprocess.run([str(venv / "bin" / "edge-console"), "--demo", "--demo-count", "1", "--screenshot",
                           str(shot), "--after", "8"], cwd=tmp_path,
                          env=clean_env(HOME=str(home), QT_QPA_PLATFORM="offscreen"),
                          capture_output=True, text=True, timeout=240)
    assert demo.returncode == 0, demo.stderr[-3000:]
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[1] >= 1000
    assert "Traceback" not in demo.stderr


def _copy_kit(kit: Path, dest: Path) -> Path:
    """A cheap copy: hard links (a test replaces a file, never writes into a shared one)."""
    shutil.copytree(kit, dest, copy_function=os.link)
    return dest


def _replace(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def _install_is_refused(kit: Path, tmp_path: Path, *options: str) -> str:
    prefix = tmp_path / "agent"
    result = subprocess.run(["sh", str(kit / "install-agent.sh"), "--prefix", str(prefix), *options],
                            env=clean_env(PYTHON=base_python()), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "KIT REFUSED" in result.stderr and "nothing was installed" in result.stderr
    assert not prefix.exists()
    return result.stderr


def test_a_kit_with_a_damaged_wheel_is_refused(host_kit, tmp_path):
    kit = _copy_kit(host_kit, tmp_path / "kit")
    wheel = next((kit / "wheels").glob("numpy-*.whl"))
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    _replace(wheel, bytes(data))
    assert wheel.name in _install_is_refused(kit, tmp_path)
    assert wheel.name in _install_is_refused(kit, tmp_path, "--deb")  # the service install checks first too


def test_a_kit_with_forged_checksums_is_refused(host_kit, tmp_path):
    kit = _copy_kit(host_kit, tmp_path / "kit")
    # an attacker's wheel with its own (correct) hash written into SHA256SUMS: only the signature can tell
    evil = next((kit / "wheels").glob("edge_console-*.whl"))
    _replace(evil, evil.read_bytes() + b"appended")
    from edge_console.bundle.kit_sums import file_sha256

    sums = [f"{file_sha256(evil)}  wheels/{evil.name}" if line.endswith(evil.name) else line
            for line in (kit / "SHA256SUMS").read_text().splitlines()]
    _replace(kit / "SHA256SUMS", ("\n".join(sums) + "\n").encode())
    assert "SHA256SUMS is not the file that was signed" in _install_is_refused(kit, tmp_path)


def test_a_kit_with_a_tampered_signature_or_another_authority_is_refused(host_kit, tmp_path):
    kit = _copy_kit(host_kit, tmp_path / "kit")
    document = json.loads((kit / "SHA256SUMS.sig").read_text())
    sig = document["signatures"][0]["sig"]
    document["signatures"][0]["sig"] = ("f" if sig[0] != "f" else "e") + sig[1:]
    _replace(kit / "SHA256SUMS.sig", json.dumps(document).encode())
    assert "not a valid signature" in _install_is_refused(kit, tmp_path)
    # the genuine kit, checked against the root of a site that trusts another authority
    assert "not a valid signature" in _install_is_refused(host_kit, tmp_path, "--root",
                                                          str(host_kit / "demo" / "demo-root.json"))
