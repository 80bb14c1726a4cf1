"""The live preview of one device: paints the newest frame with its own detections, plus what the engineer needs
to judge it (sequence, fps, inference time, overlay age, capture-to-paint latency). Pause, step forward and back
through the frames received, zoom and pan.

It only paints: frames arrive decoded (see `frames.py`), a frame stepped back to is decoded again off the GUI
thread (`DeviceState.decode_kept_frame`), and the stream is opened while the canvas is visible. What it says in
words (the information block, why the picture is not live) is in `preview_text.py`.
"""

from __future__ import annotations

import time
from collections import deque

from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from edge_console.console.colors import STATUS_COLORS
from edge_console.console.device_state import DeviceState
from edge_console.console.frames import DecodedFrame
from edge_console.console.widgets.label_placement import corner_rect, quietest_corner
from edge_console.console.widgets.overlay import (
    OverlaySettings,
    detection_rects,
    fit_transform,
    fitted_lines,
    paint_frame,
    paint_text_block,
)
from edge_console.console.widgets.preview_text import (
    PREVIEW_KEYS,
    capture_to_paint_ms,
    health_line,
    info_lines,
    not_live_reason,
)

MIN_ZOOM, MAX_ZOOM = 1.0, 16.0
BACKGROUND = QColor("#1b1d21")
COMPACT_INFO_POINT_SIZE = 7.5  # grid tiles: a smaller information block, so it covers less of a small picture
INFO_CORNER_HOLD_S = 1.0  # the information block moves to a quieter corner at most this often: no jumping at 15 fps


