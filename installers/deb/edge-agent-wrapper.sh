#!/bin/sh
# /usr/bin/edge-agent (Debian package): the agent's commands for the service's own agents. `sudo edge-agent pair`,
# `sudo edge-agent trust-root root.json`, `sudo edge-agent install release.edgerelease`, `edge-agent versions`
# act on /var/lib/edge-agent/<instance> as the edge-agent user, so every file stays the service's own.
export EDGE_AGENT_STATE_ROOT="${EDGE_AGENT_STATE_ROOT:-/var/lib/edge-agent}"
if [ "$(id -u)" = 0 ]; then
  exec runuser -u edge-agent -- /opt/edge-agent/venv/bin/edge-agent "$@"
fi
exec /opt/edge-agent/venv/bin/edge-agent "$@"
