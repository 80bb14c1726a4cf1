"""Telemetry charts (pyqtgraph): one device or several overlaid, over a selectable time window.

Curves are created once per device and updated in place with `setData` on a 1 Hz timer (pyqtgraph's advice):
never rebuilt, and only while the charts are visible. Long windows are decimated by pyqtgraph's peak
downsampling, so a 1 h window costs about what a 1 min one does; memory is bounded by the devices' ring buffers.

What a reader sees: the legend above the charts names every device shown (in a plot it had room for three); the
time axis spans the chosen window only once the data fills it, before that it starts where the data starts (a
fresh device is not a sliver at the right edge); a chart without data says so instead of showing bare axes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from edge_console.client.telemetry_ring import break_gaps, per_second_increase
from edge_console.client.untrusted_text import escaped
from edge_console.console.colors import CURVE_PALETTE
from edge_console.console.device_state import DeviceState

WINDOWS_S: dict[str, float] = {"1 min": 60.0, "10 min": 600.0, "1 h": 3600.0}
REFRESH_MS = 1000
DROPPED_RATE = "dropped_per_s"  # derived from the cumulative dropped_frames counter
GAP_S = 5.0  # the agent samples every second; a longer silence is drawn as a gap
TITLE_HEIGHT = 16
MIN_SPAN_S = 10.0  # the time axis of fresh data spans at least this much


@dataclass(frozen=True, slots=True)
class Series:
    metric: str
    label: str
    style: Qt.PenStyle = Qt.PenStyle.SolidLine


@dataclass(frozen=True, slots=True)
class ChartSpec:
    title: str
    unit: str
    series: tuple[Series, ...]


CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec("Frames per second (solid inferred, dotted captured)", "fps",
              (Series("fps_inferred", "inferred"), Series("fps_captured", "captured", Qt.PenStyle.DotLine))),
    ChartSpec("Inference latency (solid p50, dashed p95, dotted p99)", "ms",
              (Series("latency_p50_ms", "p50"), Series("latency_p95_ms", "p95", Qt.PenStyle.DashLine),
               Series("latency_p99_ms", "p99", Qt.PenStyle.DotLine))),
    ChartSpec("CPU", "%", (Series("cpu_percent", "cpu"),)),
    ChartSpec("Memory (agent RSS)", "MB", (Series("rss_mb", "rss"),)),
    ChartSpec("Temperature", "°C", (Series("temperature_c", "temperature"),)),
    ChartSpec("Dropped frames", "per s", (Series(DROPPED_RATE, "dropped"),)),
)


class TelemetryCharts(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.window_s = WINDOWS_S["10 min"]
        self.overlay_all = False
        self.selected: DeviceState | None = None
        self.curves: dict[DeviceState, dict[str, pg.PlotDataItem]] = {}
        self._colors: dict[DeviceState, str] = {}
        self._names: dict[DeviceState, str] = {}

        self.window_box = QComboBox()
        self.window_box.addItems(list(WINDOWS_S))
        self.window_box.setCurrentText("10 min")
        self.window_box.currentTextChanged.connect(self._set_window)
        self.mode_box = QComboBox()
        self.mode_box.addItems(["Selected device", "All devices overlaid"])
        self.mode_box.currentIndexChanged.connect(lambda i: self.set_overlay_all(i == 1))
        self.hint = QLabel()
        self.legend = QLabel(wordWrap=True)  # our markup around escaped names: a device name is never HTML
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setContentsMargins(6, 0, 6, 0)
        self.legend.hide()
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        for widget in (QLabel("Window"), self.window_box, QLabel("Show"), self.mode_box):
            bar.addWidget(widget)
        bar.addStretch(1)
        bar.addWidget(self.hint)

        self.plots_widget = pg.GraphicsLayoutWidget()
        self.plots_widget.setBackground("w")
        self.plots_widget.ci.setContentsMargins(2, 2, 2, 2)  # the room goes to the curves, not to margins
        self.plots_widget.ci.setSpacing(2)
        self.plots: list[pg.PlotItem] = []
        self.no_data: dict[pg.PlotItem, pg.TextItem] = {}
        for i, spec in enumerate(CHARTS):
            plot = self.plots_widget.addPlot(row=i // 3, col=i % 3, axisItems={"bottom": pg.DateAxisItem()})
            plot.setTitle(spec.title, size="8pt")
            plot.layout.setRowFixedHeight(0, TITLE_HEIGHT)  # pyqtgraph's default title row is twice that
            plot.setLabel("left", units=None, text=spec.unit)
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setMouseEnabled(x=False, y=True)
            plot.enableAutoRange(axis="y")
            plot.getViewBox().setLimits(yMin=0)  # every metric here is >= 0; a flat zero line stays at the bottom
            plot.getAxis("left").enableAutoSIPrefix(False)  # "per s (x0.001)" helps nobody
            if self.plots:
                plot.setXLink(self.plots[0])
            no_data = pg.TextItem("no data", color="#888", anchor=(0.5, 0.5))
            plot.addItem(no_data, ignoreBounds=True)
            self.no_data[plot] = no_data
            self.plots.append(plot)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(self.legend)
        layout.addWidget(self.plots_widget, 1)

        self._timer = QTimer(self, interval=REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()

    # -- devices ---------------------------------------------------------------------------------------------------

    def add_device(self, state: DeviceState) -> None:
        if state in self.curves:
            return
        color = CURVE_PALETTE[len(self._colors) % len(CURVE_PALETTE)]
        self._colors[state] = color
        items: dict[str, pg.PlotDataItem] = {}
        for plot, spec in zip(self.plots, CHARTS):
            for series in spec.series:
                item = pg.PlotDataItem(pen=pg.mkPen(color, width=1.6, style=series.style), connect="finite")
                item.setDownsampling(auto=True, method="peak")
                item.setClipToView(True)
                plot.addItem(item)
                items[series.metric] = item
        self.curves[state] = items
        self._apply_visibility()

    def remove_device(self, state: DeviceState) -> None:
        items = self.curves.pop(state, None)
        if items is None:
            return
        for plot in self.plots:
            for item in items.values():
                if item.getViewBox() is plot.getViewBox():
                    plot.removeItem(item)
        if self.selected is state:
            self.selected = None
        self._apply_visibility()

    def set_selected(self, state: DeviceState | None) -> None:
        self.selected = state
        self._apply_visibility()
        self.refresh()

    def set_overlay_all(self, overlay: bool) -> None:
        self.overlay_all = overlay
        if self.mode_box.currentIndex() != int(overlay):
            self.mode_box.setCurrentIndex(int(overlay))
        self._apply_visibility()
        self.refresh()

    def _set_window(self, text: str) -> None:
        self.window_s = WINDOWS_S[text]
        self.refresh()

    def _shown_devices(self) -> list[DeviceState]:
        if self.overlay_all:
            return list(self.curves)
        return [self.selected] if self.selected in self.curves else []

    def _apply_visibility(self) -> None:
        shown = set(self._shown_devices())
        for state, items in self.curves.items():
            for item in items.values():
                item.setVisible(state in shown)
        self.hint.setText("" if shown else "Select a device in the table, or show all devices overlaid.")
        self._sync_legend()

    def _sync_legend(self) -> None:
        """The legend names every device shown, in its curve colour, by its current name (known only once the
        device answers); it wraps to as many lines as the names need."""
        names = [(state, state.name) for state in self._shown_devices()]
        if names == list(self._names.items()):
            return
        entries = [f"<span style='color:{self._colors[state]}'>━━</span>&nbsp;{escaped(name)}" for state, name in names]
        self.legend.setText("&nbsp;&nbsp;&nbsp; ".join(entries))
        self.legend.setVisible(bool(entries))
        self._names = dict(names)

    def legend_names(self) -> list[str]:
        return list(self._names.values())

    # -- the timer's work ------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        if not self.isVisible():
            return
        now = time.time()
        t_min = now - self.window_s
        any_temperature = False
        first: float | None = None  # the oldest sample shown
        has_data = {spec.title: False for spec in CHARTS}
        for state in self._shown_devices():
            items = self.curves[state]
            t, values = state.telemetry.since(t_min)
            values[DROPPED_RATE] = per_second_increase(t, values["dropped_frames"])
            if len(t):
                first = float(t[0]) if first is None else min(first, float(t[0]))
            for spec in CHARTS:
                has_data[spec.title] |= any(bool(np.isfinite(values[s.metric]).any()) for s in spec.series)
            t, values = break_gaps(t, values, GAP_S)
            for metric, item in items.items():
                item.setData(t, values[metric])
            any_temperature |= bool(np.isfinite(values["temperature_c"]).any())
        self._sync_legend()
        self.plots[4].setTitle("Temperature" if any_temperature or not self._shown_devices()
                               else "Temperature (not reported by the device)", size="8pt")
        # The whole window once the data fills it; until then from where the data starts (at least MIN_SPAN_S).
        start = t_min if first is None or first <= t_min else max(t_min, min(first, now - MIN_SPAN_S))
        self.plots[0].setXRange(start, now, padding=0)
        for plot, spec in zip(self.plots, CHARTS):
            self._show_no_data(plot, not has_data[spec.title], (start + now) / 2)

    def _show_no_data(self, plot: pg.PlotItem, empty: bool, x: float) -> None:
        """An empty chart says "no data" instead of showing axes that measure nothing."""
        label = self.no_data[plot]
        label.setVisible(empty)
        if empty:
            y0, y1 = plot.getViewBox().viewRange()[1]
            label.setPos(x, (y0 + y1) / 2)
        for axis in ("left", "bottom"):
            plot.getAxis(axis).setStyle(showValues=not empty)
        plot.showGrid(x=not empty, y=not empty, alpha=0.25)
