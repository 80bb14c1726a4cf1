"""`--screenshot PATH`: the running program renders itself to a PNG and exits; with `--open-compare NAME`, the
Compare panel of that device, comparing continuously. This is how the README's pictures are made, so they always
show the program as it is:

    edge-console --demo --screenshot resources/screenshot.png --after 8
    edge-console --demo --screenshot resources/screenshot-1366x768.png --size 1366x768 --after 8
    edge-console --demo --screenshot resources/compare.png --open-compare "Packing line 2" \\
                 --compare-model parts-v2 --after 20

The PNG carries a text chunk (LAYOUT_TEXT_KEY) saying where the tiles are and what the window showed, so a test
can check the picture's pixels against it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QPoint, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from edge_console.console.compare.panel import ComparePanel
from edge_console.console.main_window import MainWindow
from edge_console.console.widgets.formatting import trust_text

LAYOUT_TEXT_KEY = "edge-console:layout"  # a PNG text chunk: where the screenshot's tiles are and what they show
SCREENSHOT_READY_GRACE_S = 30.0  # with --demo, how much longer than --after to wait for every device's picture
SCREENSHOT_POLL_MS = 250
COMPARE_EVERY = 3  # --open-compare compares every 3rd frame: the chart fills, the laptop keeps up
COMPARED_FRAMES_WANTED = 40  # a Compare screenshot waits for this many comparisons (up to the grace time)


@dataclass
class Outcome:
    exit_code: int = 0


def open_compare_when_listed(window: MainWindow, device_name: str, model: Path | None) -> None:
    """Open the Compare tab of the device called `device_name` once it has answered, choose `model` (a candidate
    against what the device runs), compare continuously, and give the panel the whole window."""
    def try_open() -> None:
        state = next((s for s in window.fleet.states if s.name == device_name and s.info), None)
        if state is None:
            QTimer.singleShot(SCREENSHOT_POLL_MS, window, try_open)
            return
        panel = window.open_compare(state)
        for dock in (window.devices_dock, window.details_dock, window.charts_dock):
            dock.hide()
        if model is not None:
            panel.choose_model(model)
        panel.every_box.setValue(COMPARE_EVERY)
        start_when_open(panel)

    def start_when_open(panel: ComparePanel) -> None:
        if panel.opened is None or (model is not None and panel.opened.model_path != model):
            QTimer.singleShot(SCREENSHOT_POLL_MS, panel, lambda: start_when_open(panel))
            return
        panel.set_continuous(True)

    try_open()


def schedule_screenshot(app: QApplication, window: MainWindow, path: Path, after_s: float, outcome: Outcome,
                        wait_for_devices: int = 0) -> None:
    """Save the window (or the Compare panel in front) as a PNG after `after_s` seconds, then quit. With
    `wait_for_devices`, wait (up to SCREENSHOT_READY_GRACE_S longer) until that many grid tiles show a live picture:
    a demo on a busy machine may take longer than `after_s` to start its devices, and a screenshot of
    "connecting…" tiles shows nothing. A Compare panel is waited for until it has compared a run of frames."""
    deadline_ms = int((after_s + SCREENSHOT_READY_GRACE_S) * 1000)
    waited_ms = int(after_s * 1000)

    def ready() -> bool:
        panel = window.tabs.currentWidget()
        if window.compares:
            return isinstance(panel, ComparePanel) and panel.run_count >= COMPARED_FRAMES_WANTED
        tiles = list(window.grid.tiles.values())
        return len(tiles) >= wait_for_devices and all(tile.showing_live_picture for tile in tiles)

    def attempt() -> None:
        nonlocal waited_ms
        if not ready() and waited_ms < deadline_ms:
            waited_ms += SCREENSHOT_POLL_MS
            QTimer.singleShot(SCREENSHOT_POLL_MS, window, attempt)
            return
        current = window.tabs.currentWidget()
        shown: QWidget = current if isinstance(current, ComparePanel) else window
        if isinstance(current, ComparePanel):
            current.refresh_stats()
        image = shown.grab().toImage()
        image.setText(LAYOUT_TEXT_KEY, json.dumps(screenshot_layout(window)))
        if not image.save(str(path), "PNG"):
            print(f"edge-console: could not write {path}", file=sys.stderr)
            outcome.exit_code = 1
        window.close()
        app.quit()

    QTimer.singleShot(waited_ms, window, attempt)


def screenshot_layout(window: MainWindow) -> dict:
    """Where the grid's tiles are in the screenshot and which devices the table lists, so whoever checks a
    screenshot (the demo test) knows which pixels should show which device; and how the window was laid out."""
    tiles = []
    for state, tile in window.grid.tiles.items():
        corner = tile.mapTo(window, QPoint(0, 0))
        tiles.append({"device": state.name, "rect": [corner.x(), corner.y(), tile.width(), tile.height()],
                      "live": tile.showing_live_picture,
                      "classes": dict(enumerate(state.class_names))})
    model = window.table.model
    rows = [{"name": model.index(r, 0).data(), "status": model.index(r, 1).data(),
             "trust": trust_text(model.state_at(r)) if model.state_at(r) is not None else ""}
            for r in range(model.rowCount())]
    current = window.tabs.currentWidget()
    compare = {"device": current.state.name, "frames": current.run_count} if isinstance(current, ComparePanel) else None
    return {"grid_visible": current is window.grid, "tiles": tiles, "table": rows, "compare": compare,
            "window": [window.width(), window.height()],
            "plot_heights": [round(p.getViewBox().sceneBoundingRect().height()) for p in window.charts.plots],
            "docks": {d.objectName(): [d.width(), d.height()] for d in
                      (window.devices_dock, window.details_dock, window.charts_dock) if d.isVisible()}}
