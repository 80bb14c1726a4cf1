"""Small text helpers shared by the views, so every view says "3 min ago" the same way."""

from __future__ import annotations

import time


def age_text(then: float | None, now: float | None = None) -> str:
    if then is None:
        return "never"
    seconds = max(0.0, (now or time.time()) - then)
    if seconds < 5:
        return "just now"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h ago"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(then))


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def number_text(value: object, fmt: str = "{:.1f}", unit: str = "") -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    return fmt.format(value) + (f" {unit}" if unit else "")


def provider_text(provider: object) -> str:
    """onnxruntime's provider names without their common suffix: "CPUExecutionProvider" -> "CPU"."""
    return str(provider).removesuffix("ExecutionProvider") or str(provider)


def input_text(spec: object) -> str:
    """A model's input as a person reads it: "320x320 RGB float32, NCHW, letterboxed (tensor 'images')"."""
    if not isinstance(spec, dict) or not spec:
        return "?"
    size = f"{spec.get('width', '?')}x{spec.get('height', '?')}"
    parts = [" ".join(str(p) for p in (size, str(spec.get("color_order", "")).upper(), spec.get("dtype", "")) if p)]
    if spec.get("layout"):
        parts.append(str(spec["layout"]))
    if spec.get("letterbox") is not None:
        parts.append("letterboxed" if spec["letterbox"] else "stretched")
    text = ", ".join(parts)
    return text + (f" (tensor '{spec['name']}')" if spec.get("name") else "")


def trust_text(state) -> str:
    """What this console may do with the device (a DeviceState), in a word or two."""
    if state.role and state.trust not in ("insecure lab mode", "plain http"):
        return f"paired: {state.role}"
    return {"insecure lab mode": "lab mode (no TLS)", "plain http": "plain HTTP"}.get(state.trust, state.trust)
