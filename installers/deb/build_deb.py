"""Build the agent's Debian package with dpkg-deb: `edge-agent_<version>_<arch>.deb`.

    python installers/deb/build_deb.py [--arch amd64|arm64|host] [--wheels DIR] [--out dist] [--pythons 3.11,...]

What it holds, and why this way:

    /opt/edge-agent/wheels/          the agent's wheels for this architecture, CPython 3.11-3.13 (pip --no-index)
    /opt/edge-agent/lib/build-venv.sh  makes /opt/edge-agent/venv from them (the postinst runs it)
    /opt/edge-agent/VERSION
    /usr/bin/edge-agent              the agent's commands on the service's state, as its user (pair, trust-root, ...)
    /usr/lib/systemd/system/edge-agent.service, edge-agent@.service
    /etc/edge-agent/agent.toml       a conffile: dpkg keeps the site's edits on upgrade
    /etc/edge-agent/runtime/         put a device's own onnxruntime flavour here (see build-venv.sh)
    /usr/share/doc/edge-agent/       README.md, copyright

The venv is built on the device by the postinst, not shipped prebuilt: a venv is tied to the exact Python it was
made with (Debian 12 has 3.11, Ubuntu 24.04 3.12) and to its path, and this machine cannot run aarch64 Pythons.
Wheels for every supported Python make one .deb per architecture that installs on all of them, still with no
network. dpkg-deb (Debian's own, on every Debian/Ubuntu build host) rather than nfpm: one small control file and
three maintainer scripts do not need another tool.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "installers" / "kit"))
import build_kit  # noqa: E402  (installers/kit is not a package)

DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
MAINTAINER = "Edge Console release team <releases@edge-console.invalid>"


def host_arch() -> str:
    return build_kit.ARCHES[build_kit.host_platform()]


def collect_wheels(sources: list[Path], arch: str, pythons: list[str], version: str, dest: Path) -> list[str]:
    """The agent's wheels for `arch` and each Python, taken from `sources` only (pip --no-index). Returns the Pythons
    that were covered (a host-only kit has wheels for one)."""
    covered = []
    for python in pythons:
        target = build_kit.Target("agent", f"linux_{arch}", python)
        args = [sys.executable, "-m", "pip", "--isolated", "--disable-pip-version-check", "download", "--quiet",
                "--no-index", "--only-binary=:all:", "--implementation", "cp", "--python-version", python,
                "-d", str(dest)]
        for tag in target.pip_platforms():
            args += ["--platform", tag]
        for source in sources:
            args += ["--find-links", str(source)]
        args += [f"edge-console[agent]=={version}", "pip"]
        result = subprocess.run(args, capture_output=True, text=True)
        if result.returncode == 0:
            covered.append(python)
        else:
            print(f"build_deb: no agent wheels for {arch} cp{python} in {', '.join(map(str, sources))}; "
                  f"skipped:\n{result.stderr[-600:]}", file=sys.stderr)
    if not covered:
        raise SystemExit(f"build_deb: no Python covered for {arch}: build the offline kit first (make offline-kit)")
    return covered


def _control(arch: str, version: str, pythons: list[str], installed_kb: int) -> str:
    """`version` is the Debian version (upstream-revision)."""
    low, high = pythons[0], pythons[-1]
    major, minor = high.split(".")
    return f"""Package: edge-agent
Version: {version}
Architecture: {DEB_ARCH[arch]}
Maintainer: {MAINTAINER}
Installed-Size: {installed_kb}
Depends: python3 (>= {low}), python3 (<< {major}.{int(minor) + 1}), passwd
Recommends: systemd
Section: net
Priority: optional
Homepage: https://example.invalid/edge-console
Description: Edge Console device agent for edge-AI inference cameras
 Captures camera frames, runs an ONNX detection model, and serves the live
 stream, telemetry and the signed model-update API to the Edge Console on the
 local network (mDNS). Runs as the edge-agent system service, sandboxed by
 systemd, with its settings in /etc/edge-agent/agent.toml and its state in
 /var/lib/edge-agent. Installs offline: its Python wheels are in the package.
"""


COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: edge-console
Comment: The agent's venv is built from the wheels in /opt/edge-agent/wheels; each wheel carries its own licence
 in its .dist-info folder (numpy, onnxruntime, OpenCV, aiohttp, zeroconf, psutil, cryptography, tuf, ...).

Files: *
Copyright: the Edge Console authors
License: see the project's licence
"""


