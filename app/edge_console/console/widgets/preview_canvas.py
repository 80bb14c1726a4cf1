"""The live preview of one device: paints the newest frame with its own detections, plus what the engineer needs
to judge it (sequence, fps, inference time, overlay age, capture-to-paint latency). Pause, step, zoom and pan.

It only paints: frames arrive decoded (see `frames.py`), and the stream is opened while the canvas is visible.
"""

from __future__ import annotations

import time
from collections import deque

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..device_state import DeviceState
from ..frames import DecodedFrame
from ..net.device_clock import latency_since
from .formatting import age_text
from .overlay import OverlaySettings, fit_transform, paint_frame, paint_text_block

MIN_ZOOM, MAX_ZOOM = 1.0, 16.0
BACKGROUND = QColor("#1b1d21")


class PreviewCanvas(QWidget):
    activated = Signal(object)  # DeviceState: double-click on a grid tile asks for the full preview
    paused_changed = Signal(bool)
    hidden_count_changed = Signal(int)

    def __init__(self, state: DeviceState, settings: OverlaySettings, *, compact: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.settings = settings
        self.compact = compact
        self.frame: DecodedFrame | None = None
        self.paused = False
        self._step_pending = False
        self.zoom = 1.0
        self.pan = QPointF(0, 0)
        self._drag_from: QPointF | None = None
        self._streaming = False
        self._last_painted: DecodedFrame | None = None
        self.hidden_count = 0
        # Capture-to-paint latency of each frame when first painted (ms, clock-offset corrected): the overlay
        # shows the newest, the benchmark reads them all.
        self.paint_latencies_ms: deque[float] = deque(maxlen=5000)
        self.receive_to_paint_ms: deque[float] = deque(maxlen=5000)  # the console's own share of that latency
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 120)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        state.frame_arrived.connect(self._on_frame)
        state.changed.connect(self.update)
        settings.changed.connect(self.update)
        if state.latest_frame is not None:
            self.frame = state.latest_frame

    # -- stream demand follows visibility: no bandwidth for a hidden tab ----------------------------------------

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._streaming:
            self._streaming = True
            self.state.acquire_stream()

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().hideEvent(event)
        self.detach()

    def detach(self) -> None:
        """Release the stream; called on hide and by owners before they drop the canvas."""
        if self._streaming:
            self._streaming = False
            self.state.release_stream()

    # -- frames ---------------------------------------------------------------------------------------------------

    def _on_frame(self) -> None:
        if self.paused and not self._step_pending:
            return
        self.frame = self.state.latest_frame
        if self._step_pending:
            self._step_pending = False
        self.update()

    def set_paused(self, paused: bool) -> None:
        if paused != self.paused:
            self.paused = paused
            self._step_pending = False
            if not paused:
                self.frame = self.state.latest_frame or self.frame
            self.paused_changed.emit(paused)
            self.update()

    def step(self) -> None:
        """While paused: show the next frame that arrives, then hold it."""
        if not self.paused:
            self.set_paused(True)
        self._step_pending = True

    # -- zoom and pan -----------------------------------------------------------------------------------------------

    def _transform(self):
        if self.frame is None:
            return None
        image = self.frame.image
        return fit_transform(image.width(), image.height(), QRectF(self.rect()), self.zoom, self.pan)

    def zoom_by(self, factor: float, about: QPointF | None = None) -> None:
        about = about if about is not None else QPointF(self.width() / 2, self.height() / 2)
        before = self._transform()
        new_zoom = min(max(self.zoom * factor, MIN_ZOOM), MAX_ZOOM)
        if before is None or new_zoom == self.zoom:
            self.zoom = new_zoom
            return
        image_point = before.inverted()[0].map(about)
        self.zoom = new_zoom
        after = self._transform()
        self.pan += about - after.map(image_point)  # keep the pixel under the cursor where it was
        if self.zoom == MIN_ZOOM:
            self.pan = QPointF(0, 0)
        self.update()

    def reset_view(self) -> None:
        self.zoom, self.pan = 1.0, QPointF(0, 0)
        self.update()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(1.25 ** steps, event.position())

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton and self.zoom > MIN_ZOOM:
            self._drag_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self._drag_from is not None:
            self.pan += event.position() - self._drag_from
            self._drag_from = event.position()
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        self._drag_from = None
        self.unsetCursor()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self.compact:
            self.activated.emit(self.state)
        else:
            self.reset_view()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        key = event.key()
        if key == Qt.Key.Key_Space:
            self.set_paused(not self.paused)
        elif key in (Qt.Key.Key_Period, Qt.Key.Key_Right):
            self.step()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(1.25)
        elif key == Qt.Key.Key_Minus:
            self.zoom_by(0.8)
        elif key == Qt.Key.Key_0:
            self.reset_view()
        else:
            super().keyPressEvent(event)

    # -- painting -------------------------------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        now = time.time()
        frame = self.frame
        hidden = 0
        if frame is not None:
            hidden = paint_frame(painter, frame, self._transform(), self.settings)
            latency = self._capture_to_paint_ms(frame, now)
            if frame is not self._last_painted:
                self._last_painted = frame
                self.receive_to_paint_ms.append((now - frame.received_at) * 1000.0)
                if latency is not None:
                    self.paint_latencies_ms.append(latency)
        if hidden != self.hidden_count:
            self.hidden_count = hidden
            self.hidden_count_changed.emit(hidden)
        paint_text_block(painter, self._overlay_lines(frame, now), QPointF(6, 6))
        footer = []
        if self.paused:
            footer.append("PAUSED (space resumes, → steps)")
        if hidden:
            footer.append(f"{hidden} detection{'s' if hidden != 1 else ''} hidden by filters")
        paint_text_block(painter, footer, QPointF(6, self.height() - 6), align_bottom=True)
        banner = self._banner()
        if banner:
            self._paint_banner(painter, banner)
        painter.end()

    def _capture_to_paint_ms(self, frame: DecodedFrame, now: float) -> float | None:
        """Capture (device clock) to now (console clock), corrected by the estimated clock offset."""
        if self.state.clock_offset is None:
            return None
        return latency_since(frame.header.capture_ts, self.state.clock_offset, now) * 1000.0

    def _overlay_lines(self, frame: DecodedFrame | None, now: float) -> list[str]:
        lines = [self.state.name]
        if frame is None:
            return lines
        sample = self.state.latest_sample or {}
        fps = sample.get("fps_inferred")
        fps_text = f"{fps:.1f} fps" if isinstance(fps, int | float) else "? fps"
        lines[0] += f"  #{frame.header.seq}"
        lines.append(f"device {fps_text} · inference {frame.header.timings.inference_ms:.1f} ms")
        age = (now - frame.received_at) * 1000
        latency = self._capture_to_paint_ms(frame, now)
        latency_text = f"{latency:.0f} ms" if latency is not None else "? (clock not yet synced)"
        if self.compact:
            lines.append(f"age {age:.0f} ms · capture→paint {latency_text}")
        else:
            lines.append(f"overlay age {age:.0f} ms")
            uncertainty = (self.state.clock_round_trip or 0) / 2 * 1000
            lines.append(f"capture→paint {latency_text}" + (f" (±{uncertainty:.0f} ms clock)" if latency else ""))
            lines.append(f"model {frame.header.model_version} · {frame.image.width()}x{frame.image.height()}")
        return lines

    @property
    def showing_live_picture(self) -> bool:
        """A frame is on screen and nothing (offline, connecting, stream down) is dimming it."""
        return self.frame is not None and not self._banner()

    def _banner(self) -> str:
        """Why the picture is not live, if it is not; empty while frames flow."""
        state = self.state
        if state.stream_live and self.frame is not None:
            return ""  # frames are arriving: whatever the control channel says, the picture is live
        if state.status == "offline":
            seen = f", last seen {age_text(state.last_seen)}" if state.last_seen else ""
            return f"offline{seen}\n{state.status_reason or 'unreachable'} — reconnecting by itself"
        if state.status == "connecting":
            return f"connecting to {state.address}…"
        if not state.stream_live:
            return f"stream: {state.stream_reason} — reconnecting" if state.stream_reason else "opening the stream…"
        return "waiting for the first frame…"

    def _paint_banner(self, painter: QPainter, text: str) -> None:
        painter.save()
        painter.fillRect(self.rect(), QColor(0, 0, 0, 120))
        painter.setPen(QColor("#f0f0f0"))
        painter.drawText(QRectF(self.rect()).adjusted(10, 10, -10, -10),
                         Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)
        painter.restore()
