"""How a comparison looks: the four kinds of agreement, each with its own colour AND line style (so it reads in
greyscale and for colour-blind eyes), the boxes of one frame sorted into them, and the painting of both.

Colours here mean agreement, not class: the side-by-side views keep the class colours of the preview.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from PySide6.QtCore import QPointF, QRectF, QSize, QSizeF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPaintEvent, QPen, QTransform
from PySide6.QtWidgets import QSizePolicy, QWidget

from edge_console.console.colors import readable_text_color
from edge_console.console.widgets.label_placement import place_labels
from edge_console.core.detection.matching import MatchReport
from edge_console.core.detection.record import Detection

BOX_PEN_WIDTH = 2.0
HIGHLIGHT_PEN_WIDTH = 4.0


class Agreement(Enum):
    MATCHED = "matched"
    DEVICE_ONLY = "device only"
    LOCAL_ONLY = "local only"
    CLASS_MISMATCH = "class mismatch"


@dataclass(frozen=True)
class AgreementStyle:
    color: QColor
    pen_style: Qt.PenStyle
    meaning: str  # the legend's tooltip


STYLES: dict[Agreement, AgreementStyle] = {
    Agreement.MATCHED: AgreementStyle(QColor("#22c55e"), Qt.PenStyle.SolidLine,
                                      "device and local model found the same object (label: IoU of the two boxes)"),
    Agreement.DEVICE_ONLY: AgreementStyle(QColor("#ff8c00"), Qt.PenStyle.DashLine,
                                          "the device reports it, the local model does not (a false positive, "
                                          "if the local model is right)"),
    Agreement.LOCAL_ONLY: AgreementStyle(QColor("#ff00ff"), Qt.PenStyle.DotLine,
                                         "the local model finds it, the device does not (a miss on the device)"),
    Agreement.CLASS_MISMATCH: AgreementStyle(QColor("#ff2a2a"), Qt.PenStyle.DashDotLine,
                                             "same place, different class (device's class / local class)"),
}


@dataclass(frozen=True, eq=False)
class ComparedBox:
    """One box of the overlay: the device's box, or the local one where the device has none."""

    kind: Agreement
    detection: Detection
    counterpart: Detection | None = None  # the local model's box of a match or class mismatch
    iou: float | None = None

    @property
    def label(self) -> str:
        d = self.detection
        if self.kind is Agreement.MATCHED:
            return f"IoU {self.iou:.2f}"
        if self.kind is Agreement.CLASS_MISMATCH and self.counterpart is not None:
            return f"{d.class_name}/{self.counterpart.class_name}"
        return f"{d.class_name} {d.confidence:.2f}"

    def describe(self) -> str:
        """The line in the list of disagreements."""
        d = self.detection
        where = f"at {d.x1:.0f},{d.y1:.0f}"
        if self.kind is Agreement.DEVICE_ONLY:
            return f"Device only · {d.class_name} {d.confidence:.2f} · {where}"
        if self.kind is Agreement.LOCAL_ONLY:
            return f"Local only · {d.class_name} {d.confidence:.2f} · {where}"
        if self.kind is Agreement.CLASS_MISMATCH and self.counterpart is not None:
            return (f"Class · device {d.class_name} {d.confidence:.2f}, local {self.counterpart.class_name} "
                    f"{self.counterpart.confidence:.2f} · IoU {self.iou:.2f} · {where}")
        return f"Matched · {d.class_name} · IoU {self.iou:.2f} · {where}"


def compared_boxes(report: MatchReport) -> list[ComparedBox]:
    """The report's boxes, each once: a class mismatch's two boxes (also counted unmatched on both sides by the
    report) are drawn as one mismatch, not as a device-only plus a local-only box."""
    mismatched = {id(p.a) for p in report.class_mismatches} | {id(p.b) for p in report.class_mismatches}
    boxes = [ComparedBox(Agreement.MATCHED, p.a, p.b, p.iou) for p in report.matched]
    boxes += [ComparedBox(Agreement.LOCAL_ONLY, d) for d in report.unmatched_b if id(d) not in mismatched]
    boxes += [ComparedBox(Agreement.DEVICE_ONLY, d) for d in report.unmatched_a if id(d) not in mismatched]
    boxes += [ComparedBox(Agreement.CLASS_MISMATCH, p.a, p.b, p.iou) for p in report.class_mismatches]
    return boxes


