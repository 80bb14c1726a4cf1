"""The device program: capture, inference, HTTP/WebSocket API, telemetry, mDNS advertising, simulator. Never Qt."""

from edge_console import __version__ as AGENT_VERSION  # noqa: N812 - the name the API reports it under

__all__ = ["AGENT_VERSION"]
