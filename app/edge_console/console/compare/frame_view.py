"""One view of a compared frame: the device's detections, the local model's, or both as one agreement overlay.

It only paints: the frame's pixels are shown as they are (a zero-copy BGR QImage over the compared array), and
the boxes come from the comparison of that very frame.
"""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QTransform
from PySide6.QtWidgets import QSizePolicy, QWidget

from edge_console.console.compare.overlay_painter import ComparedBox, paint_compared_boxes
from edge_console.console.widgets.overlay import fit_transform, paint_detections, paint_text_block
from edge_console.core.detection.comparison import FrameComparison

BACKGROUND = QColor("#1b1d21")


class ViewMode(Enum):
    OVERLAY = "overlay"
    DEVICE = "device"
    LOCAL = "local"


def frame_qimage(comparison: FrameComparison) -> QImage | None:
    """The compared BGR pixels as a QImage that shares their memory (the comparison keeps the array alive)."""
    image = comparison.image
    if image is None or image.ndim != 3 or image.shape[2] != 3 or not image.flags["C_CONTIGUOUS"]:
        return None
    height, width = image.shape[:2]
    return QImage(image.data, width, height, image.strides[0], QImage.Format.Format_BGR888)


class ComparedFrameView(QWidget):
    def __init__(self, mode: ViewMode, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode = mode
        self.comparison: FrameComparison | None = None
        self.boxes: list[ComparedBox] = []
        self.highlighted: ComparedBox | None = None
        self.caption = ""
        self.placeholder = "No comparison yet"
        self._image: QImage | None = None
        self.label_rects: list[QRectF] = []  # where the box labels were last painted
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 120)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def show_comparison(self, comparison: FrameComparison | None, boxes: list[ComparedBox], caption: str) -> None:
        self.comparison = comparison
        self._image = frame_qimage(comparison) if comparison is not None else None
        self.boxes = boxes
        self.highlighted = None
        self.caption = caption
        self.update()

    def set_highlighted(self, box: ComparedBox | None) -> None:
        self.highlighted = box
        self.update()

    def image_to_widget(self) -> QTransform | None:
        """Frame pixels -> widget pixels (what the tests use to find a box in a grab)."""
        if self._image is None:
            return None
        return fit_transform(self._image.width(), self._image.height(), QRectF(self.rect()))

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        transform = self.image_to_widget()
        if self.comparison is None or self._image is None or transform is None:
            painter.setPen(QColor("#c8c8c8"))
            painter.drawText(QRectF(self.rect()).adjusted(8, 8, -8, -8),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            painter.end()
            return
        target = transform.mapRect(QRectF(0, 0, self._image.width(), self._image.height()))
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, target.width() < self._image.width())
        painter.drawImage(target, self._image)
        if self.mode is ViewMode.OVERLAY:
            self.label_rects = paint_compared_boxes(painter, self.boxes, transform, self.highlighted)
        else:
            detections = self.comparison.device if self.mode is ViewMode.DEVICE else self.comparison.local
            # Labels only where the frame is shown near full size; on a thumbnail they would hide the parts.
            self.label_rects = paint_detections(painter, list(detections), transform, labels=transform.m11() >= 0.6)
        if self.caption:
            paint_text_block(painter, self.caption.splitlines(), QPointF(6, 6))
        painter.end()