def agreement_pen(kind: Agreement, width: float = BOX_PEN_WIDTH) -> QPen:
    style = STYLES[kind]
    pen = QPen(style.color, width)
    pen.setStyle(style.pen_style)
    pen.setCapStyle(Qt.PenCapStyle.FlatCap)  # round or square caps would fill the gaps that make the style
    pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
    return pen


def paint_compared_boxes(painter: QPainter, boxes: list[ComparedBox], source_to_widget: QTransform,
                         highlighted: ComparedBox | None = None, labels: bool = True) -> list[QRectF]:
    """Boxes drawn without antialiasing, so their pixels carry exactly the agreement colour (what the tests and a
    colour-picking engineer check). The highlighted box is drawn last, thicker, over a translucent fill. Labels
    (IoU, class pairs) are placed so that none hides another, after every box; returns where they went, in the
    order the boxes were drawn."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    font = QFont(painter.font())
    font.setPointSizeF(8.0)
    painter.setFont(font)
    metrics = QFontMetricsF(font)
    ordered = [b for b in boxes if b is not highlighted] + ([highlighted] if highlighted in boxes else [])
    rects = []
    for box in ordered:
        d = box.detection
        rect = source_to_widget.mapRect(QRectF(d.x1, d.y1, d.x2 - d.x1, d.y2 - d.y1))
        rects.append(rect)
        color = STYLES[box.kind].color
        if box is highlighted:
            fill = QColor(color)
            fill.setAlpha(70)
            painter.fillRect(rect, fill)
            painter.setPen(QPen(QColor("white"), HIGHLIGHT_PEN_WIDTH + 4))
            painter.drawRect(rect)
            painter.setPen(agreement_pen(box.kind, HIGHLIGHT_PEN_WIDTH))
        else:
            painter.setPen(agreement_pen(box.kind))
        painter.drawRect(rect)
    placed: list[QRectF] = []
    if labels and ordered:
        texts = [box.label for box in ordered]
        sizes = [QSizeF(metrics.horizontalAdvance(t) + 6, metrics.height() + 1) for t in texts]
        placed = place_labels(rects, sizes, QRectF(painter.viewport()))
        for box, text, plate in zip(ordered, texts, placed):
            color = STYLES[box.kind].color
            painter.fillRect(plate, color)
            painter.setPen(readable_text_color(color))
            painter.drawText(plate, Qt.AlignmentFlag.AlignCenter, text)
    painter.restore()
    return placed


class AgreementLegend(QWidget):
    """One line: a sample of each kind's line, drawn with the very pen the overlay uses, and its name."""

    SAMPLE_WIDTH = 34

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setToolTip("\n".join(f"{kind.value}: {style.meaning}" for kind, style in STYLES.items()))

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        metrics = QFontMetricsF(self.font())
        width = sum(self.SAMPLE_WIDTH + 6 + metrics.horizontalAdvance(k.value) + 16 for k in STYLES)
        return QSize(int(width), int(metrics.height() + 8))

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        metrics = QFontMetricsF(self.font())
        mid = self.height() / 2
        x = 4.0
        for kind in STYLES:
            painter.setPen(agreement_pen(kind, 3.0))
            painter.drawLine(QPointF(x, mid), QPointF(x + self.SAMPLE_WIDTH, mid))
            x += self.SAMPLE_WIDTH + 6
            painter.setPen(self.palette().windowText().color())
            painter.drawText(QPointF(x, mid + metrics.ascent() / 2 - 1), kind.value)
            x += metrics.horizontalAdvance(kind.value) + 16
        painter.end()