class PreviewCanvas(QWidget):
    activated = Signal(object)  # DeviceState: double-click on a grid tile asks for the full preview
    clicked = Signal(object)  # DeviceState: a click makes the device the current one
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
        self._frozen_at: float | None = None  # while paused: the time the shown frame's figures are for
        self._frozen_info: tuple[DecodedFrame | None, list[str]] | None = None  # and the figures, as they were
        self._step_pending = False
        self._decode_request = 0  # a frame stepped to: only the newest request's result is shown
        self.step_note = ""  # "oldest frame kept", shown in the footer while paused
        self.zoom = 1.0
        self.pan = QPointF(0, 0)
        self._drag_from: QPointF | None = None
        self._streaming = False
        self._last_painted: DecodedFrame | None = None
        self.hidden_count = 0
        self.info_rect = QRectF()  # where the information block was last painted (empty: hidden)
        self._info_corner = 0
        self._info_corner_at = -1e9  # monotonic
        self.label_rects: list[QRectF] = []  # where the detection labels were last painted
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

    # -- frames, pausing and stepping ---------------------------------------------------------------------------------

    def _on_frame(self) -> None:
        if self.paused and not self._step_pending:
            return
        self._show(self.state.latest_frame)
        self._step_pending = False

    def _show(self, frame: DecodedFrame | None) -> None:
        if frame is not None:
            self.frame = frame
            if self.paused:
                self._frozen_at = time.time()  # a frame stepped to: its ages as of the moment it is shown
        self.step_note = ""
        self.update()

    def set_paused(self, paused: bool) -> None:
        if paused != self.paused:
            self.paused = paused
            self._frozen_at = time.time() if paused else None  # the ages on a paused frame stand still
            self._step_pending = False
            self._decode_request += 1  # a step in flight is not shown after resuming
            self.step_note = ""
            if not paused:
                self.frame = self.state.latest_frame or self.frame
            self.paused_changed.emit(paused)
            self.update()

    def step(self, frames: int = 1) -> None:
        """While paused, show the frame received `frames` after (negative: before) the one shown, from the
        device's ring of recent frames; past the newest, the next frame to arrive. Pauses first if needed."""
        if not self.paused:
            self.set_paused(True)
            if frames > 0 and self.frame is None:
                self._step_pending = True
            return
        shown = self.frame
        kept = self.state.frame_ring.neighbour(shown.header.seq, shown.received_at, frames) if shown else None
        if kept is None:
            if frames > 0:
                self._step_pending = True  # at the newest: the next frame that arrives
            else:
                self.step_note = "the oldest frame kept"
                self.update()
            return
        self._step_pending = False
        self._decode_request += 1
        request = self._decode_request
        latest = self.state.latest_frame
        if latest is not None and latest.header.seq == kept.seq and latest.received_at == kept.received_at:
            self._show(latest)  # already decoded
            return

        def decoded(frame: DecodedFrame) -> None:
            if request == self._decode_request and self.paused:
                self._show(frame)

        self.state.decode_kept_frame(kept, decoded)

    def step_back(self) -> None:
        self.step(-1)

    def toggle_info(self) -> None:
        self.settings.set_show_info(not self.settings.show_info)

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

    def zoom_in(self) -> None:
        self.zoom_by(1.25)

    def zoom_out(self) -> None:
        self.zoom_by(0.8)

    def toggle_paused(self) -> None:
        self.set_paused(not self.paused)

    def reset_view(self) -> None:
        self.zoom, self.pan = 1.0, QPointF(0, 0)
        self.update()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(1.25 ** steps, event.position())

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.state)
            if self.zoom > MIN_ZOOM:
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
        # The keys and what they do are one table (preview_text.PREVIEW_KEYS), which the shortcut list shows.
        # Ctrl, Alt and Meta combinations belong to the window's shortcuts; Shift may be needed to type "+".
        commands = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.MetaModifier
        if not event.modifiers() & commands:
            for binding in PREVIEW_KEYS:
                if event.key() in binding.keys:
                    getattr(self, binding.method)()
                    return
        super().keyPressEvent(event)

    # -- painting -------------------------------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        now = self._frozen_at if self.paused and self._frozen_at is not None else time.time()
        frame = self.frame
        room = max(40.0, self.width() - 22.0)  # text blocks never wider than the picture
        hidden = self.settings.split(frame.header.detections)[1] if frame is not None else 0
        footer, footer_size = fitted_lines(painter.font(), self._footer_lines(hidden), room)
        footer_rect = QRectF(QPointF(6, self.height() - 6 - footer_size.height()), footer_size)
        info, info_font, info_size = self._info_block(painter, frame, now, room)
        self.label_rects = []
        if frame is not None:
            # Labels keep clear of the text blocks on the picture, and of each other.
            _, self.label_rects = paint_frame(painter, frame, self._transform(), self.settings,
                                              avoid=[self.info_rect, footer_rect])
            latency = self._capture_to_paint_ms(frame, now)
            if frame is not self._last_painted and not self.paused:  # a frame stepped to is not a live paint
                self._last_painted = frame
                self.receive_to_paint_ms.append((now - frame.received_at) * 1000.0)
                if latency is not None:
                    self.paint_latencies_ms.append(latency)
        if hidden != self.hidden_count:
            self.hidden_count = hidden
            self.hidden_count_changed.emit(hidden)
        if info:
            painter.save()
            painter.setFont(info_font)
            paint_text_block(painter, info, self.info_rect.topLeft(), size=info_size)
            painter.restore()
        paint_text_block(painter, footer, QPointF(6, self.height() - 6), align_bottom=True, size=footer_size)
        banner = self._banner()
        health = health_line(self.state)
        if health and frame is not None and not banner:  # a live picture from a device that is not well: say why
            color = QColor(STATUS_COLORS.get(self.state.status, QColor("gray")))
            color.setAlpha(220)
            lines, size = fitted_lines(painter.font(), [health], room)
            paint_text_block(painter, lines, QPointF(6, self.height() - 10 - footer_size.height()),
                             align_bottom=True, background=color, size=size)
        if banner:
            self._paint_banner(painter, banner)
        painter.end()

    def _footer_lines(self, hidden: int) -> list[str]:
        lines = []
        if self.paused:
            lines.append("PAUSED (space resumes, ← → step)" + (f" · {self.step_note}" if self.step_note else ""))
        if hidden:
            lines.append(f"{hidden} detection{'s' if hidden != 1 else ''} hidden by filters")
        return lines

    def _info_block(self, painter: QPainter, frame: DecodedFrame | None, now: float,
                    room: float) -> tuple[list[str], QFont, QSizeF]:
        """The information block's lines, font and size, and (in `info_rect`) where it goes: the corner hiding the
        fewest detections; smaller on grid tiles and never wider than the picture; nothing when switched off."""
        font = self._info_font(painter.font())
        if not self.settings.show_info:
            self.info_rect = QRectF()
            return [], font, QSizeF()
        lines, size = fitted_lines(font, self._info_text(frame, now), room)
        bounds = QRectF(self.rect())
        if frame is not None and time.monotonic() - self._info_corner_at >= INFO_CORNER_HOLD_S:
            self._info_corner_at = time.monotonic()
            sx, sy = frame.box_scale
            shown, _ = self.settings.split(frame.header.detections)
            boxes = detection_rects(shown, QTransform(sx, 0, 0, sy, 0, 0) * self._transform())
            self._info_corner = quietest_corner(size, bounds, boxes)
        self.info_rect = corner_rect(self._info_corner, size, bounds)
        return lines, font, size

    def _info_text(self, frame: DecodedFrame | None, now: float) -> list[str]:
        """The frame's figures; while paused, as they were when it was shown (fps, ages and latency stand still)."""
        if not self.paused:
            self._frozen_info = None
            return info_lines(self.state, frame, now, self.compact)
        if self._frozen_info is None or self._frozen_info[0] is not frame:
            self._frozen_info = (frame, info_lines(self.state, frame, now, self.compact))
        return self._frozen_info[1]

    def _info_font(self, base: QFont) -> QFont:
        if not self.compact:
            return base
        font = QFont(base)
        font.setPointSizeF(COMPACT_INFO_POINT_SIZE)
        return font

    def _capture_to_paint_ms(self, frame: DecodedFrame, now: float) -> float | None:
        return capture_to_paint_ms(self.state, frame, now)

    @property
    def showing_live_picture(self) -> bool:
        """A frame is on screen and nothing (offline, connecting, stream down) is dimming it."""
        return self.frame is not None and not self._banner()

    def _banner(self) -> str:
        """Why the picture is not live, if it is not; empty while frames flow."""
        return not_live_reason(self.state, self.frame is not None, self.paused)

    def _paint_banner(self, painter: QPainter, text: str) -> None:
        painter.save()
        painter.fillRect(self.rect(), QColor(0, 0, 0, 120))
        painter.setPen(QColor("#f0f0f0"))
        painter.drawText(QRectF(self.rect()).adjusted(10, 10, -10, -10),
                         Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)
        painter.restore()
