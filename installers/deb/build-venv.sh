#!/bin/sh
# /opt/edge-agent/lib/build-venv.sh: (re)build the agent's venv, /opt/edge-agent/venv, from the wheels this package
# ships in /opt/edge-agent/wheels (pip --no-index: no network). The postinst runs it; run it by hand after putting
# a device's own onnxruntime flavour in /etc/edge-agent/runtime/ (its wheel and the wheels it needs, e.g. NVIDIA's
# onnxruntime_gpu for JetPack): the venv then gets that wheel and `edge-console[agent-base]`, never the CPU one.
# Without wheels there, it gets `edge-console[agent]` (the CPU onnxruntime).
#
# The old venv is moved aside and put back if the new one cannot be built, so a failed upgrade leaves a working
# agent. DPKG_ROOT (dpkg --root with --force-script-chrootless) prefixes every path.
set -eu
R="${DPKG_ROOT:-}"
OPT="$R/opt/edge-agent"
VENV="$OPT/venv"
RUNTIME="$R/etc/edge-agent/runtime"
PYTHON=${EDGE_AGENT_PYTHON:-python3}
VERSION=$(cat "$OPT/VERSION")

die() { echo "edge-agent: $*" >&2; exit 1; }
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$("$PYTHON" -V 2>&1) is too old: the agent needs Python 3.11-3.13"
PIP_WHEEL=""
for wheel in "$OPT"/wheels/pip-*.whl; do [ -f "$wheel" ] && PIP_WHEEL=$wheel; done

PREVIOUS=""
if [ -d "$VENV" ]; then
  PREVIOUS="$VENV.previous"; rm -rf "$PREVIOUS"; mv "$VENV" "$PREVIOUS"
fi
fail() {
  rm -rf "$VENV"
  if [ -n "$PREVIOUS" ]; then mv "$PREVIOUS" "$VENV"; echo "edge-agent: kept the previous venv" >&2; fi
  die "$1"
}
pip_install() {
  "$VENV/bin/python" -m pip --isolated --disable-pip-version-check install --quiet --no-index \
    --find-links "$OPT/wheels" --only-binary=:all: "$@"
}

# --without-pip: python3-venv (ensurepip) is not needed; pip comes from the package's own wheel.
"$PYTHON" -m venv --without-pip "$VENV" || fail "cannot make a venv in $VENV"
"$VENV/bin/python" "$PIP_WHEEL/pip" --isolated --disable-pip-version-check install --quiet --no-index \
  --find-links "$OPT/wheels" pip || fail "cannot install pip into $VENV"
FLAVOUR=$(ls "$RUNTIME"/*.whl 2>/dev/null || true)
if [ -n "$FLAVOUR" ]; then
  # shellcheck disable=SC2086  # wheel file names have no spaces
  pip_install --find-links "$RUNTIME" $FLAVOUR || fail "cannot install the runtime wheel(s) in $RUNTIME"
  pip_install "edge-console[agent-base]==$VERSION" || fail "cannot install edge-console[agent-base] $VERSION"
else
  pip_install "edge-console[agent]==$VERSION" || fail "cannot install edge-console[agent] $VERSION"
fi
"$VENV/bin/edge-agent" --help >/dev/null || fail "the new venv's edge-agent does not start"
rm -rf "$PREVIOUS"
echo "edge-agent: $VENV ready ($("$VENV/bin/python" -V), $( [ -n "$FLAVOUR" ] && echo "onnxruntime from $RUNTIME" || echo "CPU onnxruntime"))"
