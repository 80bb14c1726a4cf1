#!/bin/sh
# Install the Edge Console operator console @VERSION@ on a Linux laptop from this offline kit: no network is used.
#
#   ./install-console.sh                         # ~/.local/share/edge-console/venv, a menu entry, ~/.local/bin link
#   ./install-console.sh --prefix DIR            # anywhere else
#   ./install-console.sh --root /path/to/root.json   # check the kit against a root.json the site already trusts
#
# The kit is checked first (verify_kit.py); a kit that does not verify is refused and nothing is installed.
# Qt needs a few system libraries on a minimal desktop (libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1): the
# console names any that are missing when it starts.
set -eu

VERSION="@VERSION@"
KIT=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python3}
ROOT_JSON=""
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
PREFIX="$DATA/edge-console"
MENU=yes

die() { echo "install-console: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
    --python) PYTHON=${2:?--python needs a program}; shift 2 ;;
    --root) ROOT_JSON=${2:?--root needs a root.json}; shift 2 ;;
    --no-menu) MENU=no; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: the console needs Python 3.11 or newer (--python PROGRAM)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$("$PYTHON" -V 2>&1) is too old: the console needs Python 3.11, 3.12 or 3.13 (--python python3.12)"

echo "Checking the kit in $KIT ..."
if [ -n "$ROOT_JSON" ]; then
  "$PYTHON" "$KIT/verify_kit.py" "$KIT" --root "$ROOT_JSON" || die "the kit does not verify: nothing was installed"
else
  "$PYTHON" "$KIT/verify_kit.py" "$KIT" || die "the kit does not verify: nothing was installed"
fi
"$PYTHON" - "$KIT/KIT.json" <<'EOF' || exit 1
import json, platform, sys
kit = json.load(open(sys.argv[1]))
here = f"linux_{platform.machine()} cp{sys.version_info.major}{sys.version_info.minor}"
if here not in kit["console"]:
    sys.exit(f"install-console: this kit has no console wheels for {here}; it has: {', '.join(kit['console'])}")
EOF

VENV="$PREFIX/venv"
PIP_WHEEL=""
for wheel in "$KIT"/wheels/pip-*.whl; do [ -f "$wheel" ] && PIP_WHEEL=$wheel; done
[ -n "$PIP_WHEEL" ] || die "the kit has no pip wheel"
PREVIOUS=""
if [ -d "$VENV" ]; then
  PREVIOUS="$VENV.previous"; rm -rf "$PREVIOUS"; mv "$VENV" "$PREVIOUS"
fi
restore() {
  rm -rf "$VENV"
  if [ -n "$PREVIOUS" ]; then mv "$PREVIOUS" "$VENV"; echo "install-console: the previous installation was kept" >&2; fi
}

echo "Installing edge-console[console] $VERSION into $VENV ..."
mkdir -p "$PREFIX"
if ! "$PYTHON" -m venv --without-pip "$VENV"; then restore; die "cannot make a virtual environment in $VENV"; fi
if ! "$VENV/bin/python" "$PIP_WHEEL/pip" --isolated --disable-pip-version-check install --quiet --no-index \
     --find-links "$KIT/wheels" pip; then
  restore; die "cannot install pip from the kit"
fi
if ! "$VENV/bin/python" -m pip --isolated --disable-pip-version-check install --quiet --no-index \
     --find-links "$KIT/wheels" --only-binary=:all: "edge-console[console]==$VERSION"; then
  restore; die "pip could not install edge-console[console]==$VERSION from the kit"
fi
rm -rf "$PREVIOUS"

if [ "$MENU" = yes ]; then
  # The desktop entry and icon ship inside the package (edge_console.resources); Exec points at this venv.
  RESOURCES=$("$VENV/bin/python" -c 'from edge_console.core.paths import resources_dir; print(resources_dir())')
  mkdir -p "$DATA/applications" "$DATA/icons/hicolor/scalable/apps" "$HOME/.local/bin"
  cp "$RESOURCES/icons/edge-console.svg" "$DATA/icons/hicolor/scalable/apps/edge-console.svg"
  sed -e "s|^Exec=.*|Exec=$VENV/bin/edge-console|" -e "s|^TryExec=.*|TryExec=$VENV/bin/edge-console|" \
    "$RESOURCES/edge-console.desktop" > "$DATA/applications/edge-console.desktop"
  ln -sf "$VENV/bin/edge-console" "$HOME/.local/bin/edge-console"
fi
cat <<EOF
Installed: $VENV/bin/edge-console ($VERSION)$( [ "$MENU" = yes ] && printf '\nMenu:      Edge Console (and edge-console in ~/.local/bin)')
Try it:    $VENV/bin/edge-console --demo      # a simulated fleet on 127.0.0.1 only
EOF
