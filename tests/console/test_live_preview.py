"""A real agent's stream in the preview: boxes where its detections are, in class colours, filtered on demand;
and its telemetry on the charts, including the history the device kept while the console was away."""

from __future__ import annotations

import time

import numpy as np

from edge_console.client.net.addresses import DeviceAddress
from edge_console.console.colors import class_color
from edge_console.console.widgets.charts import TelemetryCharts
from edge_console.console.widgets.preview_panel import PreviewPanel
from tests.support.pixels import outline_color_fraction

LONG = 60_000


def test_preview_of_a_real_device_draws_its_detections_and_filters_them(qtbot, fleet_factory, shared_agents):
    fleet = fleet_factory(discover=False)
    state = fleet.add_manual(shared_agents[0].address)
    panel = PreviewPanel(state)
    qtbot.addWidget(panel)
    panel.resize(800, 680)
    panel.show()
    canvas, settings = panel.canvas, panel.settings
    settings.set_threshold(0.0)  # draw everything the device reports, whatever its model's confidences

    def showing_detections() -> bool:
        frame = canvas.frame  # ...and no "offline"/"connecting" banner dimming the picture
        return frame is not None and bool(settings.split(frame.header.detections)[0]) and not canvas._banner()

    qtbot.waitUntil(lambda: showing_detections() and bool(canvas.paint_latencies_ms), timeout=LONG)  # painted live
    canvas.set_paused(True)  # hold this frame: its detections are what the pixels must show
    frame = canvas.frame
    shown, _ = settings.split(frame.header.detections)
    image = canvas.grab().toImage()
    transform = canvas._transform()
    sx, sy = frame.box_scale

    def outline(det, image) -> float:
        x1, y1 = transform.map(det.x1 * sx, det.y1 * sy)
        x2, y2 = transform.map(det.x2 * sx, det.y2 * sy)
        return outline_color_fraction(image, x1, y1, x2, y2, class_color(det.class_id, det.class_name))

    last = shown[-1]  # drawn last, so no other box covers its outline
    assert outline(last, image) > 0.6

    settings.set_class_visible(last.class_name, False)
    image = canvas.grab().toImage()
    assert outline(last, image) < 0.3
    assert canvas.hidden_count >= 1

    settings.set_class_visible(last.class_name, True)
    settings.set_threshold(1.0)  # above every confidence: nothing drawn, everything counted as hidden
    image = canvas.grab().toImage()
    assert all(outline(d, image) < 0.3 for d in shown)
    assert canvas.hidden_count == len(frame.header.detections)

    # Stepping while paused shows exactly one newer frame.
    seq = frame.header.seq
    canvas.step()
    qtbot.waitUntil(lambda: canvas.frame.header.seq > seq, timeout=LONG)
    assert canvas.paused
    assert state.clock_offset is not None and canvas.paint_latencies_ms
    panel.detach()


def test_charts_receive_points_and_history_fills_the_gap_while_away(qtbot, fleet_factory, shared_agents):
    agent = shared_agents[1]
    fleet = fleet_factory(discover=False)
    qtbot.wait(max(0, int((agent.started_at + 4 - time.time()) * 1000)))  # let the device build some history
    connected_at = time.time()
    state = fleet.add_manual(agent.address)
    charts = TelemetryCharts()
    qtbot.addWidget(charts)
    charts.add_device(state)
    charts.set_selected(state)
    charts.show()

    # Samples from before this console connected arrive from the device's own history.
    def has_old_samples() -> bool:
        return len(state.telemetry) > 0 and state.telemetry.since(0)[0][0] < connected_at - 2

    qtbot.waitUntil(has_old_samples, timeout=LONG)
    curve = charts.curves[state]["latency_p50_ms"]
    qtbot.waitUntil(lambda: curve.getData()[0] is not None and len(curve.getData()[0]) >= 2, timeout=LONG)
    assert np.isfinite(charts.curves[state]["cpu_percent"].getData()[1]).any()

    # Away: the console loses the device for a few seconds while the device keeps sampling.
    fleet.set_address(state, DeviceAddress("127.0.0.1", 9))
    qtbot.waitUntil(lambda: state.status == "offline", timeout=LONG)
    last_before = state.telemetry.last_time
    qtbot.wait(4000)
    fleet.set_address(state, agent.address)
    qtbot.waitUntil(lambda: state.status == "online" and state.telemetry.last_time > last_before + 4, timeout=LONG)
    t, _ = state.telemetry.since(last_before - 1)
    assert np.diff(t).max() < 2.5, f"a hole the device could have filled: {np.diff(t).max():.1f} s"
