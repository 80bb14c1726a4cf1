"""Build the offline kit: everything a site needs on a USB stick, checked before anything is installed.

    python installers/kit/build_kit.py [--platforms all|host] [--authority DIR] [--out dist]

makes dist/edge-console-kit-<version>/ and dist/edge-console-kit-<version>.tar:

    README.md              for the site: what to run, how the kit is checked
    install-agent.sh       a device: checks the kit, then a venv with `edge-console[agent]` (pip --no-index)
    install-console.sh     a Linux laptop: the same with `edge-console[console]`, plus a menu entry
    install-console.ps1    a Windows laptop
    verify_kit.py          the kit's check, standard library only (edge_console/bundle/kit_sums.py, copied)
    KIT.json               version, platforms and Pythons the wheels are for, who signed
    wheels/                the product's wheel and every dependency, binary only: the agent for Linux x86_64 and
                           aarch64, the console for Linux x86_64 and Windows x86_64, each for CPython 3.11-3.13;
                           pip's own wheel (venvs are made --without-pip, so a device needs no python3-venv)
    agent/                 systemd units and an example agent.toml, for a device installed without the .deb
    deb/                   edge-agent_<version>_<arch>.deb for Debian/Ubuntu devices (with --deb)
    demo/                  a signed demo release (parts 2.0.0) and the demo authority's root.json
    trust/                 the signing authority's public root chain
    SHA256SUMS, SHA256SUMS.sig

`--platforms host` builds the kit for this machine's platform and Python only (the tests). Downloads are kept in
.cache/offline-kit/wheels, so a second build fetches nothing it already has; `--prefer-cache` first tries to
resolve from that cache alone (no index at all) and goes to the index only when something is missing.
Versions are pinned to the ones installed in the running environment (what the tests ran against) unless
`--no-pin`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CACHE = ROOT / ".cache" / "offline-kit"
PYTHONS = ("3.11", "3.12", "3.13")
# Oldest glibc the Linux wheels may need. Devices: Debian 11 / Ubuntu 20.04 era and newer. The console's Qt
# (PySide6 6.8+) is built for glibc 2.34 and newer (Ubuntu 22.04, Debian 12).
GLIBC = {"agent": 31, "console": 34}
ARCHES = {"linux_x86_64": "x86_64", "linux_aarch64": "aarch64"}


@dataclass(frozen=True)
class Target:
    program: str  # "agent" or "console": which extra
    platform: str  # linux_x86_64, linux_aarch64, win_amd64
    python: str  # "3.12"

    @property
    def extra(self) -> str:
        return self.program

    def pip_platforms(self) -> list[str]:
        if self.platform == "win_amd64":
            return ["win_amd64"]
        arch = ARCHES[self.platform]
        tags = [f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC[self.program], 16, -1)]
        return [*tags, f"manylinux2014_{arch}"]  # pip adds manylinux2010 and manylinux1 for x86_64 itself

    def __str__(self) -> str:
        return f"{self.program} {self.platform} cp{self.python.replace('.', '')}"


def host_platform() -> str:
    machine = platform.machine().lower()
    if sys.platform.startswith("linux") and machine in ("x86_64", "amd64"):
        return "linux_x86_64"
    if sys.platform.startswith("linux") and machine in ("aarch64", "arm64"):
        return "linux_aarch64"
    if sys.platform == "win32":
        return "win_amd64"
    raise SystemExit(f"build_kit: no kit for this machine ({sys.platform} {machine}); build on Linux x86_64")


def targets(which: str) -> list[Target]:
    if which == "host":
        here = f"{sys.version_info.major}.{sys.version_info.minor}"
        return [Target("agent", host_platform(), here), Target("console", host_platform(), here)]
    agent = [Target("agent", p, py) for p in ("linux_x86_64", "linux_aarch64") for py in PYTHONS]
    console = [Target("console", p, py) for p in ("linux_x86_64", "win_amd64") for py in PYTHONS]
    return agent + console


def project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def say(text: str) -> None:
    print(f"build_kit: {text}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kwargs)


def pip(*args: str, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess:
    # --isolated: the build reads no pip.conf and no PIP_* variables (a machine's own find-links or extra index
    # must never leak wheels into a kit that then seems complete).
    return subprocess.run([sys.executable, "-m", "pip", "--isolated", "--disable-pip-version-check", *args],
                          check=check, text=True, capture_output=capture)


def build_product_wheel(dest: Path) -> Path:
    """The product's wheel, built from a clean copy of the sources (a stale build/ folder can never leak in)."""
    with tempfile.TemporaryDirectory(prefix="edge-kit-src-") as tmp:
        src = Path(tmp) / "src"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "training")
        for name in ("app", "models", "resources"):
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, src / name)
        pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dest), str(src))
    wheels = sorted(dest.glob("edge_console-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"build_kit: expected one edge_console wheel in {dest}, found {wheels}")
    return wheels[0]


def pins(path: Path) -> Path:
    """A constraints file: the versions installed in this environment (what the test suite ran against)."""
    frozen = pip("freeze", "--exclude-editable", "--all", capture=True).stdout
    lines = [line for line in frozen.splitlines() if "==" in line and not line.startswith(("edge-console", "pip=="))]
    path.write_text("\n".join(lines) + "\n")
    return path


def download(target: Target, product: Path, cache: Path, constraints: Path | None, prefer_cache: bool,
             dest: Path) -> list[Path]:
    """Every wheel `target` needs, into `dest` (and the cache). Returns the files."""
    with tempfile.TemporaryDirectory(prefix="edge-kit-dl-") as tmp:
        args = ["download", "--quiet", "--only-binary=:all:", "--implementation", "cp",
                "--python-version", target.python, "-d", tmp, "--find-links", str(cache),
                "--find-links", str(product.parent)]
        for tag in target.pip_platforms():
            args += ["--platform", tag]
        if constraints:
            args += ["-c", str(constraints)]
        args += [f"{product}[{target.extra}]", "pip"]
        done = False
        if prefer_cache:
            done = pip(*args, "--no-index", capture=True, check=False).returncode == 0
        if not done:
            result = pip(*args, capture=True, check=False)
            if result.returncode != 0:
                raise SystemExit(f"build_kit: cannot collect the wheels for {target}:\n{result.stderr[-3000:]}")
        files = sorted(Path(tmp).glob("*.whl"))
        for f in files:
            # never the product's own wheel in the cache: the same version number may hold different code
            for folder in (dest,) if f.name.startswith("edge_console-") else (cache, dest):
                if not (folder / f.name).exists():
                    shutil.copy2(f, folder / f.name)
        return [dest / f.name for f in files]


def check_resolves(target: Target, wheels: Path, version: str) -> None:
    """The site's own command, dry-run for `target`: `pip install --no-index --find-links wheels/` must find every
    wheel in the kit alone (a wheel that only the build machine's cache had would fail here, not on the site)."""
    with tempfile.TemporaryDirectory(prefix="edge-kit-check-") as tmp:
        args = ["install", "--dry-run", "--quiet", "--no-index", "--find-links", str(wheels), "--only-binary=:all:",
                "--implementation", "cp", "--python-version", target.python, "--target", tmp]
        for tag in target.pip_platforms():
            args += ["--platform", tag]
        result = pip(*args, f"edge-console[{target.extra}]=={version}", "pip", capture=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"build_kit: the kit cannot install {target} by itself:\n{result.stderr[-3000:]}")


def copy_installers(kit: Path, version: str) -> None:
    for name in ("install-agent.sh", "install-console.sh", "install-console.ps1"):
        text = (HERE / name).read_text().replace("@VERSION@", version)
        (kit / name).write_text(text, newline="\r\n" if name.endswith(".ps1") else "\n")
        (kit / name).chmod(0o755)
    (kit / "README.md").write_text((HERE / "README-site.md").read_text().replace("@VERSION@", version))
    shutil.copy2(ROOT / "app" / "edge_console" / "bundle" / "kit_sums.py", kit / "verify_kit.py")
    agent = kit / "agent"
    agent.mkdir()
    for name in ("edge-agent.service", "edge-agent@.service", "agent.toml"):
        shutil.copy2(ROOT / "installers" / "agent" / name, agent / name)


def demo_release(kit: Path) -> None:
    from edge_console.bundle.demo import make_demo_release

    with tempfile.TemporaryDirectory(prefix="edge-kit-demo-") as tmp:
        demo = make_demo_release(Path(tmp))  # a throwaway authority: its private keys stay in tmp and are deleted
        (kit / "demo").mkdir()
        shutil.copy2(demo.release, kit / "demo" / demo.release.name)
        shutil.copy2(demo.root_json, kit / "demo" / "demo-root.json")


def development_authority(folder: Path):
    from edge_console.bundle.authority import ReleaseAuthority

    if not (folder / "metadata" / "root.json").exists():
        ReleaseAuthority.create(folder)
    return ReleaseAuthority(folder)


def ignore_cache_folder() -> None:
    # .cache/ is the project's local cache: it must never be committed, whatever .gitignore says.
    marker = ROOT / ".cache" / ".gitignore"
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("# made by installers/kit/build_kit.py: nothing here is ever committed\n*\n")


def write_tar(kit: Path) -> Path:
    out = kit.parent / f"{kit.name}.tar"
    tmp = out.with_name(f".{out.name}.partial")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(kit, arcname=kit.name)  # wheels are compressed already: a plain tar, quick to make and to unpack
    os.replace(tmp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platforms", choices=("all", "host"), default="all")
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--authority", type=Path, help="the release authority to sign SHA256SUMS with (its targets "
                        "key); default: a development authority in .cache/offline-kit (never for a site)")
    parser.add_argument("--passphrase", action="store_true", help="the authority's keys are encrypted "
                        "(EDGE_BUNDLE_PASSPHRASE or asked)")
    parser.add_argument("--deb", action="store_true", help="also build the agent's .deb for each Linux arch")
    parser.add_argument("--no-tar", action="store_true")
    parser.add_argument("--no-pin", action="store_true", help="newest versions, not the ones installed here")
    parser.add_argument("--prefer-cache", action="store_true", help="resolve from the local cache first")
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args(argv)

    version = project_version()
    name = f"edge-console-kit-{version}" + ("-host" if args.platforms == "host" else "")
    kit = args.out / name
    if kit.exists():
        shutil.rmtree(kit)
    (kit / "wheels").mkdir(parents=True)
    ignore_cache_folder()
    cache = args.cache / "wheels"
    cache.mkdir(parents=True, exist_ok=True)

    say(f"building {kit}")
    product = build_product_wheel(kit / "wheels")
    constraints = None if args.no_pin else pins(kit.parent / f".{name}.constraints.txt")
    chosen = targets(args.platforms)
    for target in chosen:
        files = download(target, product, cache, constraints, args.prefer_cache, kit / "wheels")
        say(f"{target}: {len(files)} wheels")
    if constraints:
        constraints.unlink()
    for target in chosen:
        check_resolves(target, kit / "wheels", version)
    say(f"every target installs from the kit's wheels alone ({len(chosen)} checked with pip --no-index --dry-run)")
    copy_installers(kit, version)
    demo_release(kit)

    debs = []
    if args.deb:
        sys.path.insert(0, str(ROOT / "installers" / "deb"))
        from build_deb import build_deb

        for arch in sorted({t.platform for t in chosen if t.program == "agent"}):
            pythons = sorted({t.python for t in chosen if t.program == "agent" and t.platform == arch})
            debs.append(build_deb(kit / "wheels", kit / "deb", ARCHES[arch], version, pythons).name)

    if args.authority:
        from edge_console.bundle.authority import ReleaseAuthority
        from edge_console.bundle.cli import _passphrase

        authority = ReleaseAuthority(args.authority, _passphrase(args))
        signer = f"release authority {args.authority.resolve()}"
    else:
        authority = development_authority(args.cache / "dev-authority")
        signer = f"development authority {args.cache / 'dev-authority'} (made on the build machine: not for a site)"
        say("WARNING: signed with a development authority. For a site: make offline-kit KIT_AUTHORITY=/path/to/authority")
    info = {"name": name, "version": version, "signed_by": signer,
            "built": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "agent": sorted({f"{t.platform} cp{t.python.replace('.', '')}" for t in chosen if t.program == "agent"}),
            "console": sorted({f"{t.platform} cp{t.python.replace('.', '')}" for t in chosen if t.program == "console"}),
            "glibc_min": {k: f"2.{v}" for k, v in GLIBC.items()}, "deb": debs}
    (kit / "KIT.json").write_text(json.dumps(info, indent=1) + "\n")

    from edge_console.bundle.kit_sums import sign_kit

    signed = sign_kit(kit, authority, name)
    say(f"SHA256SUMS signed with the targets key (root version {signed['root_version']}) of the {signer}")
    size = sum(p.stat().st_size for p in kit.rglob("*") if p.is_file())
    say(f"kit: {kit} ({size / 2**20:.0f} MB, {len(list((kit / 'wheels').iterdir()))} wheels)")
    if not args.no_tar:
        tar = write_tar(kit)
        say(f"tarball: {tar} ({tar.stat().st_size / 2**20:.0f} MB)")
    print(kit)
    return 0


if __name__ == "__main__":
    if not re.match(r"3\.1[1-9]", platform.python_version()):
        raise SystemExit("build_kit: needs Python 3.11 or newer (the project's .venv)")
    sys.exit(main())
