"""The agent's Debian package, tested without touching this machine: its control data, files and maintainer
scripts; its systemd units through `systemd-analyze verify` (and the sandbox's exposure score); installed,
upgraded with an edited conffile, given a device's own runtime wheel, and purged in a temporary root with
`dpkg --root ... --force-script-chrootless` (the scripts honour DPKG_ROOT and never touch the running system).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.agent_harness import ROOT
from tests.support.installing import clean_env

sys.path.insert(0, str(ROOT / "installers" / "deb"))
from build_deb import build_deb  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg (Debian or Ubuntu)")


@pytest.fixture(scope="module")
def deb(host_kit, kit_info) -> Path:
    return host_kit / "deb" / kit_info["deb"][0]


def _field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "--field", str(deb), name], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_control_files_and_maintainer_scripts(deb, tmp_path):
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    assert _field(deb, "Package") == "edge-agent" and _field(deb, "Version") == "0.1.0-1"
    assert _field(deb, "Architecture") == arch
    assert "python3 (>= 3.11)" in _field(deb, "Depends")
    contents = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    for path in ("./usr/lib/systemd/system/edge-agent.service", "./usr/lib/systemd/system/edge-agent@.service",
                 "./etc/edge-agent/agent.toml", "./opt/edge-agent/lib/build-venv.sh", "./usr/bin/edge-agent",
                 "./usr/share/doc/edge-agent/copyright"):
        assert path in contents, path
    assert re.search(r"\./opt/edge-agent/wheels/onnxruntime-.*manylinux.*\.whl", contents)
    assert "pyside6" not in contents.lower(), "no Qt on a device"
    assert all(" root/root " in line for line in contents.splitlines()), "every file root-owned"
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "--control", str(deb), str(control)], check=True)
    assert (control / "conffiles").read_text().split() == ["/etc/edge-agent/agent.toml",
                                                            "/etc/edge-agent/runtime/README"]
    for script in ("postinst", "prerm", "postrm"):
        path = control / script
        assert path.stat().st_mode & 0o111 and path.read_text().startswith("#!/bin/sh")
        assert subprocess.run(["sh", "-n", str(path)]).returncode == 0
        assert "DPKG_ROOT" in path.read_text()
    if shutil.which("shellcheck"):
        checked = subprocess.run(["shellcheck", "-s", "sh", *map(str, control.glob("p*")),
                                  str(ROOT / "installers" / "deb" / "build-venv.sh"),
                                  str(ROOT / "installers" / "deb" / "edge-agent-wrapper.sh"),
                                  str(ROOT / "installers" / "kit" / "install-agent.sh"),
                                  str(ROOT / "installers" / "kit" / "install-console.sh")],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout


def _dpkg(root: Path, *args: str) -> subprocess.CompletedProcess:
    # chrootless: dpkg runs the scripts here with DPKG_ROOT set; --force-depends: the temporary root has no python3
    # package (the scripts use this machine's Python)
    return subprocess.run(["dpkg", f"--root={root}", "--force-script-chrootless", "--force-not-root",
                           "--force-depends", "--force-confold", f"--log={root}/var/log/dpkg.log", *args],
                          capture_output=True, text=True, timeout=600, env=clean_env())


@pytest.fixture(scope="module")
def target_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("device") / "root"
    for folder in ("var/lib/dpkg/updates", "var/lib/dpkg/info", "var/log", "etc"):
        (root / folder).mkdir(parents=True)
    (root / "var/lib/dpkg/status").touch()
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc/group").write_text("root:x:0:\nvideo:x:44:\n")
    (root / "etc/gshadow").write_text("root:*::\nvideo:!::\n")
    return root


def test_install_upgrade_runtime_flavour_and_purge_in_a_temporary_root(deb, host_kit, target_root, tmp_path):
    root = target_root
    first = _dpkg(root, "-i", str(deb))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "venv ready" in first.stdout and "CPU onnxruntime" in first.stdout
    passwd = (root / "etc/passwd").read_text()
    assert re.search(r"^edge-agent:x:\d+:\d+:[^:]*:/var/lib/edge-agent:/usr/sbin/nologin$", passwd, re.M)
    assert re.search(r"^video:x:44:edge-agent$", (root / "etc/group").read_text(), re.M)
    assert (root / "var/lib/edge-agent").is_dir()  # before the first start: `sudo edge-agent pair` works at once
    venv = root / "opt/edge-agent/venv"
    assert subprocess.run([str(venv / "bin/edge-agent"), "--help"], capture_output=True).returncode == 0
    probe = "import onnxruntime, cv2, aiohttp, zeroconf, edge_console.agent.serve; print(onnxruntime.__file__)"
    imported = subprocess.run([str(venv / "bin/python"), "-c", probe], capture_output=True, text=True)
    assert imported.returncode == 0 and imported.stdout.startswith(str(venv)), imported.stderr
    wants = root / "etc/systemd/system/multi-user.target.wants/edge-agent.service"
    if shutil.which("systemctl"):
        assert wants.is_symlink() and str(wants.readlink()).endswith("/edge-agent.service")

    # the site edits its config; an upgrade keeps it (a conffile) and rebuilds the venv
    config = root / "etc/edge-agent/agent.toml"
    config.write_text(config.read_text().replace('source = "0"', 'source = "rtsp://cam.local/stream1"'))
    upgrade = build_deb(host_kit / "wheels", tmp_path / "deb", deb.name.split("_")[2].removesuffix(".deb")
                        .replace("amd64", "x86_64").replace("arm64", "aarch64"), "0.1.0",
                        [f"{sys.version_info.major}.{sys.version_info.minor}"], revision=2)
    second = _dpkg(root, "-i", str(upgrade))
    assert second.returncode == 0, second.stdout + second.stderr
    assert 'source = "rtsp://cam.local/stream1"' in config.read_text()
    assert "Version: 0.1.0-2" in (root / "var/lib/dpkg/status").read_text()
    assert not (root / "opt/edge-agent/venv.previous").exists()

    # a device's own runtime: a broken wheel leaves the working venv in place; a good one replaces the CPU extra
    build_venv = root / "opt/edge-agent/lib/build-venv.sh"
    runtime = root / "etc/edge-agent/runtime"
    (runtime / "broken-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    failed = subprocess.run([str(build_venv)], env=clean_env(DPKG_ROOT=str(root)), capture_output=True, text=True,
                            timeout=300)
    assert failed.returncode != 0 and "kept the previous venv" in failed.stderr
    assert subprocess.run([str(venv / "bin/edge-agent"), "--help"], capture_output=True).returncode == 0
    (runtime / "broken-1.0-py3-none-any.whl").unlink()
    shutil.copy2(next((host_kit / "wheels").glob("onnxruntime-*.whl")), runtime)
    flavour = subprocess.run([str(build_venv)], env=clean_env(DPKG_ROOT=str(root)), capture_output=True, text=True,
                             timeout=300)
    assert flavour.returncode == 0 and "onnxruntime from" in flavour.stdout, flavour.stderr

    purge = _dpkg(root, "--purge", "edge-agent")
    assert purge.returncode == 0, purge.stdout + purge.stderr
    for gone in ("opt/edge-agent", "etc/edge-agent", "var/lib/edge-agent", "usr/lib/systemd/system/edge-agent.service"):
        assert not (root / gone).exists(), gone
    assert not wants.is_symlink()


def _systemd_version() -> int:
    out = subprocess.run(["systemd-analyze", "--version"], capture_output=True, text=True).stdout
    return int(re.search(r"systemd (\d+)", out).group(1))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (Debian: systemd)")
def test_the_units_verify_and_their_sandbox_scores_well(deb, tmp_path):
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    # systemd's own units (targets) beside ours, so `verify` can resolve the dependencies; and the program that
    # ExecStart names, as the postinst would make it
    units = root / "usr/lib/systemd/system"
    for source in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if source.is_dir():
            subprocess.run(["cp", "-an", f"{source}/.", str(units)], check=True)
    program = root / "opt/edge-agent/venv/bin/edge-agent"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    shutil.copy2(root / "etc/edge-agent/agent.toml", root / "etc/edge-agent/cam1.toml")
    # keys newer than this systemd are reported and ignored (RestartSteps and RestartMaxDelaySec need 254)
    tolerated = re.compile(r"Unknown key '?(RestartSteps|RestartMaxDelaySec)'? in section \[?Service\]?, ignoring")
    for unit in ("edge-agent.service", "edge-agent@cam1.service"):
        result = subprocess.run(["systemd-analyze", "verify", f"--root={root}", unit], capture_output=True, text=True)
        problems = [line for line in (result.stdout + result.stderr).splitlines()
                    if line.strip() and not (tolerated.search(line) and _systemd_version() < 254)]
        assert result.returncode == 0 and not problems, "\n".join(problems)
    security = subprocess.run(["systemd-analyze", "security", "--offline=true", f"--root={root}",
                               "edge-agent.service"], capture_output=True, text=True)
    score = re.search(r"Overall exposure level for edge-agent.service: ([\d.]+)", security.stdout)
    assert score and float(score.group(1)) <= 3.0, security.stdout[-1500:]
    unit = (units / "edge-agent.service").read_text()
    for setting in ("Type=notify", "WatchdogSec=", "User=edge-agent", "SupplementaryGroups=video",
                    "ProtectSystem=strict", "StateDirectory=edge-agent", "NoNewPrivileges=true", "Restart=always",
                    "LimitNOFILE=4096"):
        assert setting in unit, setting