def build_deb(wheels: Path | list[Path], out: Path, arch: str, version: str,
              pythons: list[str] | None = None, revision: int = 1) -> Path:
    """Build edge-agent_<version>-<revision>_<debarch>.deb into `out` from the wheels in `wheels` (a folder or
    folders). `revision` numbers packagings of the same product version (Debian's revision)."""
    sources = [wheels] if isinstance(wheels, Path) else list(wheels)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edge-deb-") as tmp:
        root = Path(tmp) / "root"
        opt = root / "opt" / "edge-agent"
        (opt / "wheels").mkdir(parents=True)
        covered = collect_wheels(sources, arch, pythons or list(build_kit.PYTHONS), version, opt / "wheels")
        (opt / "lib").mkdir()
        shutil.copy2(HERE / "build-venv.sh", opt / "lib" / "build-venv.sh")
        (opt / "VERSION").write_text(version + "\n")
        (root / "usr" / "bin").mkdir(parents=True)
        shutil.copy2(HERE / "edge-agent-wrapper.sh", root / "usr" / "bin" / "edge-agent")
        units = root / "usr" / "lib" / "systemd" / "system"
        units.mkdir(parents=True)
        for unit in ("edge-agent.service", "edge-agent@.service"):
            shutil.copy2(ROOT / "installers" / "agent" / unit, units / unit)
        etc = root / "etc" / "edge-agent"
        (etc / "runtime").mkdir(parents=True)
        shutil.copy2(ROOT / "installers" / "agent" / "agent.toml", etc / "agent.toml")
        (etc / "runtime" / "README").write_text(
            "Put a device's own onnxruntime flavour here (its wheel and the wheels it needs), then run\n"
            "sudo /opt/edge-agent/lib/build-venv.sh && sudo systemctl restart edge-agent\n")
        doc = root / "usr" / "share" / "doc" / "edge-agent"
        doc.mkdir(parents=True)
        shutil.copy2(ROOT / "installers" / "README.md", doc / "README.md")
        (doc / "copyright").write_text(COPYRIGHT)
        for path in root.rglob("*"):
            executable = path.is_dir() or path.name.endswith(".sh") or path.parent.name == "bin"
            path.chmod(0o755 if executable else 0o644)

        size_kb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) // 1024 + 1
        debian = root / "DEBIAN"
        debian.mkdir()
        (debian / "control").write_text(_control(arch, f"{version}-{revision}", covered, size_kb))
        (debian / "conffiles").write_text("/etc/edge-agent/agent.toml\n/etc/edge-agent/runtime/README\n")
        for script in ("postinst", "prerm", "postrm"):
            shutil.copy2(HERE / "debian" / script, debian / script)
            (debian / script).chmod(0o755)
        debian.chmod(0o755)
        name = f"edge-agent_{version}-{revision}_{DEB_ARCH[arch]}.deb"
        # --root-owner-group: every file root:root without fakeroot. gzip: wheels are compressed already, and every
        # dpkg reads it.
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(out / name)],
                       check=True, capture_output=True)
    return out / name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="host", choices=("host", "amd64", "arm64", "x86_64", "aarch64"))
    parser.add_argument("--wheels", type=Path, action="append", help="take the wheels from these folders only (an "
                        "offline kit's wheels/); default: build the product's wheel and download the rest")
    parser.add_argument("--pythons", default=",".join(build_kit.PYTHONS))
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--prefer-cache", action="store_true", help="resolve from the local cache first")
    args = parser.parse_args(argv)
    arch = {"host": host_arch(), "amd64": "x86_64", "arm64": "aarch64"}.get(args.arch, args.arch)
    version = build_kit.project_version()
    pythons = args.pythons.split(",")
    with tempfile.TemporaryDirectory(prefix="edge-deb-wheels-") as tmp:
        wheels = args.wheels
        if not wheels:
            wheels = [Path(tmp) / "wheels"]
            wheels[0].mkdir()
            build_kit.ignore_cache_folder()
            cache = build_kit.CACHE / "wheels"
            cache.mkdir(parents=True, exist_ok=True)
            product = build_kit.build_product_wheel(wheels[0])
            constraints = build_kit.pins(Path(tmp) / "constraints.txt")
            for python in pythons:
                target = build_kit.Target("agent", f"linux_{arch}", python)
                build_kit.download(target, product, cache, constraints, args.prefer_cache, wheels[0])
        deb = build_deb(wheels, args.out, arch, version, pythons)
    print(f"build_deb: {deb} ({deb.stat().st_size / 2**20:.0f} MB)", file=sys.stderr)
    print(deb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
