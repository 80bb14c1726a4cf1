"""Edge Console: operator console, device agent and bundle tools for edge-AI inference fleets."""

__version__ = "0.1.0"
