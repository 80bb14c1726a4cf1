"""Everything a device reports about itself, plus what the console learnt about it (clock, errors)."""

from __future__ import annotations

import html
import time

from PySide6.QtCore import QTimer
from PySide6.QtGui import QTextOption
from PySide6.QtWidgets import QTextBrowser, QVBoxLayout, QWidget

from edge_console.client.untrusted_text import escaped, visible_text
from edge_console.console.device_state import TRUST_BLOCKED, DeviceState
from edge_console.console.widgets.formatting import age_text, duration_text, input_text, provider_text, trust_text
from edge_console.core.trust.tls_identity import short_fingerprint

REFRESH_MS = 1000  # uptime and telemetry change every second; redrawing faster helps nobody read it


def _row(key: str, value: object) -> str:
    # Keys never wrap ("addre ss"); values are the device's words, shown as plain text whatever they contain.
    return (f"<tr><td style='color:#666;padding-right:10px;white-space:nowrap'>{html.escape(key)}</td>"
            f"<td>{escaped(value, 400)}</td></tr>")


def found_by(state: DeviceState) -> str:
    ways = (["added by address"] if state.manual else []) + (["mDNS (announced now)"] if state.announced else [])
    return ", ".join(ways) or "remembered from an earlier session (not announced now)"


def _section(title: str, rows: list[str]) -> str:
    if not rows:
        return ""
    return f"<h4 style='margin:8px 0 2px 0'>{html.escape(title)}</h4><table cellspacing=0>{''.join(rows)}</table>"


def trust_rows(state: DeviceState) -> list[str]:
    fingerprint = str(state.info.get("fingerprint") or state.txt.get("fp") or "")
    rows = [_row("pairing", trust_text(state) or "not yet known")]
    if fingerprint:
        rows.append(_row("certificate", short_fingerprint(fingerprint) if len(fingerprint) == 64 else fingerprint))
    if state.trust_detail:
        rows.append(_row("warning" if state.trust in TRUST_BLOCKED else "note", state.trust_detail))
    if state.trust == "not paired":
        rows.append(_row("to pair", "on the device: edge-agent pair --role operator; then Pair… here"))
    return rows


def describe_device(state: DeviceState) -> str:
    """The panel's HTML; a pure function of the state, so it is easy to test and to copy from."""
    info = state.info
    hardware = info.get("hardware") or {}
    model = info.get("model") or {}
    source = info.get("source") or {}
    sample = state.latest_sample or {}
    parts = [f"<h3 style='margin:2px 0'>{escaped(state.name)}</h3>"]
    status = [_row("status", state.status + (f" — {state.status_reason}" if state.status_reason else "")),
              _row("address", state.address or "?"), _row("device id", state.device_id or "not yet known"),
              _row("found by", found_by(state)),
              _row("first seen", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(state.first_seen))
                   if state.first_seen else "never"),
              _row("last seen", "now" if state.connected else age_text(state.last_seen))]
    if info:
        status += [_row("agent", f"{info.get('agent_version', '?')} (API {info.get('api_version')})"),
                   _row("uptime", duration_text(sample.get("uptime_s", info.get("uptime_s"))))]
    parts.append(_section("Status", status))
    parts.append(_section("Trust", trust_rows(state)))
    reasons = state.health.get("reasons") or []
    parts.append(_section("Health", [_row("status", state.health.get("status", "?"))]
                          + [_row("reason", r) for r in reasons]))
    if hardware:
        parts.append(_section("Hardware", [
            _row("arch", hardware.get("arch", "?")), _row("CPU", hardware.get("cpu_model", "?")),
            _row("cores", hardware.get("cpu_count", "?")), _row("memory", f"{hardware.get('memory_mb', '?')} MB"),
            _row("provider in use", provider_text(hardware.get("provider", "?"))),
            _row("providers available", ", ".join(provider_text(p) for p in hardware.get("providers_available") or []))]))
    if model:
        input_spec = model.get("input")
        parts.append(_section("Model", [
            _row("name", model.get("name", "?")), _row("version", model.get("version", "?")),
            _row("file", model.get("file", "?")), _row("sha256", str(model.get("sha256", "?"))[:16] + "…"),
            _row("classes", ", ".join(state.class_names)),
            _row("input", input_text(input_spec))]))
    if source:
        parts.append(_section("Source", [_row(visible_text(k, 40), v) for k, v in source.items()]))
    clock = []
    if state.clock_offset is not None:
        clock.append(_row("offset (device − console)", f"{state.clock_offset * 1000:+.1f} ms"))
        clock.append(_row("best round trip", f"{(state.clock_round_trip or 0) * 1000:.1f} ms"))
    clock.append(_row("stream", ("live" if state.stream_live else state.stream_reason or "not open")
                      + (f", {state.receive_fps:.1f} fps received" if state.receive_fps else "")))
    parts.append(_section("Connection", clock))
    errors = [_row(time.strftime("%H:%M:%S", time.localtime(e.at)), e.message) for e in reversed(state.errors)]
    parts.append(_section("Recent problems", errors[:15]))
    return "".join(parts)


class DetailsPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state: DeviceState | None = None
        self.browser = QTextBrowser()
        self.browser.setOpenLinks(False)
        # Lines break between words; only a word wider than the panel (an id, a hash) breaks anywhere. Keys
        # never wrap (their cells say so) and provider names are short, so no label reads "addre ss".
        self.browser.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.browser)
        self._dirty = False
        self._timer = QTimer(self, interval=REFRESH_MS)
        self._timer.timeout.connect(self._refresh_if_dirty)
        self._timer.start()
        self.set_device(None)

    def set_device(self, state: DeviceState | None) -> None:
        if self.state is not None:
            for signal in (self.state.changed, self.state.telemetry_added, self.state.error_added):
                try:
                    signal.disconnect(self._mark_dirty)
                except (RuntimeError, TypeError):
                    pass
        self.state = state
        if state is not None:
            state.changed.connect(self._mark_dirty)
            state.telemetry_added.connect(self._mark_dirty)
            state.error_added.connect(self._mark_dirty)
        self.refresh()

    def _mark_dirty(self, *_args: object) -> None:
        self._dirty = True

    def _refresh_if_dirty(self) -> None:
        if self._dirty and self.isVisible():
            self.refresh()

    def refresh(self) -> None:
        self._dirty = False
        if self.state is None:
            self.browser.setHtml("<p style='color:#666'>Select a device in the table to see what it reports.</p>")
            return
        scroll = self.browser.verticalScrollBar().value()
        self.browser.setHtml(describe_device(self.state))
        self.browser.verticalScrollBar().setValue(scroll)
