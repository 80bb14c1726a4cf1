"""Drawing a frame and ITS detections: the filter settings and the painter, apart from any widget so both the
preview and the tests can use them on a known frame."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen, QTransform

from edge_console.core.detection import Detection

from ..colors import class_color, readable_text_color
from ..frames import DecodedFrame

BOX_PEN_WIDTH = 2.0


class OverlaySettings(QObject):
    """What to draw: a confidence threshold and the classes switched off. Shared by the views that use it."""

    changed = Signal()

    def __init__(self, threshold: float = 0.25, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.threshold = threshold
        self.hidden_classes: set[str] = set()
        self.show_labels = True

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


def paint_frame(painter: QPainter, frame: DecodedFrame, to_widget: QTransform, settings: OverlaySettings) -> int:
    """Paint the frame's image and the detections of the SAME message; returns how many detections were hidden."""
    image = frame.image
    target = to_widget.mapRect(QRectF(0, 0, image.width(), image.height()))
    # Smooth scaling costs several ms per frame on big tiles; it is worth it only when the image is enlarged.
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, target.width() > image.width())
    painter.drawImage(target, image)
    shown, hidden = settings.split(frame.header.detections)
    sx, sy = frame.box_scale
    paint_detections(painter, shown, QTransform(sx, 0, 0, sy, 0, 0) * to_widget, settings.show_labels)
    return hidden


def paint_detections(painter: QPainter, detections: list[Detection], source_to_widget: QTransform,
                     labels: bool = True) -> None:
    """Boxes in each class's colour with 'class 0.87' labels; boxes drawn without antialiasing so their pixels
    carry exactly the class colour (what the tests and a colour-picking engineer check)."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
    font = QFont(painter.font())
    font.setPointSizeF(8.5)
    painter.setFont(font)
    metrics = QFontMetricsF(font)
    for det in detections:
        color = class_color(det.class_id, det.class_name)
        rect = source_to_widget.mapRect(QRectF(det.x1, det.y1, det.x2 - det.x1, det.y2 - det.y1))
        pen = QPen(color, BOX_PEN_WIDTH)
        pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(rect)
        if labels:
            text = f"{det.class_name} {det.confidence:.2f}"
            w, h = metrics.horizontalAdvance(text) + 6, metrics.height() + 2
            top = rect.top() - h if rect.top() - h >= 0 else rect.top()
            label = QRectF(rect.left() - BOX_PEN_WIDTH / 2, top, w, h)
            painter.fillRect(label, color)
            painter.setPen(readable_text_color(color))
            painter.drawText(label, Qt.AlignmentFlag.AlignCenter, text)
    painter.restore()


def paint_text_block(painter: QPainter, lines: list[str], corner: QPointF, *, align_bottom: bool = False,
                     background: QColor | None = None) -> None:
    """A few lines of status text on a translucent plate, readable over any image."""
    if not lines:
        return
    painter.save()
    metrics = QFontMetricsF(painter.font())
    width = max(metrics.horizontalAdvance(line) for line in lines) + 10
    height = metrics.height() * len(lines) + 6
    top = corner.y() - height if align_bottom else corner.y()
    plate = QRectF(corner.x(), top, width, height)
    painter.fillRect(plate, background or QColor(0, 0, 0, 150))
    painter.setPen(QColor("white"))
    for i, line in enumerate(lines):
        baseline = top + 3 + metrics.ascent() + i * metrics.height()
        painter.drawText(QPointF(plate.left() + 5, baseline), line)
    painter.restore()
