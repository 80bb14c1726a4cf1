"""Build the console as a one-folder application with PyInstaller: `make console-app`.

    python installers/console-app/build_app.py [--out dist/console-app] [--prefer-cache]

1. builds the product's wheel from a clean copy of the sources (installers/kit/build_kit.py);
2. makes a build venv in .cache/console-app/venv (kept between builds) with that wheel's `console` extra and
   PyInstaller (GPL-2.0-or-later with the bootloader exception: the app it builds may ship under any licence),
   reusing the offline kit's wheel cache, so only what is new is downloaded;
3. runs edge-console.spec and adds the desktop entry and icon beside the program, then a .tar.gz of the folder.

The result: dist/console-app/edge-console/edge-console (run it from anywhere; `edge-console --demo` works: the
frozen program runs the simulator itself), edge-console.desktop, edge-console.svg, install-desktop-entry.sh.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "installers" / "kit"))
import build_kit  # noqa: E402

PYINSTALLER = "pyinstaller>=6.10,<7"
VENV = ROOT / ".cache" / "console-app" / "venv"

DESKTOP_INSTALLER = """#!/bin/sh
# Add Edge Console to this user's application menu, pointing at this folder (run it again after moving the folder).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
mkdir -p "$DATA/applications" "$DATA/icons/hicolor/scalable/apps"
cp "$HERE/edge-console.svg" "$DATA/icons/hicolor/scalable/apps/edge-console.svg"
sed -e "s|^Exec=.*|Exec=$HERE/edge-console|" -e "s|^TryExec=.*|TryExec=$HERE/edge-console|" \\
  "$HERE/edge-console.desktop" > "$DATA/applications/edge-console.desktop"
echo "Edge Console is in the application menu ($DATA/applications/edge-console.desktop)"
"""


def say(text: str) -> None:
    print(f"build_app: {text}", file=sys.stderr, flush=True)


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def build_venv(wheel: Path, prefer_cache: bool) -> Path:
    python = venv_python()
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    cache = build_kit.CACHE / "wheels"
    cache.mkdir(parents=True, exist_ok=True)
    base = [str(python), "-m", "pip", "--isolated", "--disable-pip-version-check", "install", "--quiet",
            "--find-links", str(cache), "--find-links", str(wheel.parent)]
    # the versions the tests ran against, as in the kit
    with tempfile.TemporaryDirectory() as tmp:
        constraints = build_kit.pins(Path(tmp) / "constraints.txt")
        wanted = [f"{wheel}[console]", PYINSTALLER, "-c", str(constraints)]
        if not (prefer_cache and subprocess.run([*base, "--no-index", *wanted]).returncode == 0):
            subprocess.run([*base, *wanted], check=True)
    # the product itself, always this build's wheel (the version number does not change between commits)
    subprocess.run([*base, "--no-index", "--no-deps", "--force-reinstall", str(wheel)], check=True)
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "console-app")
    parser.add_argument("--prefer-cache", action="store_true", help="install the build venv from the local cache "
                        "first (no index), the index only for what is missing")
    parser.add_argument("--no-archive", action="store_true")
    args = parser.parse_args(argv)
    build_kit.ignore_cache_folder()
    with tempfile.TemporaryDirectory(prefix="edge-app-") as tmp:
        wheel = build_kit.build_product_wheel(Path(tmp) / "wheel")
        python = build_venv(wheel, args.prefer_cache)
        say(f"build venv: {VENV} ({subprocess.run([str(python), '-m', 'PyInstaller', '--version'], check=True, capture_output=True, text=True).stdout.strip()})")
        subprocess.run([str(python), "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
                        "--distpath", str(args.out), "--workpath", str(Path(tmp) / "work"),
                        str(HERE / "edge-console.spec")], check=True, cwd=tmp)
    app = args.out / "edge-console"
    resources = ROOT / "resources"
    shutil.copy2(resources / "edge-console.desktop", app / "edge-console.desktop")
    shutil.copy2(resources / "icons" / "edge-console.svg", app / "edge-console.svg")
    (app / "install-desktop-entry.sh").write_text(DESKTOP_INSTALLER)
    (app / "install-desktop-entry.sh").chmod(0o755)
    size = sum(p.lstat().st_size for p in app.rglob("*") if p.is_file() and not p.is_symlink())
    say(f"app: {app} ({size / 2**20:.0f} MB)")
    if not args.no_archive:
        archive = args.out / f"edge-console-{build_kit.project_version()}-linux-x86_64.tar.gz"
        with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
            tar.add(app, arcname="edge-console")
        say(f"archive: {archive} ({archive.stat().st_size / 2**20:.0f} MB)")
    print(app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
