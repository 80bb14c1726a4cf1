"""Edge Console: operator console, device agent and bundle tools for edge-AI inference fleets.

The version has one source, the installed distribution's metadata (pyproject.toml's `version`).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edge-console")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
