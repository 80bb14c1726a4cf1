"""The main window around a real device: table, details, grid, preview tab, charts; its layout comes back on
the next start; and the README's first command works: `edge-console --demo --screenshot`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from PySide6.QtCore import QSettings
from PySide6.QtGui import QImage

from edge_console.console.main_window import MainWindow
from edge_console.console.screenshot import LAYOUT_TEXT_KEY
from tests.support.agent_harness import ROOT
from tests.support.pixels import tile_contents

LONG = 60_000
DEMO_NAMES = ["Press line 1", "Packing line 2", "Paint shop 3"]  # what `edge-agent simulate` names its devices


def test_main_window_shows_a_device_everywhere_and_restores_its_layout(qtbot, fleet_factory, shared_agents, tmp_path):
    agent = shared_agents[0]
    settings_path = str(tmp_path / "settings.ini")
    fleet = fleet_factory(discover=False)
    window = MainWindow(fleet, QSettings(settings_path, QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    state = fleet.add_manual(agent.address)

    qtbot.waitUntil(lambda: state.status == "online" and state in window.grid.tiles
                    and window.grid.tiles[state].frame is not None, timeout=LONG)
    row = window.table.model.row_of(state)
    assert window.table.model.index(row, 1).data() == "online"
    window.table.select(state)
    window.details.refresh()
    details = window.details.browser.toPlainText()
    assert agent.name in details and "classes" in details

    window.open_preview(state)
    assert window.tabs.count() == 2 and window.tabs.currentWidget().state is state
    qtbot.waitUntil(lambda: window.tabs.currentWidget().canvas.frame is not None, timeout=LONG)
    window.charts.refresh()
    curve = window.charts.curves[state]["fps_inferred"]
    qtbot.waitUntil(lambda: curve.getData()[0] is not None and len(curve.getData()[0]) > 0, timeout=LONG)

    # Change the layout, close (saves it), and open a new window on the same settings.
    window.charts_dock.hide()
    window.charts.window_box.setCurrentText("1 h")
    window.resize(760, 520)  # inside the offscreen screen (800x600), which restoreGeometry clamps to
    saved_size = window.size()
    window.close()
    again = MainWindow(fleet, QSettings(settings_path, QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    again.show()
    assert again.charts_dock.isHidden()
    assert again.charts.window_box.currentText() == "1 h"
    assert again.size() == saved_size
    again.close()


def test_demo_screenshot_shows_every_demo_device_live(tmp_path):
    """The README's first command. "Devices visible", as a user would check it: the table lists the three demo
    devices online, and each grid tile in the picture shows a camera image (not the empty background, not a
    flat banner) with detection boxes drawn in its classes' colours."""
    shot = tmp_path / "console.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-m", "edge_console.console", "--demo", "--screenshot", str(shot), "--after", "6"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    image = QImage(str(shot))
    assert not image.isNull() and image.width() >= 800 and image.height() >= 600
    layout = json.loads(image.text(LAYOUT_TEXT_KEY))  # where the window put its tiles, written into the PNG
    assert layout["grid_visible"]
    assert sorted(row["name"] for row in layout["table"]) == sorted(DEMO_NAMES)
    assert all(row["status"] == "online" for row in layout["table"]), layout["table"]
    assert all(row["trust"] == "paired: admin" for row in layout["table"]), layout["table"]  # paired by itself
    assert sorted(tile["device"] for tile in layout["tiles"]) == sorted(DEMO_NAMES)
    for tile in layout["tiles"]:
        class_ids = [int(i) for i in tile["classes"]]
        seen = tile_contents(image, tile["rect"], class_ids)
        assert seen.camera_share > 0.5, (tile["device"], seen)  # mostly picture, not the empty tile
        assert seen.distinct_colours > 1000, (tile["device"], seen)  # a camera's texture, not a flat banner
        assert seen.box_pixels > 300, (tile["device"], seen)  # outlines and labels in the classes' own colours
