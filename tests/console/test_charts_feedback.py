"""The charts as a reader sees them (issue 10 item 9): every overlaid device named in the legend, a fresh device's
data filling the time axis, "no data" instead of bare axes, and the compare F1 chart on 0..1 from time 0."""

from __future__ import annotations

import time

from PySide6.QtGui import QImage, QPainter, QTextDocument

from edge_console.client.net.addresses import DeviceAddress
from edge_console.console.compare.agreement_chart import AgreementChart
from edge_console.console.device_state import DeviceState
from edge_console.console.widgets.charts import TelemetryCharts


def device(name: str, seconds_of_samples: int, port: int = 9) -> DeviceState:
    """A device whose telemetry arrived the way a session delivers it: one sample a second, up to now."""
    state = DeviceState(DeviceAddress("127.0.0.1", port), device_id=name.lower().replace(" ", "-"), name=name)
    now = time.time()
    state.apply_clock(0.0, 0.001)
    samples = [{"ts": now - seconds_of_samples + i, "fps_inferred": 10.0 + i % 3, "fps_captured": 15.0,
                "latency_p50_ms": 5.0, "cpu_percent": 20.0, "rss_mb": 150.0, "dropped_frames": i}
               for i in range(seconds_of_samples)]
    state.apply_telemetry(samples, from_history=False)
    return state


def shown_charts(qtbot) -> TelemetryCharts:
    charts = TelemetryCharts()
    qtbot.addWidget(charts)
    charts.resize(1400, 330)
    charts.show()
    return charts


def axis_labels(plot, side: str) -> list[str]:
    """The tick labels an axis draws now (what the reader sees beside it)."""
    axis = plot.getAxis(side)
    image = QImage(10, 10, QImage.Format.Format_RGB32)
    painter = QPainter(image)
    specs = axis.generateDrawSpecs(painter)
    painter.end()
    return [text for _rect, _flags, text in specs[2]] if specs else []


def test_the_legend_names_every_overlaid_device(qtbot):
    charts = shown_charts(qtbot)
    states = [device(f"Packing line {i}", 20) for i in range(1, 7)]
    for state in states:
        charts.add_device(state)
    charts.set_overlay_all(True)
    charts.refresh()
    legend = charts.legend
    document = QTextDocument()
    document.setHtml(legend.text())
    assert all(state.name in document.toPlainText() for state in states)
    assert legend.isVisible() and legend.height() >= legend.heightForWidth(legend.width())  # no name cut off


def test_a_fresh_device_fills_the_time_axis_instead_of_a_sliver(qtbot):
    charts = shown_charts(qtbot)
    state = device("Press line 1", 8)
    charts.add_device(state)
    charts.set_selected(state)
    charts.window_box.setCurrentText("10 min")
    charts.refresh()
    start, end = charts.plots[0].getViewBox().viewRange()[0]
    t, _ = state.telemetry.since(0)
    assert end - start < 60, f"the axis spans {end - start:.0f} s for {t[-1] - t[0]:.0f} s of data"
    assert (t[-1] - t[0]) / (end - start) > 0.5  # the data covers most of the chart's width


def test_a_chart_without_data_says_so(qtbot):
    charts = shown_charts(qtbot)
    charts.refresh()  # nothing selected
    assert all(label.isVisible() for label in charts.no_data.values())
    assert all(axis_labels(plot, "left") == [] for plot in charts.plots)  # no meaningless 0..1 ticks
    state = device("Press line 1", 8)
    charts.add_device(state)
    charts.set_selected(state)
    charts.refresh()
    qtbot.wait(50)  # the plots range themselves on the data
    temperature = charts.plots[4]  # the device does not report one
    assert charts.no_data[temperature].isVisible() and axis_labels(temperature, "left") == []
    assert not charts.no_data[charts.plots[0]].isVisible() and axis_labels(charts.plots[0], "left")


def test_the_f1_chart_spans_zero_to_one_from_the_start_of_the_run(qtbot):
    chart = AgreementChart(0.9)
    qtbot.addWidget(chart)
    chart.resize(1000, 140)  # as tall as it is in the Compare panel
    chart.show()
    chart.add_point(0.12, 0.8)  # one frame compared, 120 ms into the run
    chart.refresh()
    qtbot.wait(50)
    (x0, x1), (y0, y1) = chart.plot.getViewBox().viewRange()
    assert x0 >= 0 and x1 >= 5 and -0.1 <= y0 <= 0 and 1.0 <= y1 <= 1.15  # F1 is 0..1, time from 0
    left = axis_labels(chart.plot.getPlotItem(), "left")
    assert "1.0" in left and "0.8" in left, left  # the top of the scale is labelled
    assert not any(label.startswith(("-", "−")) for label in axis_labels(chart.plot.getPlotItem(), "bottom"))
