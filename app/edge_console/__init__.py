"""Edge Console: operator console, device agent and bundle tools for edge-AI inference fleets.

    agent/    the device program (`edge-agent`): capture, inference, the HTTP/WebSocket API, updates, trust
    client/   the console's Qt-free half: device sessions, pairing, the registry and database, the compare engine,
              releases and rollouts, and the headless `edge-console` commands
    console/  the console's window (`edge-console`, PySide6): views, view-state and Qt glue on top of client/
    core/     what every program shares: the wire protocol, detection, release files and TUF trust, audit, scenes
    bundle/   `edge-bundle`, the release tooling of an offline signing machine

Each folder's own __init__ says which file does what.

The version has one source, the installed distribution's metadata (pyproject.toml's `version`).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edge-console")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
