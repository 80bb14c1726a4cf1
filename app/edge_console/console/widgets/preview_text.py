"""What a preview says in words: its keys, its information block, and why its picture is not live.

Apart from the canvas so the shortcut list (Help ▸ Keyboard shortcuts) is generated from the very table the canvas
dispatches its keys from, and so the texts can be read in a test without painting.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt

from edge_console.client.net.device_clock import latency_since
from edge_console.console.device_state import DeviceState
from edge_console.console.frames import DecodedFrame
from edge_console.console.widgets.formatting import age_text


@dataclass(frozen=True)
class PreviewKey:
    keys: tuple[int, ...]  # Qt.Key values that do it (without modifiers)
    label: str  # how the shortcut list writes the keys
    description: str
    method: str  # the PreviewCanvas method called


PREVIEW_KEYS: tuple[PreviewKey, ...] = (
    PreviewKey((Qt.Key.Key_Space,), "Space", "pause or resume the preview", "toggle_paused"),
    PreviewKey((Qt.Key.Key_Right, Qt.Key.Key_Period), "→ or .", "paused: step to the next frame received", "step"),
    PreviewKey((Qt.Key.Key_Left, Qt.Key.Key_Comma), "← or ,", "paused: step back to the frame received before",
               "step_back"),
    PreviewKey((Qt.Key.Key_I,), "I", "show or hide the frame information on every preview", "toggle_info"),
    PreviewKey((Qt.Key.Key_Plus, Qt.Key.Key_Equal), "+", "zoom in (the mouse wheel too; drag to pan)", "zoom_in"),
    PreviewKey((Qt.Key.Key_Minus,), "−", "zoom out", "zoom_out"),
    PreviewKey((Qt.Key.Key_0,), "0", "fit the picture again (double-click too)", "reset_view"),
)


def capture_to_paint_ms(state: DeviceState, frame: DecodedFrame, now: float) -> float | None:
    """Capture (device clock) to now (console clock), corrected by the estimated clock offset."""
    if state.clock_offset is None:
        return None
    return latency_since(frame.header.capture_ts, state.clock_offset, now) * 1000.0


def info_lines(state: DeviceState, frame: DecodedFrame | None, now: float, compact: bool) -> list[str]:
    """The information block: on a grid tile two short lines, on a full preview five. `now`: the time the figures
    are for (a paused preview passes the moment it paused: its frame's ages stand still)."""
    lines = [state.name]
    if frame is None:
        return lines
    sample = state.latest_sample or {}
    fps = sample.get("fps_inferred")
    fps_text = f"{fps:.1f} fps" if isinstance(fps, int | float) else "? fps"
    lines[0] += f"  #{frame.header.seq}"
    latency = capture_to_paint_ms(state, frame, now)
    latency_text = f"{latency:.0f} ms" if latency is not None else "?"
    if compact:
        lines.append(f"{fps_text} · inference {frame.header.timings.inference_ms:.1f} ms · "
                     f"capture→paint {latency_text}")
        return lines
    lines.append(f"device {fps_text} · inference {frame.header.timings.inference_ms:.1f} ms")
    lines.append(f"overlay age {(now - frame.received_at) * 1000:.0f} ms")
    uncertainty = (state.clock_round_trip or 0) / 2 * 1000
    lines.append(f"capture→paint {latency_text if latency is not None else '? (clock not yet synced)'}"
                 + (f" (±{uncertainty:.0f} ms clock)" if latency is not None else ""))
    lines.append(f"model {frame.header.model_version} · {frame.image.width()}x{frame.image.height()} · I hides this")
    return lines


def health_line(state: DeviceState) -> str:
    """For a device that answers but is not well (degraded, failing): its status and the device's own reasons."""
    if not state.connected or state.status not in ("degraded", "failing"):
        return ""
    reasons = state.health_reasons
    return f"{state.status}: " + ("; ".join(reasons) if reasons else "the device gives no reason")


TRUST_TEXT = {
    "not paired": "not paired: this console may not watch it yet\nPair… (Ctrl+Alt+P) with the code `edge-agent pair` "
                  "prints on the device",
    "certificate changed": "certificate changed: the device is not the one this console paired with (reinstalled?)"
                           "\nnothing is taken from it; pair again if you know why",
    "no longer paired": "no longer paired: the device revoked this console\nPair… (Ctrl+Alt+P) again with a new code",
}


def not_live_reason(state: DeviceState, has_frame: bool, paused: bool = False) -> str:
    """Why the picture is not live, if it is not; empty while frames flow (or while paused on a frame)."""
    if state.status in TRUST_TEXT:  # before anything about the stream: nothing will come until this changes
        return TRUST_TEXT[state.status]
    if paused:
        return "" if has_frame else "paused before the first frame\nspace resumes"
    if state.stream_live and has_frame and not state.stream_reason:
        return ""  # frames are arriving: whatever the control channel says, the picture is live
    if state.status == "offline":
        seen = f", last seen {age_text(state.last_seen)}" if state.last_seen else ""
        return f"offline{seen}\n{state.status_reason or 'unreachable'} — reconnecting by itself"
    if state.status == "connecting":
        return f"connecting to {state.address}…"
    if not state.stream_live:
        if not state.stream_reason:
            return "opening the stream…"
        reason = state.stream_reason  # a reason that already says when the next try is needs no second "retrying"
        return f"stream: {reason}" if "retrying" in reason else f"stream: {reason} — retrying by itself"
    if state.stream_reason:  # live, but what arrives cannot be shown (refused frames)
        return f"stream: {state.stream_reason}"
    health = health_line(state)
    if health:  # e.g. failing: the video file is missing, so no frame will come
        return f"no picture from the device\n{health}"
    return "waiting for the first frame…"
