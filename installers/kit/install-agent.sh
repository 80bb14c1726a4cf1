#!/bin/sh
# Install the Edge Console device agent @VERSION@ from this offline kit: no network is used.
#
#   sudo ./install-agent.sh                      # /opt/edge-agent/venv, the agent with the CPU onnxruntime
#   ./install-agent.sh --prefix ~/edge-agent     # anywhere else, as any user
#   sudo ./install-agent.sh --runtime-wheel /media/usb/onnxruntime_gpu-1.xx-cp311-cp311-linux_aarch64.whl
#                                                # a device's own onnxruntime flavour (Jetson, OpenVINO, ...)
#   sudo ./install-agent.sh --system-site-packages --no-runtime
#                                                # use the onnxruntime the system already has (JetPack)
#   ./install-agent.sh --root /path/to/root.json # check the kit against a root.json the site already trusts
#   sudo ./install-agent.sh --deb                # Debian/Ubuntu: the kit's package, the edge-agent system service
#
# The kit is checked first (verify_kit.py: the release authority's signature on SHA256SUMS, then every file);
# a kit that does not verify is refused and nothing is installed.
set -eu

VERSION="@VERSION@"
KIT=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python3}
ROOT_JSON=""
RUNTIME=cpu            # cpu | none | wheel
RUNTIME_WHEEL=""
SYSTEM_SITE=""
MODE=venv
if [ "$(id -u)" = 0 ]; then PREFIX=/opt/edge-agent; else PREFIX="${XDG_DATA_HOME:-$HOME/.local/share}/edge-agent"; fi

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
die() { echo "install-agent: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
    --python) PYTHON=${2:?--python needs a program}; shift 2 ;;
    --root) ROOT_JSON=${2:?--root needs a root.json}; shift 2 ;;
    --runtime-wheel) [ -f "${2:?--runtime-wheel needs a .whl file}" ] || die "no such file: $2"
                     RUNTIME=wheel; RUNTIME_WHEEL="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
    --no-runtime) RUNTIME=none; shift ;;
    --system-site-packages) SYSTEM_SITE=--system-site-packages; shift ;;
    --deb) MODE=deb; shift ;;
    -h|--help) usage 0 ;;
    *) echo "install-agent: unknown option $1" >&2; usage 2 ;;
  esac
done

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: the agent needs Python 3.11 or newer (--python PROGRAM)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$("$PYTHON" -V 2>&1) is too old: the agent needs Python 3.11, 3.12 or 3.13 (--python python3.11)"

echo "Checking the kit in $KIT ..."
if [ -n "$ROOT_JSON" ]; then
  "$PYTHON" "$KIT/verify_kit.py" "$KIT" --root "$ROOT_JSON" || die "the kit does not verify: nothing was installed"
else
  "$PYTHON" "$KIT/verify_kit.py" "$KIT" || die "the kit does not verify: nothing was installed"
fi

# Does the kit have wheels for this machine? Say so plainly rather than leave it to pip's resolver message.
"$PYTHON" - "$KIT/KIT.json" <<'EOF' || exit 1
import json, platform, sys
kit = json.load(open(sys.argv[1]))
here = f"linux_{platform.machine()} cp{sys.version_info.major}{sys.version_info.minor}"
if here not in kit["agent"]:
    sys.exit(f"install-agent: this kit has no agent wheels for {here}; it has: {', '.join(kit['agent'])}")
EOF

if [ "$MODE" = deb ]; then
  [ "$(id -u)" = 0 ] || die "--deb installs a system service: run it with sudo"
  command -v dpkg >/dev/null 2>&1 || die "--deb needs dpkg (Debian, Ubuntu, Raspberry Pi OS); without it, leave --deb out"
  DEB="$KIT/deb/edge-agent_${VERSION}-1_$(dpkg --print-architecture).deb"
  [ -f "$DEB" ] || die "the kit has no package for $(dpkg --print-architecture); leave --deb out to install into a venv"
  echo "Installing $(basename "$DEB") ..."
  if command -v apt-get >/dev/null 2>&1; then
    apt-get install -y "$DEB"   # offline: needs only python3 (>= 3.11) and passwd, which the system has
  else
    dpkg -i "$DEB"
  fi
  exit 0
fi

VENV="$PREFIX/venv"
PIP_WHEEL=""
for wheel in "$KIT"/wheels/pip-*.whl; do [ -f "$wheel" ] && PIP_WHEEL=$wheel; done
[ -n "$PIP_WHEEL" ] || die "the kit has no pip wheel"
PREVIOUS=""
if [ -d "$VENV" ]; then  # an upgrade: keep the old venv until the new one works (same path: its scripts stay valid)
  PREVIOUS="$VENV.previous"
  rm -rf "$PREVIOUS"
  mv "$VENV" "$PREVIOUS"
fi
restore() {
  rm -rf "$VENV"
  if [ -n "$PREVIOUS" ]; then mv "$PREVIOUS" "$VENV"; echo "install-agent: the previous installation was kept" >&2; fi
}

echo "Installing edge-console[agent] $VERSION into $VENV ..."
mkdir -p "$PREFIX"
# --without-pip: no python3-venv/ensurepip needed; pip comes from the kit's own wheel.
if ! "$PYTHON" -m venv --without-pip $SYSTEM_SITE "$VENV"; then restore; die "cannot make a virtual environment in $VENV"; fi
pip_install() {
  "$VENV/bin/python" -m pip --isolated --disable-pip-version-check install --quiet --no-index \
    --find-links "$KIT/wheels" --only-binary=:all: "$@"
}
if ! "$VENV/bin/python" "$PIP_WHEEL/pip" --isolated --disable-pip-version-check install --quiet --no-index \
     --find-links "$KIT/wheels" pip; then
  restore; die "cannot install pip from the kit"
fi
case "$RUNTIME" in
  cpu) REQUIREMENT="edge-console[agent]==$VERSION" ;;
  *)   REQUIREMENT="edge-console[agent-base]==$VERSION" ;;
esac
# A flavour's own wheel first (what it needs beyond the kit's wheels goes in the same folder), then the agent
# without a runtime of its own, so pip never puts the CPU wheel on top of it.
if [ "$RUNTIME" = wheel ] && ! pip_install --find-links "$(dirname "$RUNTIME_WHEEL")" "$RUNTIME_WHEEL"; then
  restore; die "cannot install $RUNTIME_WHEEL (put the wheels it needs beside it)"
fi
if ! pip_install "$REQUIREMENT"; then
  restore; die "pip could not install $REQUIREMENT from the kit"
fi
if ! "$VENV/bin/python" -c 'import onnxruntime' 2>/dev/null; then
  echo "install-agent: note: no onnxruntime in $VENV yet: install your device's flavour into it, e.g." >&2
  echo "  $VENV/bin/python -m pip install --no-index /path/to/onnxruntime_gpu-....whl" >&2
fi
rm -rf "$PREVIOUS"

"$VENV/bin/edge-agent" --help >/dev/null || die "the installed agent does not start"
cat <<EOF
Installed: $VENV/bin/edge-agent ($VERSION)
Try it:    $VENV/bin/edge-agent run --model parts-v2 --source 0 --name "Press line 1"
As a service (systemd): the units and an example config are in $KIT/agent/ (README.md, "As a service").
Releases:  trust the release authority once: $VENV/bin/edge-agent trust-root $KIT/trust/1.root.json
EOF
if [ -d "$KIT/deb" ]; then echo "On Debian/Ubuntu the service comes ready-made: sudo $KIT/install-agent.sh --deb"; fi
