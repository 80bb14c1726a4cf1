"""Drawing a frame and ITS detections: the filter settings and the painter, apart from any widget so both the
preview and the tests can use them on a known frame."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QObject, QPointF, QRectF, QSizeF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen, QTransform

from edge_console.console.colors import class_color, readable_text_color
from edge_console.console.frames import DecodedFrame
from edge_console.console.widgets.label_placement import place_labels
from edge_console.core.detection.record import Detection

BOX_PEN_WIDTH = 2.0


class OverlaySettings(QObject):
    """What to draw: a confidence threshold and the classes switched off. Shared by the views that use it."""

    changed = Signal()

    def __init__(self, threshold: float = 0.25, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.threshold = threshold
        self.hidden_classes: set[str] = set()
        self.show_labels = True
        self.show_info = True  # the frame's information block (name, fps, latency); I toggles it

    def set_show_info(self, show: bool) -> None:
        if show != self.show_info:
            self.show_info = show
            self.changed.emit()

    def set_threshold(self, threshold: float) -> None:
        threshold = min(max(threshold, 0.0), 1.0)
        if threshold != self.threshold:
            self.threshold = threshold
            self.changed.emit()

    def set_class_visible(self, class_name: str, visible: bool) -> None:
        if visible == (class_name not in self.hidden_classes):
            return
        if visible:
            self.hidden_classes.discard(class_name)
        else:
            self.hidden_classes.add(class_name)
        self.changed.emit()

    def is_shown(self, detection: Detection) -> bool:
        return detection.confidence >= self.threshold and detection.class_name not in self.hidden_classes

    def split(self, detections: Sequence[Detection]) -> tuple[list[Detection], int]:
        """The detections to draw, and how many the filters hide (shown to the user so nothing hides silently)."""
        shown = [d for d in detections if self.is_shown(d)]
        return shown, len(detections) - len(shown)


def fit_transform(image_width: int, image_height: int, view: QRectF, zoom: float = 1.0,
                  pan: QPointF | None = None) -> QTransform:
    """Image pixels -> widget pixels: fit the whole image (keeping its aspect), then zoom about the centre and pan."""
    if image_width <= 0 or image_height <= 0:
        return QTransform()
    scale = min(view.width() / image_width, view.height() / image_height) * zoom
    dx = view.center().x() - image_width * scale / 2 + (pan.x() if pan else 0.0)
    dy = view.center().y() - image_height * scale / 2 + (pan.y() if pan else 0.0)
    return QTransform(scale, 0, 0, scale, dx, dy)


def detection_rects(detections: Sequence[Detection], source_to_widget: QTransform) -> list[QRectF]:
    return [source_to_widget.mapRect(QRectF(d.x1, d.y1, d.x2 - d.x1, d.y2 - d.y1)) for d in detections]


def paint_frame(painter: QPainter, frame: DecodedFrame, to_widget: QTransform, settings: OverlaySettings,
                avoid: Sequence[QRectF] = ()) -> tuple[int, list[QRectF]]:
    """Paint the frame's image and the detections of the SAME message, their labels clear of `avoid` (text
    blocks on the picture); returns how many detections were hidden, and where the labels went."""
    image = frame.image
    target = to_widget.mapRect(QRectF(0, 0, image.width(), image.height()))
    # Smooth scaling costs several ms per frame on big tiles; it is worth it only when the image is enlarged.
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, target.width() > image.width())
    painter.drawImage(target, image)
    shown, hidden = settings.split(frame.header.detections)
    sx, sy = frame.box_scale
    labels = paint_detections(painter, shown, QTransform(sx, 0, 0, sy, 0, 0) * to_widget, settings.show_labels,
                              avoid)
    return hidden, labels


def paint_detections(painter: QPainter, detections: list[Detection], source_to_widget: QTransform,
                     labels: bool = True, avoid: Sequence[QRectF] = ()) -> list[QRectF]:
    """Boxes in each class's colour with 'class 0.87' labels placed so that none hides another; boxes drawn
    without antialiasing so their pixels carry exactly the class colour (what the tests and a colour-picking
    engineer check). Returns the labels' rectangles, in the order of `detections`."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
    font = QFont(painter.font())
    font.setPointSizeF(8.5)
    painter.setFont(font)
    metrics = QFontMetricsF(font)
    rects = detection_rects(detections, source_to_widget)
    colors = [class_color(det.class_id, det.class_name) for det in detections]
    painter.setBrush(Qt.BrushStyle.NoBrush)
    for color, rect in zip(colors, rects):
        pen = QPen(color, BOX_PEN_WIDTH)
        pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        painter.setPen(pen)
        painter.drawRect(rect)
    placed: list[QRectF] = []
    if labels and detections:
        texts = [f"{det.class_name} {det.confidence:.2f}" for det in detections]
        height = metrics.height() + 2
        sizes = [QSizeF(metrics.horizontalAdvance(t) + 6, height) for t in texts]
        # Labels after every box, so no box line is drawn over a label.
        placed = place_labels(rects, sizes, QRectF(painter.viewport()), avoid)
        for color, text, label in zip(colors, texts, placed):
            painter.fillRect(label, color)
            painter.setPen(readable_text_color(color))
            painter.drawText(label, Qt.AlignmentFlag.AlignCenter, text)
    painter.restore()
    return placed


def fitted_lines(font: QFont, lines: Sequence[str], max_width: float) -> tuple[list[str], QSizeF]:
    """The lines, each elided to `max_width`, and the size of their plate; every line is measured once (text
    with "·" and "→" is shaped with a fallback font, which costs tens of microseconds a line, every frame)."""
    metrics = QFontMetricsF(font)
    if not lines:
        return [], QSizeF(0, 0)
    shown, widest = [], 0.0
    for line in lines:
        width = metrics.horizontalAdvance(line)
        if width > max_width:
            line = metrics.elidedText(line, Qt.TextElideMode.ElideRight, max_width)
            width = metrics.horizontalAdvance(line)
        shown.append(line)
        widest = max(widest, width)
    return shown, QSizeF(widest + 10, metrics.height() * len(shown) + 6)


def text_block_size(font: QFont, lines: Sequence[str]) -> QSizeF:
    return fitted_lines(font, lines, float("inf"))[1]


def paint_text_block(painter: QPainter, lines: list[str], corner: QPointF, *, align_bottom: bool = False,
                     background: QColor | None = None, size: QSizeF | None = None) -> QRectF:
    """A few lines of status text on a translucent plate, readable over any image; returns the plate. `size`:
    the plate's, when the caller measured the lines already (`fitted_lines`)."""
    if not lines:
        return QRectF()
    painter.save()
    metrics = QFontMetricsF(painter.font())
    size = size or text_block_size(painter.font(), lines)
    top = corner.y() - size.height() if align_bottom else corner.y()
    plate = QRectF(QPointF(corner.x(), top), size)
    painter.fillRect(plate, background or QColor(0, 0, 0, 150))
    painter.setPen(QColor("white"))
    for i, line in enumerate(lines):
        baseline = top + 3 + metrics.ascent() + i * metrics.height()
        painter.drawText(QPointF(plate.left() + 5, baseline), line)
    painter.restore()
    return plate
