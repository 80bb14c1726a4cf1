"""Checks on what a device says about itself, so bad data becomes a clear message instead of a KeyError later."""

from __future__ import annotations

from typing import Any

from edge_console.client.untrusted_text import visible_text
from edge_console.core.protocol import API_VERSION, ProtocolError

MAX_REASONS = 10  # a health report is a few lines a person reads, not a log


class ProtocolMismatch(ProtocolError):
    """The device answers, but speaks another API version: retrying soon will not help."""


def check_device_info(data: Any) -> dict:
    """Validate a `GET /v1/info` body; returns it unchanged or raises ProtocolError/ProtocolMismatch."""
    if not isinstance(data, dict):
        raise ProtocolError(f"/v1/info is not a JSON object but {type(data).__name__}")
    api = data.get("api_version")
    if api != API_VERSION:
        raise ProtocolMismatch(f"device speaks API version {api!r}; this console speaks {API_VERSION}")
    for key in ("id", "name"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ProtocolError(f"/v1/info has no {key!r}")
    for key in ("hardware", "model", "source"):
        if key in data and not isinstance(data[key], dict):
            raise ProtocolError(f"/v1/info {key!r} is not an object")
    return data


def check_health(data: Any) -> dict:
    if not isinstance(data, dict) or data.get("status") not in ("ok", "degraded", "failing"):
        raise ProtocolError(f"/v1/health is not a health report: {visible_text(data, 120)}")
    reasons = data.get("reasons") or []
    shown = [visible_text(r, 300) for r in reasons[:MAX_REASONS]] if isinstance(reasons, list) else []
    return {"status": data["status"], "reasons": shown}


def check_telemetry_sample(data: Any) -> dict:
    if not isinstance(data, dict) or not isinstance(data.get("ts"), int | float):
        raise ProtocolError(f"telemetry sample without a numeric 'ts': {visible_text(data, 120)}")
    try:  # JSON integers have no bound: 10**400 is one, and no time (the charts' axis is a float)
        float(data["ts"])
    except OverflowError:
        raise ProtocolError(f"telemetry sample with 'ts' out of range: {str(data['ts'])[:40]}") from None
    return data
