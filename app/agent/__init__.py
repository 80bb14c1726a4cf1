"""The device program: capture, inference, HTTP/WebSocket API, telemetry, mDNS advertising, simulator. Never Qt."""

AGENT_VERSION = "0.1.0"
