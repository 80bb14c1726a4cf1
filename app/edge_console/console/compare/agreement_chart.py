"""Agreement over time in continuous mode: F1 of the device against the local model per compared frame, with
the threshold line below which a frame is kept as a hard frame.

Items are created once and updated with `setData` (pyqtgraph's advice); the history is bounded. The axes are
fixed, not autoscaled: F1 from 0 to 1 with a tick at 1.0, time from the start of the run to at least MIN_SPAN_S
(a single point is not shown on a -100…800 ms axis).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

from edge_console.console.compare.overlay_painter import STYLES, Agreement

MAX_POINTS = 2000
CURVE_COLOR = "#0072B2"
MIN_SPAN_S = 10.0
F1_TICKS = [(v / 10, f"{v / 10:.1f}") for v in range(0, 11, 2)]
# 0..1 with room above 1.0 and below 0.0 for their tick labels: pyqtgraph drops a label that would cross the
# plot's edge, and on a short chart 1.0 then lost its label ("ticks stop at 0.8").
F1_RANGE = (-0.08, 1.12)


class AgreementChart(QWidget):
    def __init__(self, threshold: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.times: deque[float] = deque(maxlen=MAX_POINTS)
        self.f1: deque[float] = deque(maxlen=MAX_POINTS)
        self.threshold = threshold
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.disableAutoRange()
        self.plot.setYRange(*F1_RANGE, padding=0)
        self.plot.setXRange(0.0, MIN_SPAN_S, padding=0)
        self.plot.getAxis("left").setTicks([F1_TICKS])
        self.plot.setLabel("left", "F1")
        self.plot.setLabel("bottom", "time since the run started", units="s")
        self._set_title()
        self.curve = self.plot.plot(pen=pg.mkPen(CURVE_COLOR, width=1.5))
        below = STYLES[Agreement.CLASS_MISMATCH].color
        self.below_points = pg.ScatterPlotItem(size=7, pen=pg.mkPen(below), brush=pg.mkBrush(below))
        self.above_points = pg.ScatterPlotItem(size=5, pen=pg.mkPen(CURVE_COLOR), brush=pg.mkBrush(CURVE_COLOR))
        self.plot.addItem(self.above_points)
        self.plot.addItem(self.below_points)
        self.threshold_line = pg.InfiniteLine(pos=threshold, angle=0, movable=False,
                                              pen=pg.mkPen(below, width=1.5, style=Qt.PenStyle.DashLine))
        self.plot.addItem(self.threshold_line)
        self.empty_text = pg.TextItem("No comparison yet", color="#777", anchor=(0.5, 0.5))
        self.empty_text.setPos(MIN_SPAN_S / 2, 0.5)
        self.plot.addItem(self.empty_text)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

    def _set_title(self) -> None:
        # The threshold is named in the title, not on its line, where it would cover the points near it.
        self.plot.setTitle(f"F1 per compared frame, device against local · dashed: threshold {self.threshold:.2f}, "
                           "red points below it are kept as hard frames", size="9pt")

    def add_point(self, t: float, f1: float) -> None:
        self.times.append(t)
        self.f1.append(f1)

    def set_threshold(self, threshold: float) -> None:
        self.threshold = threshold
        self.threshold_line.setValue(threshold)
        self._set_title()
        self.refresh()

    def clear(self) -> None:
        self.times.clear()
        self.f1.clear()
        self.refresh()

    def refresh(self) -> None:
        """Redraw from the history; called on the panel's refresh timer, not once per frame."""
        t = np.fromiter(self.times, float, len(self.times))
        f1 = np.fromiter(self.f1, float, len(self.f1))
        below = f1 < self.threshold
        self.curve.setData(t, f1)
        self.below_points.setData(t[below], f1[below])
        self.above_points.setData(t[~below], f1[~below])
        span = max(MIN_SPAN_S, float(t.max()) * 1.05) if len(t) else MIN_SPAN_S
        self.plot.setXRange(0.0, span, padding=0)
        self.empty_text.setVisible(not len(t))
